"""``hwsim study``: the main job -- train, simulate, learn on chip, price on every chip, export, report.

Stages (each writes ``DIR/stages/<stage>.json`` when it finishes; a rerun skips finished stages, so an
interrupted study resumes where it stopped without redoing or losing anything):

1. ``train`` -- the network on the dataset with each of ``train_rules`` in torch (``methods``);
2. ``simulate`` -- the first trained network in hwsim: float and fixed-point accuracy, counts, a raster;
3. ``memory`` -- training memory per rule at each of ``memory_timesteps``: the saved-tensor meter and the
   allocator peak beside it (``methods.memory.measure``), and STDL's auxiliary networks for the budget;
4. ``on_chip`` -- on-chip fine-tuning of the trained network with each of ``on_chip.rules`` (numba);
5. ``costs`` -- inference energy, latency and fit on every chip;
6. ``feasibility`` -- chips x rules verdicts, learning memory per core, energy per training sample;
7. ``export`` -- Lava/netx/NIR export with Lava verification (and the learning export);
8. ``report`` -- ``report.md``, figures and ``results.json`` (every number of the report).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hwsim.errors import StudyError, one_line, short
from hwsim.learning import registry

STAGES = ("train", "simulate", "memory", "on_chip", "costs", "feasibility", "export", "report")
SYNTHETIC_RATE = 0.2  # spike probability of the synthetic input the memory and feasibility stages use


# strict: no coercion (``epochs: true`` is not 1, ``"8"`` is not 8); finite numbers only
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
DEPRECATED_KEYS = {"ttl_window": "window", "stdl_budget_bytes": "budget_bytes"}  # older study keys


def _study_default(key: str) -> list[str]:
    """The built-in study's rules (``rules``: every rule with an on-chip form), from the rule registry."""
    return list(registry.names(on_chip=True)) if key == "rules" else list(registry.STUDY_DEFAULTS[key])


def _rule_list(value: list[str], on_chip: bool = False) -> list[str]:
    """A list of rule names, each in the rule registry (``on_chip``: each with an on-chip form)."""
    try:
        return registry.parse_rules(value, "rule", on_chip=on_chip) if value else value
    except registry.RegistryError as err:
        raise ValueError(str(err).removeprefix("rule: ")) from None


class OnChipConfig(BaseModel):
    model_config = STRICT
    rules: list[str] = Field(default_factory=lambda: _study_default("on_chip"), min_length=1,
                             description="rules with an on-chip form")
    samples: int = Field(200, ge=1, description="training samples of on-chip fine-tuning")
    lr: float = Field(0.02, gt=0, le=1e3)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        return _rule_list(value, on_chip=True)


