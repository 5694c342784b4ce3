"""The training loop behind ``hwsim train``: seeded, checkpointed every epoch, exactly resumable, and
data-parallel under ``torchrun``.

Determinism: the dataset encoding, the weight initialisation and each epoch's shuffle are functions of
the seed (and the epoch), and the checkpoint holds the model, the auxiliary modules, the optimizer and the
rule's random generator, so a run interrupted after any epoch and resumed ends with the same weights as
an uninterrupted run.

Data parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) each rank trains on its own shard of every batch;
the rules' per-step backward passes accumulate gradients locally (DDP's ``no_sync``) and
DistributedDataParallel all-reduces them once per weight update (:class:`SyncedOptimizer`). gloo on CPU,
NCCL on CUDA.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from hwsim.methods import build_rule
from hwsim.methods.data import DataError, SpikeDataset, load_dataset
from hwsim.methods.memory import ActivationMeter, persistent, whole_training_bytes
from tqdm import tqdm

from hwsim.errors import Failure, WriteError, check_interrupt
from hwsim.learning import registry
from hwsim.safeio import OutputLock, atomic_path
from hwsim.sim.network import Network, from_spec, save
from hwsim.sim.threads import apply_to_torch

DEFAULT_NETS = {"digits": "64-128-10", "randman": "64-128-10", "mnist": "784-256-10", "nmnist": "2x34x34-c8k5s2-p2-10",
                "dvs_bars": "2x16x16-c8k3p1-p2-c16k3p1-p2-4",
                "shd": "700-256-20", "cue": "40-a64-2"}


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in the checkpoint; a resume must match it)."""

    rule: str
    dataset: str = "digits"
    epochs: int = 5
    timesteps: int = 8
    net: str | None = None
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    k: int = 2
    window: int = 2  # TTL-BPTT truncation window (the CLI default too; 1 would be SLTT)
    block: int = 1
    subnet: int = 1
    budget_bytes: int = 128 * 1024  # hwsim.learning.stdl_plan.DEFAULT_BUDGET_BYTES
    data_path: str | None = None
    device: str = "cpu"
    # rule hyper-parameters (hwsim.methods.build_rule; None: the network's / the rule's default, docs/rules.md)
    tau: float | None = None
    v_th: float | None = None
    surrogate: str | None = None
    alpha: float | None = None
    mse: float = 0.0
    mse_target: str | None = None
    ttl_update: str = "batch"
    eligibility: str | None = None  # e-prop (docs/eprop.md); None: the registry's default
    feedback: str | None = None
    kappa: float | None = None
    bin_us: float | None = None  # tonic data sets: fixed event bins in µs (None: each sample's span cut into T)

    def network_spec(self) -> str:
        return self.net or DEFAULT_NETS[self.dataset]


@dataclass
class EpochStats:
    """One epoch. Memory, in bytes: ``activation_bytes`` -- the saved-tensor meter's peak over the epoch;
    ``allocator_peak_bytes`` -- the allocator's peak over one training batch (the epoch's second, or its only)
    above the level at the batch's start; ``whole_training_bytes`` -- at that peak, everything training holds:
    parameters, gradients and optimizer state at the batch's start plus that peak (the papers' basis);
    ``cuda_peak_bytes`` -- ``max_memory_allocated`` over the epoch on CUDA. None where not measured (checkpoints
    written before these fields existed)."""

    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float
    activation_bytes: int
    seconds: float
    cuda_peak_bytes: int | None = None
    allocator_peak_bytes: int | None = None
    whole_training_bytes: int | None = None


# rules whose training loss adds local classifiers' losses to the output's: not comparable with the others'


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EpochStats] = field(default_factory=list)
    describe: dict = field(default_factory=dict)


class _GradSync(torch.nn.Module):
    """The trained parameters, for DistributedDataParallel. Its forward is a zero that depends on every
    parameter, so one backward through it adds nothing to the gradients and lets DDP's reducer all-reduce
    (average) the gradients the rule's own backward passes accumulated in ``.grad``."""

    def __init__(self, params: list[torch.nn.Parameter]):
        super().__init__()
        self.params = torch.nn.ParameterList(params)

    def forward(self) -> torch.Tensor:
        return torch.stack([(p * 0).sum() for p in self.params]).sum()


