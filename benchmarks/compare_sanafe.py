"""hwsim's ``loihi_sanafe`` profile against SANA-FE on SANA-FE's own Loihi workload, side by side.

The workload (``tests/data/sanafe_loihi_mlp``): a 784-512-512-10 LIF MLP, Bernoulli(0.1) input, T = 1000,
batch 1, SANA-FE's weights and the spikes SANA-FE produced; mapped as SANA-FE mapped it (128 neurons per
core, 4 cores per tile, the inputs on core 0). hwsim prices it twice: on SANA-FE's spikes (the cost model
alone) and on hwsim's own float run of the same weights (neuron model + cost model). SANA-FE's figures are
its stored 2.2.9 result, or a live run when SANA-FE is installed in a separate environment (its wheel
installs top-level ``tests``, ``src`` and ``scripts`` packages, so keep it out of hwsim's):

    python3 -m venv /tmp/sanafe_venv && /tmp/sanafe_venv/bin/pip install sanafe==2.2.9
    python benchmarks/compare_sanafe.py [--sanafe-python /tmp/sanafe_venv/bin/python]

Energy components as SANA-FE groups them: synapse = SOPs; soma = neuron updates + spikes out; network =
packets (message out) + hops.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim import chips  # noqa: E402
from hwsim.hardware.cost import estimate  # noqa: E402
from hwsim.hardware.mapping import map_network  # noqa: E402
from hwsim.sim.counts import Counts, LayerCounts  # noqa: E402
from hwsim.sim.network import Dense, FloatLIF, Network  # noqa: E402

DATA = ROOT / "tests" / "data" / "sanafe_loihi_mlp"
SIZES = {"input_spikes": 784, "sanafe_spikes_h1": 512, "sanafe_spikes_h2": 512, "sanafe_spikes_out": 10}
NEURONS_PER_CORE = 128  # SANA-FE's "spread" mapping of this workload
INPUT_CORES = 1  # SANA-FE maps the input neurons on core 0
# two more workloads for the latency models (same weights, T = 200): half the input spikes; 64 neurons per core
VARIANTS = {"rate5": {"keep": 0.5, "neurons_per_core": 128, "label": "5 % input, 128 neurons per core"},
            "core64": {"keep": 1.0, "neurons_per_core": 64, "label": "10 % input, 64 neurons per core"}}
VARIANT_SEED = 1
VARIANT_STEPS = 200
COMPONENTS = {"synapse": ("sop",), "soma": ("neuron_update", "spike_out"), "network": ("packet", "routing")}


def load_workload() -> dict[str, np.ndarray]:
    """Weights (float32, (n_in, n_out)) and spike rasters (uint8, (T, n)) of SANA-FE's workload."""
    raw = np.load(DATA / "workload_T1000.npz")
    out = {k: raw[k].astype(np.float32) for k in ("W1", "W2", "W3")}
    for name, n in SIZES.items():
        out[name] = np.unpackbits(raw[name + "_bits"], axis=1)[:, :n]
    return out


def sanafe_result() -> dict:
    return json.loads((DATA / "sanafe_result_T1000.json").read_text())


def network(workload: dict) -> Network:
    """The MLP with SANA-FE's neuron: v <- 0.9 v + input, threshold 1, soft reset."""
    neuron = FloatLIF(lam=0.9, v_th=1.0, reset="soft")
    layers = [Dense(workload[w].T.copy(), neuron, name=f"dense{i}") for i, w in enumerate(("W1", "W2", "W3"))]
    return Network(784, layers)


def counts_from_spikes(net: Network, workload: dict) -> Counts:
    """Exact counts of SANA-FE's run from its spike rasters (dense layers: every input spike reaches every
    neuron of the layer; a neuron update is active when any input spiked that step)."""
    rasters = [workload[k] for k in SIZES]
    steps = rasters[0].shape[0]
    counts = Counts(steps, 1, "float")
    for layer, pre, post in zip(net.layers, rasters[:-1], rasters[1:]):
        lc = LayerCounts(layer.name, "dense", layer.n_in, layer.n_out, steps)
        spikes_in = pre.sum(axis=1).astype(np.int64)
        lc.events["spikes_in"][:] = spikes_in
        lc.events["sop"][:] = spikes_in * layer.n_out
        lc.events["neuron_updates"][:] = layer.n_out
        lc.events["neuron_updates_active"][:] = (spikes_in > 0) * layer.n_out
        lc.events["spikes_out"][:] = post.sum(axis=1)
        lc.neuron_spikes = post.sum(axis=0).astype(np.int64)
        lc.neuron_active = np.full(layer.n_out, int((spikes_in > 0).sum()), np.int64)
        lc.input_spikes = pre.sum(axis=0).astype(np.int64)
        counts.layers.append(lc)
    return counts


def hwsim_counts(net: Network, workload: dict) -> Counts:
    """hwsim's own float run of the same weights on the same input spikes."""
    from hwsim.sim.engine import Engine

    spikes = workload["input_spikes"].astype(np.float32)[:, None, :]
    return Engine(net).run(spikes).counts