class StudyConfig(BaseModel):
    """A study (all keys optional; defaults are the built-in study ``make demo`` runs)."""

    model_config = STRICT
    dataset: str = Field("digits", description="digits, randman, dvs_bars (moving bars as ON/OFF events), a .npz "
                                                 "file (x_train, y_train, x_test, y_test: "
                                                 "0/1 spikes (N, T, *shape) and labels) or tonic:<Name>")
    data_path: str | None = Field(None, description="folder for tonic datasets")
    bin_us: float | None = Field(None, gt=0, le=1e9, description="tonic datasets: fixed event bins in µs (None: each "
                                                                "sample's own duration cut into T steps)")
    network: str = "64-128-128-10"  # two hidden layers: STDL's default budget binds on it
    timesteps: int = Field(8, ge=1, le=10_000)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1, le=1 << 16)
    train_rules: list[str] = Field(default_factory=lambda: _study_default("train_rules"), min_length=1,
                                   description="rules trained in torch (the first one's network is the one "
                                               "simulated, priced and exported)")
    rules: list[str] = Field(default_factory=lambda: _study_default("rules"), min_length=1,
                             description="rules of the memory and feasibility stages (on-chip forms)")
    chips: list[str] | Literal["all"] = Field("all", min_length=1)
    memory_timesteps: list[int] = [4, 8, 16]
    rule_options: dict[str, int | float | str] = Field(
        {}, description="rule options by name (k, window, block, ttl_update, subnet, budget_bytes, surrogate, alpha, "
                        "tau, v_th: docs/rules.md), each used by a rule of the study")
    on_chip: OnChipConfig = OnChipConfig()
    eval_samples: int = Field(300, ge=1, description="test samples for accuracy and costs")
    export: bool = True
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_keys(cls, data):
        """``ttl_window`` and ``stdl_budget_bytes`` (older keys) become ``rule_options`` window and budget_bytes;
        ``net`` (the command line's name) is the same key as ``network``."""
        if isinstance(data, dict) and "net" in data:
            if "network" in data:
                raise ValueError("give the network once: key net or key network")
            data = {("network" if k == "net" else k): v for k, v in data.items()}
        if isinstance(data, dict):
            for old, name in DEPRECATED_KEYS.items():
                if old in data:
                    data = dict(data)
                    options = dict(data.get("rule_options") or {})
                    if name in options:
                        raise ValueError(f"give {name} once: rule_options.{name} or the older key {old}")
                    options[name] = data.pop(old)
                    data["rule_options"] = options
                    import sys

                    print(f"hwsim: note: study key {old} is deprecated; use rule_options: {{{name}: ...}}",
                          file=sys.stderr)
        return data

    @field_validator("train_rules")
    @classmethod
    def _train_rules(cls, value: list[str]) -> list[str]:
        return _rule_list(value)

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        return _rule_list(value, on_chip=True)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        if value in ("digits", "randman", "dvs_bars") or value.startswith("tonic:"):
            return value
        if value.endswith(".npz"):
            if not Path(value).is_file():
                raise ValueError(f"dataset file {value}: no such file")
            return value
        raise ValueError(f"unknown dataset {value!r}; expected digits, randman, dvs_bars, a .npz file with x_train, "
                         f"y_train, x_test, y_test, or tonic:<Name>")

    @field_validator("network")
    @classmethod
    def _spec(cls, value: str) -> str:
        from hwsim.sim.network import NetworkError, spec_size

        try:
            spec_size(value)  # the grammar and every shape, counted: no weight is allocated while validating
        except NetworkError as err:
            raise ValueError(str(err)) from None
        return value

    @field_validator("chips")
    @classmethod
    def _chips(cls, value):
        from hwsim import chips

        if value != "all":
            for name in value:
                chips.load(name)
        return value

    @field_validator("memory_timesteps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 1 or max(value) > 10_000:
            raise ValueError("needs at least one time step count, each in 1..10000")
        return value

    @property
    def options(self):
        """The study's :class:`~hwsim.learning.registry.RuleOptions` (defaults where not given)."""
        from hwsim.learning.registry import RuleOptions

        return RuleOptions(self.rule_options, frozenset(self.rule_options))

    @model_validator(mode="after")
    def _size(self) -> StudyConfig:
        """The memory the study's network takes in training, computed from the configuration alone (before the
        checks below build the network): refused in one line when over the memory limit."""
        from hwsim.safeio import check_memory

        need, detail = study_bytes(self)
        check_memory(need, f"network {short(self.network, 80)}", detail)
        return self

    @model_validator(mode="after")
    def _bins(self) -> StudyConfig:
        if self.bin_us is not None and not self.dataset.startswith("tonic:"):
            raise ValueError(f"bin_us: fixed event bins apply to tonic event data sets only, not {self.dataset!r}")
        return self

    @model_validator(mode="after")
    def _rule_options(self) -> StudyConfig:
        """Each rule option checked against the registry and used by one of the study's rules."""
        from hwsim.learning.registry import RegistryError, RuleOptions

        try:
            RuleOptions.build([*self.train_rules, *self.rules, *self.on_chip.rules], self.rule_options,
                              where="key", timesteps=self.timesteps)
        except RegistryError as err:
            raise ValueError(f"rule_options: {err}") from None
        return self

    @model_validator(mode="after")
    def _stdl_budget(self) -> StudyConfig:
        """STDL trained in torch or on chip needs a budget that admits an auxiliary network on this network:
        checked here, before any training. (Where STDL is only analysed -- ``rules`` -- a budget that admits
        none leaves STDL out of the memory and feasibility stages, and the report says why.)"""
        if _budgeted(*self.train_rules, *self.on_chip.rules) and (reason := stdl_refusal(self)):
            raise ValueError(f"rule_options.budget_bytes: {reason}")
        return self

    def analysed_rules(self) -> tuple[list[str], dict[str, str]]:
        """The rules of the memory and feasibility stages, and those left out with the reason."""
        reason = stdl_refusal(self) if _budgeted(*self.rules) else None
        if reason is None:
            return list(self.rules), {}
        return [r for r in self.rules if not _budgeted(r)], {r: f"rule_options.budget_bytes: {reason}"
                                                              for r in self.rules if _budgeted(r)}


TRAIN_COPIES = 4  # weights, gradients, SGD momentum and a checkpoint copy, per weight
ACTIVATION_BYTES = 12  # per neuron, step and sample kept by BPTT: membrane, spike and surrogate derivative (float32)


def study_bytes(config: StudyConfig) -> tuple[int, str]:
    """``(bytes, what they are)``: a lower bound of the memory the study's training needs, from the configuration
    alone -- its network's weights times :data:`TRAIN_COPIES`, and BPTT's activations (``ACTIVATION_BYTES`` per
    neuron, step and sample, at the longest T the study trains or measures)."""
    from hwsim.sim.network import spec_size

    size = spec_size(config.network)
    steps = max([config.timesteps, *config.memory_timesteps])
    weights = TRAIN_COPIES * size.weight_bytes
    activations = ACTIVATION_BYTES * steps * config.batch_size * (size.neurons + size.input_size)
    return weights + activations, (f"{size.weights} weights x {TRAIN_COPIES} for training, and activations of "
                                   f"{size.neurons} neurons x T={steps} x batch {config.batch_size}")


def _budgeted(*rules: str) -> bool:
    """Whether any of ``rules`` chooses auxiliary networks under a memory budget (STDL)."""
    return any(registry.get(r).budgeted for r in rules)


def stdl_refusal(config: StudyConfig) -> str | None:
    """Why STDL's budget admits no auxiliary network on the study's network (None when it does)."""
    from hwsim.learning.stdl_plan import STDLError, plan
    from hwsim.sim.network import from_spec

    try:
        plan(from_spec(config.network), config.options.subnet, config.options.budget_bytes, config.batch_size)
    except STDLError as err:
        return str(err)
    return None


def load_config(path: str | Path | None) -> StudyConfig:
    if path is None:
        return StudyConfig()
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: no such study configuration")
    from hwsim.errors import UsageError
    from hwsim.safeio import load_yaml

    try:  # UTF-8 text, no duplicate keys, YAML 1.2 numbers, bounded alias expansion
        data = load_yaml(path, "study configuration")
    except UsageError as err:
        raise StudyError(str(err)) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping of study keys")
    try:
        return StudyConfig.model_validate(data)
    except MemoryError:
        raise
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"])
            if not key:  # a check across keys names its key in the message
                problems.append(str(e["msg"]).removeprefix("Value error, "))
            elif e["type"] == "extra_forbidden":
                problems.append(f"key {short(key, 60)} is not a study key "
                                f"(known: {', '.join(StudyConfig.model_fields)})")
            else:
                message = str(e["msg"]).removeprefix("Value error, ")
                problems.append(f"key {short(key, 60)}: {message} (got {short(e.get('input'))})")
        raise StudyError(f"{path}: " + "; ".join(problems)) from None
    except Exception as err:  # a check that raised something other than a ValueError: say what, blame no key
        raise StudyError(f"{path}: invalid study configuration ({type(err).__name__}: {one_line(str(err), 300)})"
                         ) from None


class Study:
    """Runs the stages into ``out`` (see module docstring)."""

    def __init__(self, config: StudyConfig, out: str | Path, progress: bool = True, log=print):
        from hwsim.safeio import OutputLock, atomic_write

        self.config, self.out, self.progress, self.log = config, Path(out), progress, log
        self.out.mkdir(parents=True, exist_ok=True)
        # one study per folder at a time: held until run() ends (or this object goes)
        self._lock = OutputLock(self.out, f"--out {self.out}", folder=True).acquire()
        (self.out / "stages").mkdir(exist_ok=True)
        saved = self.out / "study.yaml"
        text = yaml.safe_dump(config.model_dump(), sort_keys=True)
        if saved.is_file() and saved.read_text(errors="replace") != text and holds_results(self.out):
            self._lock.release()
            raise StudyError(f"{self.out}: holds results of a study with another configuration ({saved}; "
                             f"{_differences(saved, config)}); use another --out")
        # a configuration that left no result (refused, or stopped before its first checkpoint) blocks nothing
        atomic_write(saved, text)
        from hwsim import chips

        self.chip_names = chips.names() if config.chips == "all" else list(config.chips)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def run(self, stages: tuple[str, ...] = STAGES) -> dict:
        """Run ``stages`` (default: all, in order; a sweep runs a subset) and return their results by name."""
        try:
            return self._run(stages)
        finally:
            self._lock.release()

    def _run(self, stages: tuple[str, ...]) -> dict:
        from tqdm import tqdm

        from hwsim.safeio import atomic_write

        self._lock.acquire()
        results = {}
        bar = tqdm(stages, desc="study", unit="stage", disable=not self.progress, leave=False)
        for stage in bar:
            bar.set_description(f"study: {stage}")
            path = self.out / "stages" / f"{stage}.json"
            if path.is_file():
                try:
                    results[stage] = json.loads(path.read_text())
                    self.log(f"[{stage}] done before, kept")
                    continue
                except (ValueError, UnicodeDecodeError):  # edited by hand: not a finished stage
                    self.log(f"[{stage}] {path} is not readable JSON; running the stage again")
            start = time.perf_counter()
            self.log(f"[{stage}] running")
            results[stage] = getattr(self, f"stage_{stage}")(results)
            results[stage]["seconds"] = round(time.perf_counter() - start, 2)
            # a stage counts as finished only once its results are on disk, whole (unique temp + rename)
            atomic_write(path, json.dumps(results[stage], indent=2))
        return results

    def _data(self):
        from hwsim.methods.data import load_dataset

        data = load_dataset(self.config.dataset, self.config.timesteps, seed=self.config.seed,
                            path=self.config.data_path, bin_us=self.config.bin_us)
        x, y = (a.numpy() for a in data.split("test"))
        n = min(self.config.eval_samples, len(y))
        return data, x[:n], y[:n]

    def _trained(self):
        from hwsim.sim.network import load

        return load(self.out / "train" / f"{self.config.train_rules[0]}.network.npz")

    # -- stages --------------------------------------------------------------------------------------
    def stage_train(self, results: dict) -> dict:
        from hwsim.methods.train import TrainConfig, train

        c = self.config
        out = {}
        for rule in c.train_rules:
            o = c.options
            config = TrainConfig(rule=rule, dataset=c.dataset, data_path=c.data_path, epochs=c.epochs,
                                 timesteps=c.timesteps, net=c.network, batch_size=c.batch_size, seed=c.seed,
                                 k=o.k, window=o.window, block=o.block, subnet=o.subnet, budget_bytes=o.budget_bytes,
                                 tau=o.tau, v_th=o.v_th, surrogate=o.surrogate, alpha=o.alpha, mse=o.mse,
                                 mse_target=o.mse_target, ttl_update=o.ttl_update, bin_us=c.bin_us)
            ckpt = self.out / "train" / f"{rule}.pt"
            resume = ckpt if ckpt.is_file() else None
            result = train(config, out=ckpt, resume=resume, progress=self.progress, log=lambda *_: None)
            last = result.history[-1]
            out[rule] = {"test_accuracy_percent": round(100 * last.test_accuracy, 1),
                         "activation_kib": round(max(h.activation_bytes for h in result.history) / 1024, 1),
                         "allocator_kib": _peak_kib([h.allocator_peak_bytes for h in result.history]),
                         "whole_kib": _peak_kib([h.whole_training_bytes for h in result.history]),
                         "seconds_per_epoch": round(float(np.mean([h.seconds for h in result.history])), 2)}
            self.log(f"  {rule}: test {out[rule]['test_accuracy_percent']} %")
        data = self._data()[0]
        return {"rules": out, "epochs": c.epochs, "timesteps": c.timesteps,
                "data": {"split": getattr(data, "split_note", "the data set's own train/test split"),
                         "binning": getattr(data, "binning", None)}}

    def stage_simulate(self, results: dict) -> dict:
        from hwsim.learning.learner import OnChipLearner, accuracy
        from hwsim.sim.engine import Engine
        from hwsim.sim.quantize import quantize
        from hwsim.study.plots import spike_raster

        _, x, y = self._data()
        network = self._trained()
        x = x.reshape(*x.shape[:2], *network.input_shape)
        float_acc = accuracy(OnChipLearner(network, registry.names(on_chip=True)[0]), x, y)  # forward only
        fixed, report = quantize(network, x, y)
        from hwsim.sim.network import save

        save(fixed, self.out / "fixed.network.npz")
        counts = Engine(network).run(np.moveaxis(x, 0, 1).astype(np.uint8)).counts
        first = np.moveaxis(x[:1], 0, 1).astype(np.uint8)
        spike_raster(Engine(fixed).run(first, record="spikes"), self.out / "spike_raster.png", inputs=first,
                     title=f"{self.config.network}: one {self.config.dataset} test sample, fixed point")
        return {"float_accuracy_percent": None if float_acc is None else round(100 * float_acc, 1),
                "quantized_float_percent": round(100 * report.accuracy_float, 1),
                "quantized_fixed_percent": round(100 * report.accuracy_fixed, 1),
                "samples": int(len(y)), "sop_per_sample": int(counts.total("sop") // counts.batch),
                "spikes_per_sample": int(sum(lc.total("spikes_out") for lc in counts.layers) // counts.batch),
                "clipped_weights": int(sum(q.weights_clipped for q in report.layers))}

    def stage_memory(self, results: dict) -> dict:
        import torch

        from hwsim.methods import build_rule
        from hwsim.methods.memory import measure
        from hwsim.sim.network import from_spec

        c = self.config
        net = from_spec(c.network, seed=c.seed)
        g = torch.Generator().manual_seed(c.seed)
        out, allocator, whole, plans = {}, {}, {}, {}
        rules, skipped = c.analysed_rules()
        for rule in rules:
            out[rule], allocator[rule], whole[rule] = {}, {}, {}
            for steps in c.memory_timesteps:
                o = c.options
                r = build_rule(rule, net, k=min(o.k, steps), window=min(o.window, steps), block=o.block,
                               subnet=o.subnet, budget_bytes=o.budget_bytes, batch_size=c.batch_size, seed=c.seed,
                               tau=o.tau, v_th=o.v_th, surrogate=o.surrogate, alpha=o.alpha, mse=o.mse,
                               mse_target=o.mse_target, ttl_update=o.ttl_update)
                x = (torch.rand(steps, c.batch_size, *net.input_shape, generator=g) < SYNTHETIC_RATE).float()
                y = torch.randint(0, r.model.n_classes, (c.batch_size,), generator=g)
                # ottt_o updates inside the sample: it needs its optimizer (lr 0: the weights stay)
                optimizer = torch.optim.SGD(list(r.parameters()), lr=0.0) if registry.get(rule).update_every_step \
                    else None
                report = measure(r, x, y, optimizer)
                out[rule][str(steps)] = round(report.peak_bytes / 1024, 1)
                allocator[rule][str(steps)] = round(report.allocator_peak_bytes / 1024, 1)
                whole[rule][str(steps)] = None if report.whole_bytes is None else round(report.whole_bytes / 1024, 1)
                if registry.get(rule).budgeted:
                    plans[rule] = r.describe()
        from hwsim.study.plots import memory_vs_timesteps

        memory_vs_timesteps(out, self.out / "memory_vs_T.png", batch=c.batch_size, allocator_kib=allocator)
        return {"activation_kib": out, "allocator_kib": allocator, "whole_kib": whole, "batch": c.batch_size,
                "plans": plans, "skipped": skipped}

    def stage_on_chip(self, results: dict) -> dict:
        from hwsim.learning.assess import apply_neuron_options
        from hwsim.learning.learner import OnChipLearner, accuracy, fit

        c = self.config
        data, x_test, y_test = self._data()
        x_train, y_train = (a.numpy() for a in data.split("train"))
        n = min(c.on_chip.samples, len(y_train))
        out = {}
        base = self._trained()
        x_test = x_test.reshape(*x_test.shape[:2], *base.input_shape)
        x_train = x_train.reshape(*x_train.shape[:2], *base.input_shape)
        for rule in c.on_chip.rules:
            import copy

            o = c.options
            learner = OnChipLearner(apply_neuron_options(copy.deepcopy(base), o), rule, lr=c.on_chip.lr, seed=c.seed,
                                    k=min(o.k, c.timesteps), window=min(o.window, c.timesteps), block=o.block,
                                    subnet=o.subnet, budget_bytes=o.budget_bytes, surrogate=o.surrogate,
                                    alpha=registry.surrogate_alpha(o.surrogate, o.alpha))
            before = accuracy(learner, x_test, y_test)
            counts = fit(learner, x_train[:n], y_train[:n], epochs=1, batch_size=1, seed=c.seed,
                         progress=self.progress)
            after = accuracy(learner, x_test, y_test)
            out[rule] = {"before_percent": round(100 * before, 1), "after_percent": round(100 * after, 1),
                         "samples": n, "error_macs_last_sample": counts.total("error_macs"),
                         "grad_ops_last_sample": counts.total("grad_ops"),
                         "weight_updates_last_sample": counts.total("weight_updates")}
        return {"rules": out}

    def stage_costs(self, results: dict) -> dict:
        from hwsim import chips
        from hwsim.hardware.cost import estimate
        from hwsim.sim.engine import Engine
        from hwsim.sim.network import load
        from hwsim.study.plots import energy_breakdown

        _, x, _ = self._data()
        fixed = load(self.out / "fixed.network.npz")
        x = x.reshape(*x.shape[:2], *fixed.input_shape)[:32]
        counts = Engine(fixed).run(np.moveaxis(x, 0, 1).astype(np.uint8)).counts
        reports = [estimate(fixed, counts, chips.load(name)).to_dict() for name in self.chip_names]
        if any(r["energy_j"] for r in reports):  # a chip without published energies alone: nothing to draw
            energy_breakdown(reports, self.out / "energy_per_chip.png",
                             title=f"{self.config.network} on {self.config.dataset}, T={self.config.timesteps}")
        # the cost records themselves (joules, seconds; None = unknown); the report converts to µJ and ms
        return {"chips": {r["chip"]: {k: v for k, v in r.items() if k not in ("energy_by_core_j", "chip")}
                          for r in reports},
                "samples": int(counts.batch)}

    def stage_feasibility(self, results: dict) -> dict:
        from hwsim import chips
        from hwsim.learning.assess import judge
        from hwsim.study.plots import feasibility_heatmap

        c = self.config
        network = self._trained()
        rules, skipped = c.analysed_rules()
        judgement = judge(network, [chips.load(name) for name in self.chip_names], rules, c.timesteps, c.options,
                          rate=SYNTHETIC_RATE, seed=c.seed)
        verdicts = judgement.to_dict()
        feasibility_heatmap(verdicts, self.out / "feasibility.png",
                            title=f"{c.network}, T={c.timesteps}: on-chip learning")
        table = {}  # chip -> rule -> the verdict record (joules, seconds, bytes: the report converts)
        for v in verdicts:
            table.setdefault(v["chip"], {})[v["rule"]] = v
        sample = (f"one training sample of Bernoulli input at rate {SYNTHETIC_RATE} per input neuron and step, "
                  f"T = {c.timesteps}, with a random label (seed {c.seed}); `hwsim feasibility --net <trained "
                  f"network> -T {c.timesteps} --rate {SYNTHETIC_RATE}{_option_flags(c)}` reproduces it")
        return {"table": table, "skipped": skipped, "input": sample, "rate": SYNTHETIC_RATE}

    def stage_export(self, results: dict) -> dict:
        if not self.config.export:
            return {"skipped": True}
        from hwsim.formats.bundle import export

        _, x, y = self._data()
        network = self._trained()
        x = x.reshape(*x.shape[:2], *network.input_shape)
        summary = export(network, self.out / "export", x[:16], y[:16], verify=True, learning=_dense_readout(network))
        out = {"verified_equal": summary["verify"]["equal"],
               "layers": {v["layer"]: v["equal"] for v in summary["verify"]["layers"]},
               "files": summary["files"]}
        if "learning" in summary:
            out["learning_correlation"] = round(summary["learning"]["correlation"], 3)
        return out

    def stage_report(self, results: dict) -> dict:
        from hwsim.study.report import write_report
        from hwsim.study.study_figures import append_to_report, make_figures

        results["figures"] = make_figures(self, results)
        write_report(self.config, results, self.out)
        append_to_report(self.out / "report.md", results["figures"])
        return {"report": "report.md", "results": "results.json"}


_BOOKKEEPING = ("study.yaml", ".hwsim.lock")  # what a study writes before it has any result


def holds_results(out: Path) -> bool:
    """Whether study folder ``out`` holds anything a study produced beyond its bookkeeping (``study.yaml``, lock
    files, temporary and probe files, empty folders): a finished stage, a checkpoint, a figure."""
    for folder, _, files in os.walk(out):
        for name in files:
            if Path(folder) == Path(out) and name in _BOOKKEEPING:
                continue
            if name.endswith(".lock") or name.startswith(".hwsim-probe-") or (name.startswith(".") and ".tmp" in name):
                continue
            return True
    return False


def _differences(saved: Path, config: StudyConfig) -> str:
    """The keys where the configuration in ``saved`` and ``config`` differ, for the refusal (bounded)."""
    try:
        before = yaml.safe_load(saved.read_text(errors="replace"))
    except yaml.YAMLError:
        return "its study.yaml is not readable YAML"
    if not isinstance(before, dict):
        return "its study.yaml is not a mapping"
    now = config.model_dump()
    keys = sorted(str(k) for k in {*before, *now} if before.get(k) != now.get(k))
    return "keys that differ: " + short(", ".join(keys), 200).strip("'")


def _peak_kib(values: list[int | None]) -> float | None:
    """The largest of the measured values in KiB (one decimal); None when none was measured."""
    known = [v for v in values if v is not None]
    return round(max(known) / 1024, 1) if known else None


def _option_flags(config: StudyConfig) -> str:
    """The study's rule options as feasibility flags (`` --window 2 --budget-bytes 1048576``)."""
    from hwsim.learning.registry import OPTIONS

    return "".join(f" {OPTIONS[name].flag} {value}" for name, value in config.rule_options.items()
                   if OPTIONS[name].on_chip)


def _dense_readout(network) -> bool:
    """The learning export trains a dense read-out (the layers before it may be conv and pool)."""
    from hwsim.sim.network import Dense

    return isinstance(network.layers[-1], Dense)


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")