class SyncedOptimizer:
    """Wraps an optimizer: under torch.distributed, averages the gradients across ranks before each step
    with :class:`~torch.nn.parallel.DistributedDataParallel`.

    The rules run one backward pass per time step (or per window) through their own modules; those passes
    accumulate gradients locally, as backward passes do inside DDP's ``no_sync()`` (:meth:`accumulating`).
    The last backward of the batch is DDP's: at :meth:`step`, one zero-valued backward through the DDP
    wrapper makes its bucketed all-reduce average the accumulated ``.grad`` of every parameter across ranks
    (a parameter no step touched joins with a zero gradient), then the wrapped optimizer steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter]):
        self.optimizer = optimizer
        self.params = list({id(p): p for p in params if p.requires_grad}.values())
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.ddp = None
        if self.world > 1:  # broadcasts rank 0's parameters, so every rank starts from the same weights
            self.ddp = torch.nn.parallel.DistributedDataParallel(_GradSync(self.params))

    def close(self) -> None:
        """Drop the DDP wrapper, so that the process group it holds can be destroyed while this process runs
        (a gloo group left to interpreter shutdown can abort the process with a joinable C++ thread)."""
        self.ddp = None

    def accumulating(self):
        """Context for a batch's backward passes: gradients accumulate locally (DDP ``no_sync``)."""
        return self.ddp.no_sync() if self.ddp is not None else contextlib.nullcontext()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        if self.ddp is not None:
            syncing = self.ddp.require_backward_grad_sync
            self.ddp.require_backward_grad_sync = True  # this backward is the batch's last: it all-reduces
            try:
                self.ddp().backward()
            finally:
                self.ddp.require_backward_grad_sync = syncing
        self.optimizer.step()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def _distributed() -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group) under torchrun; (0, 1, False) alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    started = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("HWSIM_DDP_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend)
        started = True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), started
    return 0, 1, False


def end_distributed(optimizer: SyncedOptimizer) -> None:
    """Release the DDP wrapper, wait for every rank, and destroy the process group (a normal exit for gloo and
    NCCL alike: a group left to interpreter shutdown may abort the process)."""
    optimizer.close()
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def check_config(config: TrainConfig) -> None:
    """Refuse values no run can use (before any work): a bad learning rate, seed or device."""
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise DataError(f"--lr: expected a finite number > 0, got {config.lr!r}")
    if not (isinstance(config.seed, int) and 0 <= config.seed <= 2**32 - 1):
        raise DataError(f"--seed: expected an integer in 0..{2**32 - 1}, got {config.seed!r}")
    if not (isinstance(config.device, str) and re.fullmatch(r"cpu|cuda(:\d{1,3})?", config.device)):
        raise DataError(f"--device: expected cpu, cuda or cuda:N, got {config.device!r}")


def build(config: TrainConfig):
    """Dataset, hwsim network, rule and optimizer for ``config`` (device resolved)."""
    check_config(config)
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device is available here")
    data = load_dataset(config.dataset, config.timesteps, seed=config.seed, path=config.data_path,
                        bin_us=config.bin_us)
    network = from_spec(config.network_spec(), mode="float", seed=config.seed)
    if config.tau is not None or config.v_th is not None:  # the network file then carries the trained neuron
        from hwsim.methods import with_neuron

        network = with_neuron(network, tau=config.tau, v_th=config.v_th)
    network.timesteps = config.timesteps  # saved with it: the engine then refuses (N, T, ...) input by mistake
    if network.input_shape != data.shape and int(np.prod(network.input_shape)) == int(np.prod(data.shape)):
        data.x = data.x.reshape(*data.x.shape[:2], *network.input_shape)  # e.g. digits' 64 inputs as 1x8x8
    if network.input_shape != data.shape:
        raise DataError(f"--net {config.network_spec()}: input {network.input_shape} does not match the "
                        f"{config.dataset} data {data.shape}")
    if int(torch.tensor(network.output_shape).prod()) != data.n_classes:
        raise DataError(f"--net {config.network_spec()}: {network.output_shape} outputs, the {config.dataset} "
                        f"data has {data.n_classes} classes")
    torch.manual_seed(config.seed)
    rule = build_rule(config.rule, network, **rule_options(config), batch_size=config.batch_size,
                      seed=config.seed, device=config.device)
    rule.loss_steps = data.loss_steps  # the task's scored steps (None: every step), for every rule's loss
    params = list(rule.parameters())
    optimizer = SyncedOptimizer(torch.optim.SGD(params, lr=config.lr, momentum=config.momentum), params)
    return data, network, rule, optimizer


def _allocator_text(stats: EpochStats) -> str:
    if stats.allocator_peak_bytes is None:
        return ""
    whole = "" if stats.whole_training_bytes is None else \
        f", whole training {stats.whole_training_bytes / 1024:.1f} KiB"
    return f", allocator {stats.allocator_peak_bytes / 1024:.1f} KiB{whole}"


