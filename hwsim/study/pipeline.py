"""``hwsim study``: the main job -- train, simulate, learn on chip, price on every chip, export, report.

Stages (each writes ``DIR/stages/<stage>.json`` when it finishes; a rerun skips finished stages, so an
interrupted study resumes where it stopped without redoing or losing anything):

1. ``train`` -- the network on the dataset with each of ``train_rules`` in torch (``methods``);
2. ``simulate`` -- the first trained network in hwsim: float and fixed-point accuracy, counts, a raster;
3. ``memory`` -- training memory per rule at each of ``memory_timesteps``: the saved-tensor meter and the
   allocator peak beside it (``methods.memory.measure``), and STDL's auxiliary networks for the budget;
4. ``on_chip`` -- on-chip fine-tuning of the trained network with each of ``on_chip.rules`` (numba; e-prop by
   :class:`~hwsim.learning.eprop.EpropLearner`, the other rules by :class:`~hwsim.learning.learner.OnChipLearner`);
5. ``costs`` -- inference energy, latency and fit on every chip;
6. ``feasibility`` -- chips x rules verdicts, learning memory per core, energy per training sample;
7. ``export`` -- Lava/netx/NIR export with Lava verification (and the learning export);
8. ``report`` -- ``report.md``, figures and ``results.json`` (every number of the report).

Recurrent networks (``40-r64-2``, ``40-a32-2``) go through every stage. A task that scores only some steps (the
cue-accumulation data set ``cue`` scores its recall window: ``loss_steps``) is trained, evaluated and fine-tuned on
those steps, float and fixed point alike. What a network cannot do is left out with the reason, in the report:
e-prop on a network that is not ``input-(r|a)N-out`` (it needs one recurrent layer), the fixed-point stages and the
Lava export of ALIF neurons (Loihi's LIF has no adaptive threshold; the costs are then priced from the float
network's counts).
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
    lr: float = Field(0.02, gt=0, le=1e3, description="on-chip learning rate (plain SGD, one sample per update)")

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        return _rule_list(value, on_chip=True)


class StudyConfig(BaseModel):
    """A study (all keys optional; defaults are the built-in study ``make demo`` runs)."""

    model_config = STRICT
    dataset: str = Field("digits", description="digits, randman, dvs_bars (moving bars as ON/OFF events), cue "
                                                 "(cue accumulation, scored on its recall window), a .npz "
                                                 "file (x_train, y_train, x_test, y_test: "
                                                 "0/1 spikes (N, T, *shape) and labels) or tonic:<Name>")
    data_path: str | None = Field(None, description="folder for tonic datasets")
    bin_us: float | None = Field(None, gt=0, le=1e9, description="tonic datasets: fixed event bins in µs (None: each "
                                                                "sample's own duration cut into T steps)")
    network: str = "64-128-128-10"  # two hidden layers: STDL's default budget binds on it
    timesteps: int = Field(8, ge=1, le=10_000)
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1, le=1 << 16)
    lr: float = Field(0.1, gt=0, le=1e3, description="torch training: SGD learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="torch training: SGD momentum (0: plain SGD)")
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
        if value in BUILT_IN_DATASETS or value.startswith("tonic:"):
            return value
        if value.endswith(".npz"):
            if not Path(value).is_file():
                raise ValueError(f"dataset file {value}: no such file")
            return value
        raise ValueError(f"unknown dataset {value!r}; expected {', '.join(BUILT_IN_DATASETS)}, a .npz file with "
                         f"x_train, y_train, x_test, y_test, or tonic:<Name>")

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

    @model_validator(mode="after")
    def _network_rules(self) -> StudyConfig:
        """A rule trained in torch or on chip must be defined on the study's network (e-prop: one recurrent layer
        and a read-out), checked before any training. (Where it is only analysed -- ``rules`` -- it is left out
        of the memory and feasibility stages with the reason.)"""
        for key, rules in (("train_rules", self.train_rules), ("on_chip.rules", self.on_chip.rules)):
            for rule in rules:
                if (reason := network_refusal(rule, self.network)) is not None:
                    raise ValueError(f"key {key}: {rule}: {reason}")
        return self

    @model_validator(mode="after")
    def _neuron_options(self) -> StudyConfig:
        """A neuron option (``tau``, ``v_th``) must reach every layer in torch training as it does on chip and in
        feasibility (:func:`hwsim.learning.assess.apply_neuron_options`): refused where torch training would leave
        a layer as it was (one line), so that the study never trains one neuron and judges another."""
        if not {n for n, o in registry.OPTIONS.items() if o.neuron} & set(self.rule_options):
            return self
        if (reason := neuron_option_refusal(self)) is not None:
            raise ValueError(f"rule_options: {reason}")
        return self

    def analysed_rules(self) -> tuple[list[str], dict[str, str]]:
        """The rules of the memory and feasibility stages, and those left out with the reason (STDL with a budget
        that admits no auxiliary network; a rule not defined on the network, as e-prop on a feed-forward one)."""
        skipped = {}
        reason = stdl_refusal(self) if _budgeted(*self.rules) else None
        if reason is not None:
            skipped = {r: f"rule_options.budget_bytes: {reason}" for r in self.rules if _budgeted(r)}
        for rule in self.rules:
            if rule not in skipped and (reason := network_refusal(rule, self.network)) is not None:
                skipped[rule] = reason
        return [r for r in self.rules if r not in skipped], skipped


BUILT_IN_DATASETS = ("digits", "randman", "dvs_bars", "cue")  # the data sets a study builds itself (hwsim.methods.data)
TRAIN_COPIES = 4  # weights, gradients, SGD momentum and a checkpoint copy, per weight
ELIGIBILITY_BYTES = 16  # per synapse and sample kept by e-prop's per-synapse form: eps_v, eps_a, e-bar, a working copy
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
    detail = (f"{size.weights} weights x {TRAIN_COPIES} for training, and activations of {size.neurons} neurons x "
              f"T={steps} x batch {config.batch_size}")
    per_synapse = [r for r in config.train_rules if registry.needs_of(r, config.options).eligibility == "per_synapse"]
    if per_synapse:  # e-prop keeps eligibility state per synapse and sample
        activations += ELIGIBILITY_BYTES * size.weights * config.batch_size
        detail += f", and {per_synapse[0]}'s eligibility of {size.weights} synapses x batch {config.batch_size}"
    return weights + activations, detail


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


def eprop_kernel(rule: str) -> bool:
    """Whether ``rule`` runs on chip on e-prop's kernel (:class:`~hwsim.learning.eprop.EpropLearner`: one recurrent
    layer and its read-out) rather than :class:`~hwsim.learning.learner.OnChipLearner`'s (the registry's kernel
    kind, as feasibility dispatches on it)."""
    return registry.get(rule).kernel == "eprop"


def network_refusal(rule: str, spec: str) -> str | None:
    """Why ``rule`` is not defined on the network ``spec`` (None when it is): e-prop's kernel trains one recurrent
    LIF or ALIF layer and its dense read-out (:func:`hwsim.learning.eprop.eprop_layout`), so a feed-forward or
    conv network, or more than one recurrent layer, is refused with the layout it has."""
    if not eprop_kernel(rule):
        return None
    from hwsim.errors import LearningError
    from hwsim.learning.eprop import eprop_layout
    from hwsim.sim.network import from_spec

    try:
        eprop_layout(from_spec(spec))
    except LearningError as err:
        return f"{err} (e-prop needs one recurrent layer)"
    return None


def neuron_options(config: StudyConfig) -> dict:
    """The neuron options the study gives (``tau``, ``v_th``, and any other the registry declares as a neuron
    option), by name."""
    return {name: config.rule_options[name] for name, option in registry.OPTIONS.items()
            if option.neuron and name in config.rule_options}


def neuron_option_refusal(config: StudyConfig) -> str | None:
    """Why the study's neuron options cannot be applied alike in torch training (:func:`hwsim.methods.with_neuron`)
    and on chip (:func:`hwsim.learning.assess.apply_neuron_options`): an option torch training does not take, or a
    layer one of them changes and the other leaves (ALIF neurons, where torch training does not yet set them)."""
    from hwsim.learning.assess import apply_neuron_options
    from hwsim.methods import with_neuron
    from hwsim.sim.network import from_spec

    network = from_spec(config.network)
    given = neuron_options(config)
    try:
        trained = with_neuron(network, **given)
    except TypeError:
        return f"{', '.join(given)}: torch training (hwsim.methods.with_neuron) takes tau and v_th only"
    judged = apply_neuron_options(network, config.options)
    for index, (a, b) in enumerate(zip(trained.layers, judged.layers)):
        if a.neuron != b.neuron:
            names = " and ".join(given)
            return (f"{names}: torch training leaves layer {index} ({a.name}, {type(a.neuron).__name__}) as it is, "
                    f"on-chip learning and feasibility would change it (hwsim.methods.with_neuron sets LIF layers "
                    f"only); leave {names} out for this network")
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

    def priced_network(self):
        """``(network, why float)``: the fixed-point network the simulate stage wrote, and None; or, where the
        trained network has no fixed-point form (ALIF neurons), the float network and the reason."""
        from hwsim.sim.network import load

        path = self.out / "fixed.network.npz"
        if path.is_file():
            return load(path), None
        stage = self.out / "stages" / "simulate.json"
        why = json.loads(stage.read_text()).get("fixed_skipped") if stage.is_file() else None
        return self._trained(), why or "the trained network has no fixed-point form"

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
                                 mse_target=o.mse_target, ttl_update=o.ttl_update, bin_us=c.bin_us, lr=c.lr,
                                 momentum=c.momentum, **{name: value for name, value in neuron_options(c).items()
                                                         if name not in ("tau", "v_th")})
            ckpt = self.out / "train" / f"{rule}.pt"
            resume = ckpt if ckpt.is_file() else None
            result = train(config, out=ckpt, resume=resume, progress=self.progress, log=lambda *_: None)
            last = result.history[-1]
            out[rule] = {"test_accuracy_percent": round(100 * last.test_accuracy, 1),
                         "activation_kib": round(max(h.activation_bytes for h in result.history) / 1024, 1),
                         "allocator_kib": _peak_kib([h.allocator_peak_bytes for h in result.history]),
                         "whole_kib": _peak_kib([h.whole_training_bytes for h in result.history]),
                         "seconds_per_epoch": round(float(np.mean([h.seconds for h in result.history])), 2)}
            if eprop_kernel(rule):  # hwsim.methods.train passes no e-prop option to the rule
                out[rule]["options"] = {name: registry.OPTIONS[name].default for name in TORCH_EPROP_OPTIONS}
            self.log(f"  {rule}: test {out[rule]['test_accuracy_percent']} %")
        data = self._data()[0]
        scored = _loss_steps(data)
        return {"rules": out, "epochs": c.epochs, "timesteps": c.timesteps,
                "data": {"split": getattr(data, "split_note", "the data set's own train/test split"),
                         "binning": getattr(data, "binning", None),
                         **({} if scored is None else {"scored_steps": _step_ranges(scored)})}}

    def stage_simulate(self, results: dict) -> dict:
        from hwsim.learning.learner import OnChipLearner, accuracy
        from hwsim.sim.engine import Engine
        from hwsim.sim.network import NetworkError, save
        from hwsim.sim.quantize import quantize
        from hwsim.study.plots import spike_raster

        data, x, y = self._data()
        scored = _loss_steps(data)
        network = self._trained()
        x = x.reshape(*x.shape[:2], *network.input_shape)
        forward = OnChipLearner(network, registry.names(on_chip=True)[0])  # forward only
        float_acc = accuracy(forward, x, y) if scored is None else accuracy(forward, x, y, loss_steps=scored)
        out = {"float_accuracy_percent": None if float_acc is None else round(100 * float_acc, 1)}
        try:
            fixed, report = quantize(network, *((x, y) if scored is None else ()))
        except NetworkError as err:  # ALIF: Loihi's LIF has no adaptive threshold
            fixed, report = None, None
            out["fixed_skipped"] = str(err)
        if fixed is not None:
            save(fixed, self.out / "fixed.network.npz")
        if scored is None:
            out["quantized_float_percent"] = round(100 * report.accuracy_float, 1)
            out["quantized_fixed_percent"] = round(100 * report.accuracy_fixed, 1)
        else:  # the read-out summed over the scored steps, float and fixed point (hwsim.study.pipeline)
            x_tb = np.moveaxis(x, 0, 1).astype(np.uint8)
            out["quantized_float_percent"] = _percent(scored_readout(network, x_tb, scored), y)
            out["quantized_fixed_percent"] = None if fixed is None else _percent(
                scored_readout(fixed, x_tb, scored), y)
        counts = Engine(network).run(np.moveaxis(x, 0, 1).astype(np.uint8)).counts
        first = np.moveaxis(x[:1], 0, 1).astype(np.uint8)
        shown = fixed if fixed is not None else network
        spike_raster(Engine(shown).run(first, record="spikes"), self.out / "spike_raster.png", inputs=first,
                     title=f"{self.config.network}: one {self.config.dataset} test sample, "
                           f"{'fixed point' if fixed is not None else 'float'}")
        sop_recurrent = counts.total("sop_recurrent")  # a subset of sop (0 in a feed-forward network)
        return {**out, "samples": int(len(y)), "sop_per_sample": int(counts.total("sop") // counts.batch),
                **({"sop_recurrent_per_sample": int(sop_recurrent // counts.batch)} if sop_recurrent else {}),
                "spikes_per_sample": int(sum(lc.total("spikes_out") for lc in counts.layers) // counts.batch),
                "clipped_weights": None if report is None else int(sum(q.weights_clipped for q in report.layers))}


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
                y = torch.randint(0, int(np.prod(net.output_shape)), (c.batch_size,), generator=g)
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
        result = {"activation_kib": out, "allocator_kib": allocator, "whole_kib": whole, "batch": c.batch_size,
                  "plans": plans, "skipped": skipped}
        state = {rule: eprop_state(net, c.options) for rule in rules if eprop_kernel(rule)}
        return {**result, "eprop_state_values": state} if state else result

    def stage_on_chip(self, results: dict) -> dict:
        c = self.config
        data, x_test, y_test = self._data()
        scored = _loss_steps(data)
        x_train, y_train = (a.numpy() for a in data.split("train"))
        n = min(c.on_chip.samples, len(y_train))
        out = {}
        base = self._trained()
        x_test = x_test.reshape(*x_test.shape[:2], *base.input_shape)
        x_train = x_train.reshape(*x_train.shape[:2], *base.input_shape)
        for rule in c.on_chip.rules:
            learner = on_chip_learner(c, rule, base, scored)
            before = learner_accuracy(learner, x_test, y_test, scored)
            counts = fit_one_epoch(learner, x_train[:n], y_train[:n], c.seed, scored, self.progress)
            after = learner_accuracy(learner, x_test, y_test, scored)
            out[rule] = {"before_percent": round(100 * before, 1), "after_percent": round(100 * after, 1),
                         "samples": n, "error_macs_last_sample": counts.total("error_macs"),
                         "grad_ops_last_sample": counts.total("grad_ops"),
                         "weight_updates_last_sample": counts.total("weight_updates")}
            if eprop_kernel(rule):  # e-prop's own counters (hwsim.learning.kernels.eprop)
                out[rule].update({f"{name}_last_sample": counts.total(name) for name in EPROP_COUNTERS})
                out[rule]["options"] = c.options.of(rule, c.timesteps, on_chip=True)
        return {"rules": out}

    def stage_costs(self, results: dict) -> dict:
        from hwsim import chips
        from hwsim.hardware.cost import estimate
        from hwsim.sim.engine import Engine
        from hwsim.study.plots import energy_breakdown

        _, x, _ = self._data()
        priced, why = self.priced_network()
        x = x.reshape(*x.shape[:2], *priced.input_shape)[:32]
        counts = Engine(priced).run(np.moveaxis(x, 0, 1).astype(np.uint8)).counts
        reports = [estimate(priced, counts, chips.load(name)).to_dict() for name in self.chip_names]
        if any(r["energy_j"] for r in reports):  # a chip without published energies alone: nothing to draw
            energy_breakdown(reports, self.out / "energy_per_chip.png",
                             title=f"{self.config.network} on {self.config.dataset}, T={self.config.timesteps}")
        # the cost records themselves (joules, seconds; None = unknown); the report converts to µJ and ms
        return {"chips": {r["chip"]: {k: v for k, v in r.items() if k not in ("energy_by_core_j", "chip")}
                          for r in reports},
                "samples": int(counts.batch), **({} if why is None else {"float_network": why})}

    def stage_feasibility(self, results: dict) -> dict:
        from hwsim import chips
        from hwsim.learning.assess import judge
        from hwsim.study.plots import feasibility_heatmap

        c = self.config
        network = self._trained()
        rules, skipped = c.analysed_rules()
        targets = [chips.load(name) for name in self.chip_names]
        judgement = judge(network, targets, rules, c.timesteps, c.options, rate=SYNTHETIC_RATE, seed=c.seed)
        verdicts = judgement.to_dict()
        feasibility_heatmap(verdicts, self.out / "feasibility.png",
                            title=f"{c.network}, T={c.timesteps}: on-chip learning")
        table = {}  # chip -> rule -> the verdict record (joules, seconds, bytes: the report converts)
        for v in verdicts:
            table.setdefault(v["chip"], {})[v["rule"]] = v
        sample = (f"one training sample of Bernoulli input at rate {SYNTHETIC_RATE} per input neuron and step, "
                  f"T = {c.timesteps}, with a random label (seed {c.seed}); `hwsim feasibility --net <trained "
                  f"network> -T {c.timesteps} --rate {SYNTHETIC_RATE}{_option_flags(c)}` reproduces it")
        out = {"table": table, "skipped": skipped, "input": sample, "rate": SYNTHETIC_RATE}
        forms = self._eprop_other_form(network, targets, rules)
        return {**out, "eprop_other_form": forms} if forms else out

    def _eprop_other_form(self, network, targets: list, rules: list[str]) -> dict:
        """e-prop judged again with its other eligibility form (per synapse, the paper's, against per neuron,
        ReckOn's): what a learning chip can run depends on it. ``{rule: {"eligibility": form, "table": {chip:
        verdict record}}}``; empty without e-prop."""
        from hwsim.learning.assess import judge
        from hwsim.learning.registry import RuleOptions

        c = self.config
        out = {}
        for rule in (r for r in rules if "eligibility" in registry.get(r).options):
            other = "per_neuron" if c.options.eligibility == "per_synapse" else "per_synapse"
            options = RuleOptions({**c.rule_options, "eligibility": other},
                                  frozenset({*c.rule_options, "eligibility"}))
            verdicts = judge(network, targets, [rule], c.timesteps, options, rate=SYNTHETIC_RATE,
                             seed=c.seed).to_dict()
            out[rule] = {"eligibility": other, "table": {v["chip"]: v for v in verdicts}}
        return out

    def stage_export(self, results: dict) -> dict:
        if not self.config.export:
            return {"skipped": True}
        from hwsim.formats.bundle import check_exportable, export
        from hwsim.sim.network import NetworkError, is_recurrent

        _, x, y = self._data()
        network = self._trained()
        try:
            check_exportable(network)
        except NetworkError as err:  # ALIF neurons: no Lava, netx or NIR form
            return {"skipped": True, "reason": str(err)}
        x = x.reshape(*x.shape[:2], *network.input_shape)
        learning = _dense_readout(network) and not is_recurrent(network)
        summary = export(network, self.out / "export", x[:16], y[:16], verify=True, learning=learning)
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


TORCH_EPROP_OPTIONS = ("eligibility", "feedback", "kappa")  # e-prop's options its torch rule reads (at their defaults)
EPROP_COUNTERS = ("trace_updates", "eligibility_updates", "learning_signals")  # e-prop's own learning counters


def on_chip_learner(config: StudyConfig, rule: str, network, loss_steps: np.ndarray | None):
    """The on-chip learner of ``rule`` on a copy of the float ``network`` with the study's options and on-chip
    learning rate: :class:`~hwsim.learning.eprop.EpropLearner` for e-prop's kernel (the task's scored steps
    ``loss_steps``, bool (T,), or None: every step), :class:`~hwsim.learning.learner.OnChipLearner` otherwise."""
    import copy

    from hwsim.learning.assess import apply_neuron_options

    o = config.options
    network = apply_neuron_options(copy.deepcopy(network), o)
    if eprop_kernel(rule):
        from hwsim.learning.eprop import EpropLearner

        return EpropLearner(network, lr=config.on_chip.lr, options=o, seed=config.seed, loss_steps=loss_steps)
    from hwsim.learning.learner import OnChipLearner

    steps = config.timesteps
    return OnChipLearner(network, rule, lr=config.on_chip.lr, seed=config.seed, k=min(o.k, steps),
                         window=min(o.window, steps), block=o.block, subnet=o.subnet, budget_bytes=o.budget_bytes,
                         surrogate=o.surrogate, alpha=registry.surrogate_alpha(o.surrogate, o.alpha))


def learner_accuracy(learner, x: np.ndarray, y: np.ndarray, loss_steps: np.ndarray | None) -> float:
    """Fraction of samples ``x`` (N, T, *input_shape) whose read-out, summed over the scored steps, peaks at the
    label ``y`` (N,), for either on-chip learner (:func:`on_chip_learner`)."""
    from hwsim.learning.eprop import EpropLearner

    if isinstance(learner, EpropLearner):
        from hwsim.learning.eprop import accuracy

        return accuracy(learner, x, y)  # on the learner's own loss_steps
    from hwsim.learning.learner import accuracy

    return accuracy(learner, x, y) if loss_steps is None else accuracy(learner, x, y, loss_steps=loss_steps)


def fit_one_epoch(learner, x: np.ndarray, y: np.ndarray, seed: int, loss_steps: np.ndarray | None,
                  progress: bool = False):
    """One epoch of on-chip learning, one sample per update, in the order both learners' ``fit`` draw from
    ``seed``; returns the :class:`~hwsim.sim.counts.Counts` of the last sample."""
    from hwsim.learning.eprop import EpropLearner

    if isinstance(learner, EpropLearner):
        from hwsim.learning.eprop import fit

        return fit(learner, x, y, epochs=1, batch_size=1, seed=seed).counts
    from hwsim.learning.learner import fit

    scored = {} if loss_steps is None else {"loss_steps": loss_steps}
    return fit(learner, x, y, epochs=1, batch_size=1, seed=seed, progress=progress, **scored)


def scored_readout(network, spikes: np.ndarray, loss_steps: np.ndarray) -> np.ndarray:
    """The read-out ``(B, classes)`` summed over the scored steps ``loss_steps`` (bool (T,)) for 0/1 ``spikes``
    (T, B, *input_shape). Float: the last layer's current ``W s_in[t] (+ W_rec s[t-1]) + b``, as
    :func:`hwsim.sim.quantize.float_readout` sums it over every step; fixed point: the output layer's ``u``, which
    Lava's one-step delay per layer puts ``depth`` steps later (as :func:`hwsim.sim.quantize.fixed_readout`
    runs it). With every step scored both equal those functions' sums (tested)."""
    from hwsim.sim.engine import Engine
    from hwsim.sim.network import Dense, Recurrent

    mask = np.asarray(loss_steps, bool)
    spikes = np.asarray(spikes, np.uint8)
    steps, batch = spikes.shape[:2]
    neuron_layers = [layer for layer in network.layers if layer.neuron is not None]
    if network.mode != "float":
        depth = len(neuron_layers)
        padded = np.concatenate([spikes, np.zeros((depth, *spikes.shape[1:]), np.uint8)])
        result = Engine(network).run(padded, record=True, time_major=True)
        u = result.currents[-1].reshape(steps + depth, batch, -1).astype(np.int64)
        return u[depth:][mask].sum(axis=0)
    last = neuron_layers[-1]
    if not isinstance(last, (Dense, Recurrent)):
        raise StudyError(f"a task scored on some steps needs a dense or recurrent read-out, got {last.kind}")
    result = Engine(network).run(spikes, record="spikes", time_major=True)
    entering = spikes if len(neuron_layers) == 1 else result.spikes[-2]
    out = entering.reshape(steps, batch, -1)[mask].sum(axis=0, dtype=np.float64) @ np.asarray(last.weight,
                                                                                             np.float64).T
    if isinstance(last, Recurrent):  # its own spikes of step t-1 enter step t
        own = result.spikes[-1].reshape(steps, batch, -1)
        before = np.concatenate([np.zeros_like(own[:1]), own[:-1]])
        out = out + before[mask].sum(axis=0, dtype=np.float64) @ np.asarray(last.recurrent, np.float64).T
    if last.bias is not None:
        out = out + int(mask.sum()) * np.asarray(last.bias, np.float64)
    return out


