"""The ``hwsim`` command line.

Conventions shared by every command (docs/cli.md):

* ``--json`` prints one JSON document on stdout and nothing else; progress bars, "epoch ..." lines and
  notes go to stderr;
* exit status 0: done; 1: a failure while working, or a check the command was asked to make failed
  (``export --verify``: Lava's spikes differ from hwsim's); 2: bad input, in one line on stderr naming what
  was wrong, before any work; 130: Ctrl-C -- each one line, never a traceback (``HWSIM_TRACEBACK=1`` shows
  one for an internal error); exit codes and error kinds: :mod:`hwsim.errors`;
* one name and one default per concept: ``--chip`` takes a list (``--chip a,b`` or ``--chip a --chip b``,
  ``--chips`` is the same option), ``--mode`` defaults to fixed, ``--rate`` to 0.1, ``--window`` to 2;
* output files (``--plot``, ``--out``) get their parent folders created.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

import hwsim.sim.threads  # noqa: F401  (first: the OpenMP wait policy must be set before torch or numba start OpenMP)
from hwsim import __version__, errors
from hwsim.cli.commands import (
    DEFAULT_MODE,
    DEFAULT_RATE,
    cmd_chips,
    cmd_estimate,
    cmd_export,
    cmd_feasibility,
    cmd_run,
    cmd_study,
    cmd_sweep,
    cmd_train,
    cmd_validate,
)
from hwsim.cli.rule_args import DeprecatedAlias, add_option_arguments, add_rules_argument
from hwsim.cli.validate import (
    OneLineParser,
    device,
    finite_positive_float,
    learning_rate,
    memory_size,
    positive_int,
    probability,
    seed,
)
from hwsim.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Failure, one_line

# torch's C++ warnings (e.g. the allocator profiler's "Memory block of unknown size ...", printed when the memory meter
# measures a batch) would break "one line on stderr": the command prints its own; set before torch is imported
os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")

DEFAULT_TIMESTEPS = 100  # one default for run, estimate (also --rule) and feasibility
STATIC_HELP = ("static power: whole-chip (default: the chip's static power x simulated time), cores-used (only the "
               "cores in use, where the profile supports it) or none (dynamic energy only)")


def build_parser() -> argparse.ArgumentParser:
    """The ``hwsim`` parser: one subparser per command, the rule flags generated from the rule registry."""
    parser = OneLineParser(
        prog="hwsim",
        description="Neuromorphic on-chip learning simulator: event-driven LIF cores with exact counts.")
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_run, _add_chips, _add_estimate, _add_feasibility, _add_validate, _add_export, _add_study,
                _add_sweep, _add_train):
        add(sub)
    for name, command in sub.choices.items():  # one thread policy for every command (hwsim.sim.threads)
        command.add_argument("--threads", type=int, default=None, metavar="N",
                             help="threads for the simulator kernels and torch (default: the free cores); results "
                                  "do not depend on it")
        if name in READS_INPUTS:
            command.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                                 help="the memory one input (network file, --input, data set, configuration, run) "
                                      "may take, e.g. 4G; checked from headers and configurations before anything "
                                      "is allocated (default: 80%% of the memory this process can still get)")
    return parser


READS_INPUTS = ("run", "estimate", "feasibility", "export", "study", "sweep", "train")  # commands with --max-memory


def _add_run(sub) -> None:
    run = sub.add_parser(
        "run", help="run Bernoulli spike input through a network and count every event",
        description="Run T steps of Bernoulli input through a network in the event-driven engine and print "
                    "per-layer counts: spikes, synaptic operations (SOPs), neuron updates, memory bytes.")
    _add_run_arguments(run)
    run.set_defaults(func=cmd_run)


def _add_chips(sub) -> None:
    chips_cmd = sub.add_parser("chips", help="list the chip profiles, or show one",
                               description="List the shipped chip profiles (or show one with its sources).")
    chips_cmd.add_argument("action", nargs="?", choices=["show"], help="'show NAME' prints one profile")
    chips_cmd.add_argument("name", nargs="?", metavar="NAME|PATH", help="chip name or a profile .yaml path")
    chips_cmd.add_argument("--json", action="store_true", help="print as JSON")
    chips_cmd.set_defaults(func=cmd_chips)


def _add_estimate(sub) -> None:
    est = sub.add_parser(
        "estimate", help="price a run on one chip or all: energy (µJ), latency (ms), fit on the cores",
        description="Run Bernoulli input through a network, map it onto each chip's cores and price the exact "
                    "counts with the chip's published figures (µJ and ms in tables; joules and seconds in JSON). "
                    "With --rules, price one on-chip training sample per rule instead of inference.")
    _add_run_arguments(est)
    _add_chip_argument(est)
    est.add_argument("--plot", metavar="FILE.png", help="draw the energy breakdown per chip to a PNG file")
    add_rules_argument(est, on_chip=True)
    add_option_arguments(est, on_chip=True)
    _add_pricing_arguments(est)
    est.set_defaults(func=cmd_estimate)


def _add_feasibility(sub) -> None:
    fea = sub.add_parser(
        "feasibility", help="chips x rules: can the chip learn on chip, with how much memory per core and energy",
        description="For every chip and learning rule: the verdict (feasible, infeasible with the missing "
                    "capability or broken limit named, or unknown where the chip does not publish it), the "
                    "learning memory per core (bytes) and the energy (µJ) and latency (ms) per training sample.")
    fea.add_argument("--net", required=True, metavar="SPEC|FILE",
                     help="network spec string or a network file: .npz (hwsim), .nir (NIR), .net (netx)")
    _add_chip_argument(fea)
    add_rules_argument(fea, on_chip=True, default="all")
    add_option_arguments(fea, on_chip=True)
    fea.add_argument("--timesteps", "-T", type=positive_int, default=DEFAULT_TIMESTEPS, metavar="T",
                     help=f"time steps (default {DEFAULT_TIMESTEPS}, as estimate)")
    fea.add_argument("--rate", type=probability, default=DEFAULT_RATE, metavar="P",
                     help=f"input spike probability per input neuron per step, 0..1 (default {DEFAULT_RATE:g})")
    fea.add_argument("--input", metavar="FILE", help=INPUT_HELP)
    _add_pricing_arguments(fea)
    fea.add_argument("--seed", type=seed, default=0, help="seed for weights, input and labels")
    fea.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    fea.add_argument("--plot", metavar="FILE.png", help="draw the chips x rules heatmap to a PNG file")
    fea.set_defaults(func=cmd_feasibility)


def _add_pricing_arguments(cmd: argparse.ArgumentParser) -> None:
    """The assumptions that can reorder chips (hwsim.hardware.pricing.Pricing), each printed with the results."""
    group = cmd.add_argument_group("pricing assumptions (each can reorder chips; the report says when it would)")
    group.add_argument("--static", default="whole-chip", choices=["whole-chip", "cores-used", "none"],
                       help=STATIC_HELP)
    group.add_argument("--time-base", choices=["compute", "tick"], default=None,
                       help="time per step: compute-bound, or the chip's real-time tick (static power for the whole "
                            "tick); default: each chip profile's own (hwsim chips show NAME)")
    group.add_argument("--tick-us", type=finite_positive_float, default=None, metavar="US",
                       help="real-time tick in µs (implies --time-base tick; default: the profile's)")
    group.add_argument("--placement", default=None, metavar="packed|spread|N|N+input",
                       help="layers onto cores: the fewest cores (packed, default), spread over the chip, at most N "
                            "neurons per core, or N+input (the inputs on a core of their own, as SANA-FE)")


def _add_validate(sub) -> None:
    val = sub.add_parser(
        "validate", help="the chip profiles against published silicon measurements: measured, estimated, ratio, band",
        description="Rebuild each published chip measurement as a workload, price it on the same basis as the source "
                    "measured it, and print measured, estimated, ratio and band (docs/validation.md).")
    val.add_argument("--json", action="store_true", help="print the cases as JSON")
    val.set_defaults(func=cmd_validate)


def _add_export(sub) -> None:
    exp = sub.add_parser(
        "export", help="quantise a trained network and write Lava, netx and NIR files with golden spikes",
        description="Quantise a trained float network to Loihi fixed point (reporting accuracy before and after "
                    "and every clipped value), write network.npz, model.net (netx), model.nir (NIR), golden.npz "
                    "and run_lava.py; --verify runs it in Lava (fixed_pt) and checks every layer spike for spike.")
    exp.add_argument("--checkpoint", required=True, metavar="CKPT",
                     help="hwsim train checkpoint (its .network.npz beside it) or a saved .npz network")
    exp.add_argument("--out", required=True, metavar="DIR", help="output folder")
    exp.add_argument("--verify", action="store_true", help="run in Lava and compare spikes layer by layer")
    exp.add_argument("--force", action="store_true",
                     help="export a checkpoint whose content checksum is missing or wrong, or whose network file is "
                          "not the one it names")
    exp.add_argument("--learning", action="store_true",
                     help="also train the read-out in Lava with a three-factor LearningDense rule and correlate its "
                          "weight change with hwsim's fixed-point OTTT")
    exp.add_argument("--dataset", "--data", dest="data", action=DeprecatedAlias, metavar="NAME",
                     help="dataset for the accuracy report (default: the checkpoint's)")
    exp.add_argument("--timesteps", "-T", type=positive_int, metavar="T",
                     help="time steps (default: the checkpoint's)")
    exp.add_argument("--json", action="store_true", help="print the summary as JSON")
    exp.set_defaults(func=cmd_export)


def _add_study(sub) -> None:
    st = sub.add_parser(
        "study", help="the main job: train, simulate, learn on chip, price every chip, export, report",
        description="Runs the whole study (torch training, hwsim float and fixed point, on-chip learning, energy "
                    "and feasibility on every chip, Lava export with verification) and writes DIR/report.md, "
                    "figures and DIR/results.json. Finished stages are kept: rerun to resume.")
    st.add_argument("--config", metavar="FILE.yaml", help="study configuration (default: the built-in study)")
    st.add_argument("--out", default="study", metavar="DIR", help="output folder (default: study)")
    st.add_argument("--no-progress", action="store_true", help="no progress bars")
    st.set_defaults(func=cmd_study)


def _add_sweep(sub) -> None:
    sw = sub.add_parser(
        "sweep", help="a design-space sweep of studies on Dask: one row per point, resumable, Pareto figures",
        description="Cross (or zip) study keys into points -- one trained rule on one chip each -- and run them as "
                    "Dask tasks (a LocalCluster on this machine, or --scheduler), sharing trainings between points. "
                    "Writes DIR/points.parquet as points finish, DIR/sweep.md and figures; rerun to complete what "
                    "is missing. See docs/sweep.md.")
    sw.add_argument("--config", required=True, metavar="FILE.yaml", help="sweep configuration (base study and axes)")
    sw.add_argument("--out", required=True, metavar="DIR", help="output folder (on a filesystem every worker sees)")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786 "
                                                           "(default: a LocalCluster on this machine)")
    sw.add_argument("--workers", type=positive_int, metavar="N", help="LocalCluster workers (default: one per core)")
    sw.add_argument("--serial", action="store_true", help="no Dask: run the points one after another in this process")
    sw.add_argument("--connect-timeout", type=finite_positive_float, default=10.0, metavar="S",
                    help="seconds to wait for --scheduler to answer (10)")
    sw.add_argument("--json", action="store_true", help="print the summary (counts, table, report, figures) as JSON")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=cmd_sweep)


def _add_train(sub) -> None:
    tr = sub.add_parser(
        "train", help="train a network in torch with a learning rule (BPTT, SLTT, OTTT, TTL-BPTT, STDL, ...)",
        description="Reference training in torch with per-epoch accuracy, activation memory (bytes kept for "
                    "backward) and time; checkpoints every epoch; --resume continues exactly. Runs under "
                    "torchrun for several processes (gradients averaged across ranks).")
    add_rules_argument(tr, required=True, one=True)
    add_option_arguments(tr)
    tr.add_argument("--dataset", "--data", dest="dataset", action=DeprecatedAlias, default="digits", metavar="NAME",
                    help="digits (built in), randman (procedural), cue (procedural: the e-prop paper's cue "
                         "accumulation; -T >= 120 sets the delay, e.g. -T 170), mnist/nmnist/shd from --data-path, "
                         "a FILE.npz (x_train, y_train, x_test, y_test) or tonic:<Name> (optional tonic package)")
    tr.add_argument("--epochs", type=positive_int, default=5, metavar="E", help="epochs (default 5)")
    tr.add_argument("--timesteps", "-T", type=positive_int, default=8, metavar="T",
                    help="time steps per sample (default 8)")
    tr.add_argument("--net", metavar="SPEC", help="network spec (default per dataset, e.g. 64-128-10 for digits)")
    tr.add_argument("--batch-size", type=positive_int, default=32, metavar="B", help="samples per batch (32)")
    tr.add_argument("--lr", type=learning_rate, default=0.1,
                    help="SGD learning rate (momentum 0.9), default 0.1")
    tr.add_argument("--seed", type=seed, default=0, help="seed for data encoding, weights and shuffling")
    tr.add_argument("--data-path", metavar="PATH", help="folder or file of a local dataset (mnist, nmnist, shd)")
    tr.add_argument("--bin-us", type=finite_positive_float, default=None, metavar="US",
                    help="tonic event data sets: fixed event bins in µs (default: each sample's duration cut into T)")
    tr.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    tr.add_argument("--out", metavar="CKPT",
                    help="checkpoint written after every epoch, with the trained network beside it as "
                         "CKPT-stem.network.npz (default: the --resume file, else runs/RULE-DATASET.pt, numbered "
                         "so that no earlier run is overwritten)")
    tr.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (same configuration)")
    tr.add_argument("--force", action="store_true",
                    help="replace an existing --out file (or another checkpoint's network file), and resume from a "
                         "checkpoint whose content checksum is missing or wrong")
    tr.add_argument("--json", action="store_true",
                    help="print the per-epoch history as JSON at the end (the epoch lines go to stderr)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)


INPUT_HELP = ("spike input instead of --rate: .npz with 'spikes' (T, B, *input_shape) of 0/1, or events t, x[, y, p] "
              "with sensor_size (T and B come from the file: --rate, --batch-size and -T are refused with it)")


def _add_run_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--net", required=True, metavar="SPEC|FILE",
                     help="network spec string (e.g. 784-512-10, 1x28x28-c8k3p1-p2-10) or a network file: .npz "
                          "(hwsim), .nir (NIR, e.g. from snnTorch), .net (lava-dl netx)")
    cmd.add_argument("--timesteps", "-T", type=positive_int, default=DEFAULT_TIMESTEPS, metavar="T",
                     help=f"number of time steps (default {DEFAULT_TIMESTEPS})")
    cmd.add_argument("--rate", type=probability, default=DEFAULT_RATE, metavar="P",
                     help=f"input spike probability per input neuron per step, 0..1 (default {DEFAULT_RATE:g})")
    cmd.add_argument("--input", metavar="FILE", help=INPUT_HELP)
    cmd.add_argument("--batch-size", "--batch", "-B", dest="batch", type=positive_int, default=1, metavar="B",
                     action=_DeprecatedInt, help="independent samples (default 1); energies are also given per sample")
    cmd.add_argument("--mode", default=None, metavar="MODE",
                     help=f"numeric form: float (float32 LIF) or fixed (Loihi fixed point); default {DEFAULT_MODE} "
                          f"for a spec, the file's own for a saved network (a float file asked for fixed is quantised)")
    cmd.add_argument("--seed", type=seed, default=0, metavar="S", help="seed for weights and input (default 0)")
    cmd.add_argument("--engine", choices=["numba", "torch"], default="numba",
                     help="numba: the event-driven CPU engine (default); torch: dense tensor ops for large batches on "
                          "--device (same counts, fixed point bit-identical)")
    cmd.add_argument("--device", type=device, default="cpu", help="cpu (default), cuda or cuda:N (with --engine torch)")
    cmd.add_argument("--json", action="store_true", help="print results as JSON (only JSON on stdout)")


class _DeprecatedInt(DeprecatedAlias):
    """``--batch``/``-B`` → ``--batch-size`` (the value already converted by ``type``)."""


def _add_chip_argument(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--chip", "--chips", dest="chip", action="append", metavar="NAME[,NAME...]|PATH|all",
                     help="chip profile names or .yaml paths, comma-separated and/or repeated, or 'all' (default)")


def _user_errors() -> tuple[type[Exception], ...]:
    """The error classes that mean bad input (one line on stderr, exit 2), from modules that import nothing
    heavy; a chip or npz error can only come from an already imported ``chips`` or ``hwsim.safeio``."""
    from hwsim import errors
    from hwsim.methods.errors import DataError, RuleError
    from hwsim.sim.threads import ThreadsError

    found = [errors.NetworkError, errors.InputError, errors.UsageError, errors.LearningError,
             errors.FeasibilityError, errors.StudyError, errors.SweepError, DataError, RuleError, ThreadsError]
    for module, name in (("hwsim.chips", "ChipError"), ("hwsim.safeio", "NpzError"),
                         ("hwsim.hardware.mapping", "PlacementError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 bad input, 130 interrupted)."""
    command = "hwsim"
    errors.clear_interrupt()
    previous = _install_sigint()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # --help and a bad argument (one line printed, status 2) exit here
        given = sys.argv[1:] if argv is None else argv
        args.timesteps_given = any(a in ("-T", "--timesteps") or a.startswith("--timesteps=") or
                                   (a.startswith("-T") and a[2:].isdigit()) for a in given)
        args.rate_given = any(a == "--rate" or a.startswith("--rate=") for a in given)
        args.batch_given = any(a in ("-B", "--batch", "--batch-size") or a.startswith(("--batch=", "--batch-size="))
                               or (a.startswith("-B") and a[2:].isdigit()) for a in given)
        if args.command is None:
            print("hwsim: error: give a COMMAND (run, chips, estimate, feasibility, validate, export, study, train, "
                  "sweep); see hwsim --help", file=sys.stderr)
            return EXIT_USAGE
        command = f"hwsim {args.command}"
        return _dispatch(args, command)
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _install_sigint():
    """Ctrl-C through :func:`hwsim.errors.on_sigint` (main thread only); returns the handler to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, errors.on_sigint)


@contextlib.contextmanager
def _memory_limit(limit: int | None):
    """``--max-memory`` for this command: the limit of :func:`hwsim.safeio.memory_limit`, and in the environment
    for the processes it starts (sweep workers); both restored afterwards."""
    if limit is None:
        yield
        return
    from hwsim.safeio import MEMORY_ENV, set_memory_limit

    before = os.environ.get(MEMORY_ENV)
    set_memory_limit(limit)
    os.environ[MEMORY_ENV] = str(limit)
    try:
        yield
    finally:
        set_memory_limit(None)
        if before is None:
            os.environ.pop(MEMORY_ENV, None)
        else:
            os.environ[MEMORY_ENV] = before


def _dispatch(args: argparse.Namespace, command: str) -> int:
    def fail(kind: str, message: object, code: int) -> int:
        print(f"{command}: {kind}: {one_line(str(message), 600)}", file=sys.stderr)
        return code

    try:
        with _memory_limit(getattr(args, "max_memory", None)):
            hwsim.sim.threads.set_threads(args.threads)  # once, before any kernel or torch work
            return args.func(args)
    except ValueError as err:
        if not isinstance(err, _user_errors()):
            if os.environ.get("HWSIM_TRACEBACK"):
                raise
            return fail("internal error", f"{type(err).__name__}: {err} (a bug in hwsim; HWSIM_TRACEBACK=1 shows "
                                          f"where)", EXIT_FAILURE)
        return fail("error", err, EXIT_USAGE)
    except Failure as err:
        return fail("error", err, EXIT_FAILURE)
    except MemoryError:
        return fail("error", "out of memory (the sizes asked for need more memory than this machine gives)",
                    EXIT_FAILURE)
    except BrokenPipeError:  # output piped into a command that stopped reading (head, less)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- keep the interpreter from a second error at exit
        return EXIT_FAILURE
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        return fail("error", f"{err.strerror or err}{where}", EXIT_FAILURE)
    except KeyboardInterrupt:
        raise
    except Exception as err:
        if os.environ.get("HWSIM_TRACEBACK"):
            raise
        return fail("internal error", f"{type(err).__name__}: {err} (a bug in hwsim; HWSIM_TRACEBACK=1 shows "
                                      f"where)", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