def price(net: Network, counts: Counts, neurons_per_core: int = NEURONS_PER_CORE) -> dict:
    """SANA-FE's figures of merit from hwsim's loihi_sanafe estimate (static power left out: SANA-FE has none)."""
    chip = chips.load("loihi_sanafe")
    mapping = map_network(net, chip, counts, neurons_per_core=neurons_per_core, input_cores=INPUT_CORES)
    report = estimate(net, counts, chip, mapping, static="none")
    by = report.energy_by_action_j
    parts = {name: sum(by.get(a, 0.0) for a in actions) for name, actions in COMPONENTS.items()}
    events = counts.total("sop")
    total = report.energy_dynamic_j
    return {"synaptic_events": events, "packets": sum(p.packets_in for p in mapping.layers),
            "energy_j": total, "pj_per_event": total / events * 1e12,
            "shares_percent": {k: v / total * 100 for k, v in parts.items()},
            "us_per_step": report.step_latency_s * 1e6, "latency_model": report.latency_model,
            "us_per_step_simple": report.step_latency_simple_s * 1e6, "cores": mapping.cores_used}


def sanafe_figures(result: dict) -> dict:
    e = result["energy"]
    return {"synaptic_events": result["spikes"], "packets": result["packets_sent"], "energy_j": e["total"],
            "pj_per_event": result["pJ_per_event"],
            "shares_percent": {k: e[k] / e["total"] * 100 for k in COMPONENTS},
            "us_per_step": result["us_per_step"], "us_per_step_simple": result["us_per_step_simple"], "cores": 10}


LIVE = r"""
import json, sys
import numpy as np
import sanafe
data = np.load(sys.argv[1])
arch = sanafe.load_arch(sys.argv[2])
net = sanafe.Network()
T = int(sys.argv[3])
per_core = int(sys.argv[5])
lif = {"threshold": 1.0, "leak_decay": 0.9, "reset_mode": "soft", "input_decay": 0.0}
groups = [net.create_neuron_group("in", 784, {})]
for i, n in enumerate((512, 512, 10)):
    groups.append(net.create_neuron_group(f"l{i}", n, lif, soma_hw_name="loihi_lif",
                                          default_synapse_hw_name="loihi_dense_synapse"))
for k, w in enumerate(("W1", "W2", "W3")):
    groups[k].connect_neurons_dense(groups[k + 1], {"w": data[w].astype(np.float32).flatten()})
spikes = np.unpackbits(data["input_spikes_bits"], axis=1)[:T, :784]
cores = arch.cores()
for j, neuron in enumerate(groups[0].neurons):
    neuron.map_to_core(cores[0])
    neuron.set_attributes(soma_hw_name=f"loihi_inputs[{j}]",
                          model_attributes={"spikes": [bool(x) for x in spikes[:, j]]})
core = 1
for g in groups[1:]:
    for j, neuron in enumerate(g.neurons):
        neuron.map_to_core(cores[core + j // per_core])
    core += (len(g.neurons) + per_core - 1) // per_core
chip = sanafe.SpikingChip(arch)
chip.load(net)
r = chip.sim(T, timing_model=sys.argv[4])
print(json.dumps({k: r[k] for k in ("energy", "sim_time", "spikes", "packets_sent")}))
"""