def rule_options(config: TrainConfig) -> dict:
    """The :func:`hwsim.methods.build_rule` keywords of ``config`` (hyper-parameters left at None are not given)."""
    options = {"k": config.k, "window": config.window, "block": config.block, "subnet": config.subnet,
               "budget_bytes": config.budget_bytes, "ttl_update": config.ttl_update, "mse": config.mse}
    for name in ("tau", "v_th", "surrogate", "alpha", "mse_target", "eligibility", "feedback", "kappa"):
        if getattr(config, name) is not None:
            options[name] = getattr(config, name)
    return options


def evaluate(rule, data: SpikeDataset, part: str, device: str, batch: int = 256) -> float:
    """Accuracy on ``part``: the arg-max of the read-out summed over the scored steps (``data.loss_steps``; every
    step when None)."""
    x, y = data.split(part)
    if len(y) == 0:
        return float("nan")
    correct = 0
    scored = getattr(data, "loss_steps", None)
    with torch.no_grad():
        for lo in range(0, len(y), batch):
            xb = x[lo: lo + batch].transpose(0, 1).to(device)
            logits = rule.model(xb) if scored is None else rule.model(xb, scored)
            correct += int((logits.argmax(1).cpu() == y[lo: lo + batch]).sum())
    return correct / len(y)


def network_file(checkpoint: str | Path) -> Path:
    """The float network written beside a checkpoint: ``CKPT.network.npz`` (suffix replaced)."""
    return Path(checkpoint).with_suffix(".network.npz")


def network_digest(network: Network) -> str:
    """SHA-256 of a network's description and tensors (not of the file's bytes, which hold zip times)."""
    digest = hashlib.sha256(json.dumps(network.describe(), sort_keys=True).encode())
    for layer in network.layers:
        tensors = (getattr(layer, "weight", None), getattr(layer, "bias", None), getattr(layer, "recurrent", None))
        for tensor in tensors:
            if isinstance(tensor, np.ndarray):
                digest.update(f"{tensor.dtype}{tensor.shape}".encode())
                digest.update(np.ascontiguousarray(tensor).tobytes())
    return digest.hexdigest()


CHECKPOINT_VERSION = 2  # 2: the checkpoint carries content_sha256 (version 1 had none)


def _digest_into(digest, value) -> None:
    """Feed ``value`` (nested dicts, lists, tuples, tensors, numbers, strings, None) into ``digest`` in one fixed
    order: dict keys sorted by their text, each value tagged with its type, a tensor as dtype, shape and bytes."""
    if isinstance(value, dict):
        digest.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _digest_into(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value))
        for item in value:
            _digest_into(digest, item)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    else:
        digest.update(f"{type(value).__name__}:{value!r}".encode())


def content_digest(state: dict) -> str:
    """SHA-256 of a checkpoint's content: every field but ``content_sha256`` itself (tensors by their bytes)."""
    digest = hashlib.sha256()
    _digest_into(digest, {k: v for k, v in state.items() if k != "content_sha256"})
    return digest.hexdigest()


def _checkpoint(path: Path, config: TrainConfig, epoch: int, rule, optimizer, history,
                network: Network | None) -> None:
    """Write the network file, then the checkpoint naming the network's digest, each atomically (unique
    temporary name, then rename). A kill between the two leaves a network one epoch ahead of the
    checkpoint; ``--resume`` rewrites it and ``hwsim export`` refuses it (digest mismatch)."""
    digest = None
    if network is not None:
        save(network, network_file(path))
        digest = network_digest(network)
    state = {"format": "hwsim-train-checkpoint", "version": CHECKPOINT_VERSION, "config": asdict(config),
             "epoch": epoch, "modules": [m.state_dict() for m in rule.modules()], "optimizer": optimizer.state_dict(),
             "generator": rule.generator.get_state() if hasattr(rule, "generator") else None,
             "history": [asdict(h) for h in history], "network_sha256": digest}
    state["content_sha256"] = content_digest(state)
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as err:  # torch's zip writer reports a short write (full disk, file size limit) so
            reason = " ".join(str(err).split())[:120]
            raise WriteError(f"{path}: cannot write: torch's writer failed ({reason}): a full disk or a file-size "
                             f"limit? (free some space, or write elsewhere); the file was left as it was (no partial "
                             f"file, no temporary file)") from None


_STATE_TYPES = {"config": dict, "epoch": int, "modules": list, "optimizer": dict, "history": list}