def eprop_state(network, options) -> dict[str, dict[str, int]]:
    """What e-prop keeps per sample to learn on ``network`` (values by kind, :func:`hwsim.learning.eprop.
    learning_state`; none grows with T) in both eligibility forms: per synapse (Bellec et al. 2020) and per neuron
    (ReckOn), at the study's ``kappa``. The saved-tensor meter cannot see it: e-prop keeps its traces outside
    autograd."""
    from hwsim.learning.eprop import eprop_layout, learning_state

    layout = eprop_layout(network)
    has_bias = network.layers[layout.rec].bias is not None
    return {form: learning_state(layout, form, options.kappa, has_bias) for form in ("per_synapse", "per_neuron")}


def _loss_steps(data) -> np.ndarray | None:
    """The data set's scored steps, bool (T,) (None: every step)."""
    mask = getattr(data, "loss_steps", None)
    return None if mask is None else np.asarray(mask, bool).reshape(-1)


def _step_ranges(mask: np.ndarray) -> str:
    """The scored steps as ranges: ``155-169 of 0-169``."""
    index = np.flatnonzero(mask)
    cuts = np.flatnonzero(np.diff(index) > 1) + 1
    parts = [f"{g[0]}-{g[-1]}" if len(g) > 1 else f"{g[0]}" for g in np.split(index, cuts)]
    return f"{', '.join(parts)} of 0-{len(mask) - 1}"


def _percent(readout: np.ndarray, y: np.ndarray) -> float:
    """Accuracy in % (one decimal) of a read-out ``(N, classes)`` against labels ``y`` (N,)."""
    return round(100 * float((np.asarray(readout).argmax(1) == np.asarray(y)).mean()), 1)


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