def run_sanafe(python: str, timesteps: int, timing: str = "detailed", variant: str | None = None) -> dict:
    """SANA-FE's own run (its Loihi architecture, ``timing`` model "detailed" or "simple") in the given
    interpreter, of the workload or one of its ``VARIANTS``; raises RuntimeError with the reason when it
    cannot run."""
    probe = subprocess.run([python, "-c", "import sanafe, os; print(os.path.dirname(sanafe.__file__))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(f"{python} cannot import sanafe: {probe.stderr.strip().splitlines()[-1:]}")
    arch = Path(probe.stdout.strip()) / "examples" / "loihi.yaml"
    data, per_core = DATA / "workload_T1000.npz", NEURONS_PER_CORE
    with tempfile.TemporaryDirectory() as tmp:
        if variant is not None:
            raw = dict(np.load(data))
            spikes = variant_input(np.unpackbits(raw["input_spikes_bits"], axis=1)[:, :784], variant)
            raw["input_spikes_bits"] = np.packbits(spikes, axis=1)
            data, per_core = Path(tmp) / "variant.npz", VARIANTS[variant]["neurons_per_core"]
            np.savez(data, **raw)
        run = subprocess.run([python, "-c", LIVE, str(data), str(arch), str(timesteps), timing, str(per_core)],
                             capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"SANA-FE run failed: {run.stderr.strip().splitlines()[-1][:300]}")
    r = json.loads(run.stdout.strip().splitlines()[-1])
    e = r["energy"]
    return {"synaptic_events": r["spikes"], "packets": r["packets_sent"], "energy_j": e["total"],
            "pj_per_event": e["total"] / max(r["spikes"], 1) * 1e12,
            "shares_percent": {k: e[k] / e["total"] * 100 for k in COMPONENTS},
            "us_per_step": r["sim_time"] / timesteps * 1e6, "cores": 10}


def run_sanafe_both(python: str, timesteps: int, variant: str | None = None) -> dict:
    """SANA-FE live with its detailed timing model, plus the step time of its simple one."""
    figures = run_sanafe(python, timesteps, "detailed", variant)
    figures["us_per_step_simple"] = run_sanafe(python, timesteps, "simple", variant)["us_per_step"]
    return figures


def variant_input(spikes: np.ndarray, variant: str) -> np.ndarray:
    """The input raster (T, 784) of a variant: each input spike of the workload kept with probability
    ``keep`` (seeded)."""
    keep = VARIANTS[variant]["keep"]
    mask = np.random.default_rng(VARIANT_SEED).random(spikes.shape) < keep
    return (spikes * mask).astype(np.uint8)


def price_variant(workload: dict, variant: str, timesteps: int = VARIANT_STEPS) -> dict:
    """hwsim's own run of a variant, priced with its placement."""
    from hwsim.sim.engine import Engine

    net = network(workload)
    spikes = variant_input(workload["input_spikes"], variant)[:timesteps].astype(np.float32)[:, None, :]
    counts = Engine(net).run(spikes).counts
    return price(net, counts, VARIANTS[variant]["neurons_per_core"])


def sanafe_variants() -> dict:
    return json.loads((DATA / "sanafe_variants_T200.json").read_text())


def compare_variants(sanafe_python: str | None = None) -> str:
    """Latency per step (us) of hwsim's own run against SANA-FE's, on the variants, as a table."""
    workload = load_workload()
    stored = sanafe_variants()
    lines = ["| variant | hwsim detailed | SANA-FE detailed | hwsim simple | SANA-FE simple |", "|---|---|---|---|---|"]
    for name, spec in VARIANTS.items():
        ours = price_variant(workload, name)
        theirs = stored[name]
        if sanafe_python:
            live = run_sanafe_both(sanafe_python, VARIANT_STEPS, name)
            theirs = {"us_per_step": live["us_per_step"], "us_per_step_simple": live["us_per_step_simple"]}
        lines.append(f"| {spec['label']} | {ours['us_per_step']:.1f} | {theirs['us_per_step']:.1f} | "
                     f"{ours['us_per_step_simple']:.1f} | {theirs['us_per_step_simple']:.1f} |")
    return "\n".join(lines)


def table(columns: dict[str, dict]) -> str:
    rows = [("synaptic events", lambda f: f"{f['synaptic_events']:,}"),
            ("packets", lambda f: f"{f['packets']:,}"),
            ("energy per event (pJ)", lambda f: f"{f['pj_per_event']:.2f}"),
            ("synapse share (%)", lambda f: f"{f['shares_percent']['synapse']:.1f}"),
            ("soma share (%)", lambda f: f"{f['shares_percent']['soma']:.1f}"),
            ("network share (%)", lambda f: f"{f['shares_percent']['network']:.1f}"),
            ("latency per step, detailed model (us)", lambda f: f"{f['us_per_step']:.1f}"),
            ("latency per step, simple model (us)", lambda f: f"{f['us_per_step_simple']:.1f}")]
    names = list(columns)
    lines = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(columns[n]) for n in names) + " |")
    return "\n".join(lines)


def compare(sanafe_python: str | None = None, timesteps: int = 1000) -> dict[str, dict]:
    workload = load_workload()
    net = network(workload)
    columns = {"hwsim on SANA-FE's spikes": price(net, counts_from_spikes(net, workload)),
               "hwsim's own run": price(net, hwsim_counts(net, workload)),
               "SANA-FE 2.2.9 (stored)": sanafe_figures(sanafe_result())}
    if sanafe_python:
        try:
            columns["SANA-FE 2.2.9 live"] = run_sanafe_both(sanafe_python, timesteps)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as err:
            print(f"SANA-FE live run not available: {err}", file=sys.stderr)
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sanafe-python", metavar="PYTHON",
                        help="interpreter of a separate environment with sanafe 2.2.9 installed, to run it live")
    parser.add_argument("--variants", action="store_true",
                        help="also compare the latency on two more workloads (5 %% input; 64 neurons per core)")
    args = parser.parse_args()
    print(table(compare(args.sanafe_python)))
    if args.variants:
        print("\nLatency per step (us), hwsim's own run against SANA-FE, T = 200:\n")
        print(compare_variants(args.sanafe_python))
    print("\nLatency: hwsim's detailed model (the profile's, timing.model: detailed) schedules every message as "
          "SANA-FE's detailed model does (receivers one message at a time, senders stalled when a route's link buffers "
          "are full); its simple model is the busiest core's work + the longest route + the sync table.")
    if not args.sanafe_python:
        print("SANA-FE was not run live (give --sanafe-python; install it in its own venv: python3 -m venv "
              "/tmp/sanafe_venv && /tmp/sanafe_venv/bin/pip install sanafe==2.2.9).")


if __name__ == "__main__":
    main()