def _load_failure(err: Exception) -> str:
    """Why ``torch.load`` refused a file, in a few words: its restricted unpickler's own reason (torch wraps it
    in advice about ``weights_only`` that does not apply to a damaged file), else the error's first line."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n")[0].strip()
        return f"{type(err).__name__}: {reason or 'rejected by the weights-only unpickler'}"
    first = text.strip().split("\n")[0] if text.strip() else ""
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def load_checkpoint(path: str | Path, force: bool = False) -> dict:
    """Read and check an ``hwsim train`` checkpoint: every field present with its type, the configuration
    complete and well typed, and its content equal to the ``content_sha256`` it carries (a damaged tensor byte
    shows there: torch's reader checks no CRC). ``force`` accepts a checkpoint without a checksum or with a
    wrong one. Errors (:class:`DataError`) name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise DataError(f"{path}: not a readable hwsim training checkpoint ({_load_failure(err)})") from None
    if not isinstance(state, dict) or state.get("format") != "hwsim-train-checkpoint":
        raise DataError(f"{path}: not an hwsim training checkpoint (expected format 'hwsim-train-checkpoint')")
    for key, kind in _STATE_TYPES.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            got = "missing" if key not in state else f"a {type(state[key]).__name__}"
            raise DataError(f"{path}: damaged checkpoint: field {key!r} should be a {kind.__name__}, is {got}")
    state["config"] = asdict(_config_from(state["config"], path))
    if state["epoch"] < 0 or state["epoch"] >= state["config"]["epochs"]:
        raise DataError(f"{path}: damaged checkpoint: epoch {state['epoch']} outside "
                        f"0..{state['config']['epochs'] - 1}")
    if not force:
        saved = state.get("content_sha256")
        if not isinstance(saved, str):
            raise DataError(f"{path}: carries no content checksum (written before checkpoint version "
                            f"{CHECKPOINT_VERSION}, or altered), so damage cannot be ruled out; give --force to use it "
                            f"anyway")
        if saved != content_digest(state):
            raise DataError(f"{path}: damaged checkpoint: its content does not match the checksum it carries (a "
                            f"changed or corrupted byte); give --force to use it anyway")
    return state


_NONE_DEFAULT_TYPES = {name: (int, float) for name in ("tau", "v_th", "alpha", "kappa")}  # others: text


def _config_from(saved: dict, path: Path) -> TrainConfig:
    defaults = TrainConfig(rule="")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(str(k)[:40] for k in saved if k not in names)
    if unknown or "rule" not in saved:
        raise DataError(f"{path}: damaged checkpoint: configuration has unknown fields {unknown} or no 'rule'")
    for name, value in saved.items():
        default = getattr(defaults, name)
        if name == "rule":
            allowed = (str,)
        elif default is None:
            allowed = (type(None), *_NONE_DEFAULT_TYPES.get(name, (str,)))
        else:
            allowed = (int, float) if isinstance(default, float) else (type(default),)
        if not isinstance(value, allowed) or (isinstance(value, bool) and not isinstance(default, bool)):
            raise DataError(f"{path}: damaged checkpoint: configuration field {name!r} has type "
                            f"{type(value).__name__}")
    return TrainConfig(**saved)


def _finite_weights(rule) -> bool:
    """Whether every parameter of the rule's modules is finite."""
    return all(bool(torch.isfinite(p).all()) for module in rule.modules() for p in module.parameters())


def train(config: TrainConfig, out: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, log=print, force: bool = False) -> TrainResult:
    """Train ``config.epochs`` epochs; checkpoint to ``out`` after each; continue from ``resume`` (``force``:
    accept a resumed checkpoint whose checksum is missing or wrong). ``out`` and the network file beside it
    (``network_file(out)``, which ``a.pt`` and ``a.ckpt`` share) are each locked for the run."""
    apply_to_torch()  # the process's thread policy (hwsim --threads), set before any torch work
    rank, world, started = _distributed()
    check_config(config)
    state = load_checkpoint(resume, force) if resume is not None else None  # checked before any work
    if state is not None:
        saved = TrainConfig(**state["config"])
        if {**asdict(saved), "epochs": 0, "device": ""} != {**asdict(config), "epochs": 0, "device": ""}:
            raise DataError(f"{resume}: checkpoint was made with a different configuration: {asdict(saved)}")
    built = build(config)  # bad data or network options are refused before the output is touched
    locks = []
    try:
        if out is not None and rank == 0:
            locks.append(OutputLock(out, f"--out {out}", folder=False).acquire())
            locks.append(OutputLock(network_file(out), f"--out {out} (its network file)", folder=False).acquire())
        result = _train(config, out, resume, state, rank, world, progress, log, built)
    finally:
        for lock in reversed(locks):
            lock.release()
    if started:  # after a failure no barrier: the other ranks may never reach it (torchrun ends them instead)
        end_distributed(built[3])
    return result


def _train(config: TrainConfig, out, resume, state: dict | None, rank: int, world: int, progress: bool,
           log, built) -> TrainResult:
    data, network, rule, optimizer = built
    history: list[EpochStats] = []
    first_epoch = 0
    if state is not None:
        try:
            modules = list(rule.modules())
            if len(modules) != len(state["modules"]):
                raise ValueError(f"{len(state['modules'])} module states for {len(modules)} modules")
            for module, module_state in zip(modules, state["modules"]):
                module.load_state_dict(module_state)
            optimizer.load_state_dict(state["optimizer"])
            if state.get("generator") is not None:
                rule.generator.set_state(state["generator"])
            history = [EpochStats(**h) for h in state["history"]]
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as err:
            text = " ".join(str(err).split())[:200]
            raise DataError(f"{resume}: damaged checkpoint: its state does not fit the model ({text})") from None
        if not _finite_weights(rule):
            raise DataError(f"{resume}: damaged checkpoint: its weights hold NaN or infinite values")
        first_epoch = state["epoch"] + 1
        if out is not None and rank == 0 and registry.get(config.rule).writes_network:
            # the network file may be missing, or an epoch ahead after a kill between the two writes
            save(rule.model.write_back(network), network_file(out))
    x_train, y_train = data.split("train")
    batches = math.ceil(len(y_train) / config.batch_size)
    for epoch in range(first_epoch, config.epochs):
        order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        start, total_loss, correct = time.perf_counter(), 0.0, 0
        metered = min(1, batches - 1)  # the second batch: gradients and optimizer state exist before it
        entry_bytes = None
        with ActivationMeter(*rule.modules()) as meter:
            bar = tqdm(range(batches), desc=f"{config.rule} epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=not progress or rank != 0)
            for b in bar:
                check_interrupt()  # a Ctrl-C that landed in a finalizer (the meter's) is honoured here
                index = order[b * config.batch_size: (b + 1) * config.batch_size]
                index = index[rank::world]
                if len(index) == 0:
                    continue
                xb = x_train[index].transpose(0, 1).to(config.device)
                yb = y_train[index].to(config.device)
                with optimizer.accumulating():  # per-step backward passes: local; step() all-reduces
                    if b == metered:
                        entry_bytes = persistent(rule.modules(), optimizer.optimizer)
                        with meter.allocator_window():
                            result = rule.step(xb, yb, optimizer)
                    else:
                        result = rule.step(xb, yb, optimizer)
                total_loss += result.loss * len(index)
                correct += int((result.logits.argmax(1).cpu() == yb.cpu()).sum())
                bar.set_postfix(loss=f"{result.loss:.3f}", refresh=False)
        report = meter.report()
        allocator = report.allocator_peak_bytes
        stats = EpochStats(epoch, total_loss / len(y_train) * world, correct / len(y_train) * world,
                           evaluate(rule, data, "test", config.device), report.peak_bytes,
                           time.perf_counter() - start, report.cuda_peak_bytes, allocator,
                           None if allocator is None or entry_bytes is None else
                           whole_training_bytes(entry_bytes, allocator, True, report.cuda_peak_bytes is not None))
        if not math.isfinite(stats.loss):  # diverged: nothing of this epoch is written
            raise Failure(f"epoch {epoch + 1}: the training loss is {stats.loss} (diverged; the learning rate "
                          f"{config.lr:g} is the likely cause); nothing of this epoch was written")
        if not _finite_weights(rule):  # a finite loss can hide them (an ALIF threshold driven to overflow)
            raise Failure(f"epoch {epoch + 1}: the weights became non-finite (diverged; the learning rate "
                          f"{config.lr:g} or the neuron parameters, e.g. a large ALIF beta, are the likely cause); "
                          f"nothing of this epoch was written")
        history.append(stats)
        if rank == 0:
            log(f"epoch {epoch + 1}/{config.epochs}: {registry.get(config.rule).loss_text} {stats.loss:.4f}, "
                f"train {stats.train_accuracy:.2%}, "
                f"test {stats.test_accuracy:.2%}, activation memory {stats.activation_bytes / 1024:.1f} KiB "
                f"(meter){_allocator_text(stats)}, "
                f"{stats.seconds:.2f} s")
            if out is not None:
                trained = rule.model.write_back(network) if registry.get(config.rule).writes_network else None
                _checkpoint(Path(out), config, epoch, rule, optimizer, history, trained)
    return TrainResult(config, history, rule.describe())
