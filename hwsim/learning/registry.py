"""The rule registry: every learning rule declared once, with its options, what it needs from a chip and where
its torch reference and on-chip kernel live.

Everything that lists rules or rule options reads this module: the command line (``train``, ``estimate --rules``,
``feasibility``), the study and sweep schemas, feasibility's capability checks, the figures' palette and the docs'
option table (:func:`options_table`). Adding a rule is one module with its torch class plus one :func:`register`
call (docs/development.md has a worked example).

Options are shared between rules: an :class:`Option` is declared once (type, default, unit, bounds, the paper
the default comes from) and each :class:`Rule` names the options it uses. :class:`RuleOptions` holds the values of
one run; an option given that none of the run's rules uses is refused (it would be ignored silently).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hwsim.errors import UsageError


class RegistryError(UsageError):
    """An unknown rule, an unknown option or an option value out of its range (one line, names it)."""


@dataclass(frozen=True)
class Option:
    """One rule option. ``name`` is the Python keyword and the study/sweep key; the command-line flag is
    ``--`` + name with ``-`` for ``_`` (:attr:`flag`). ``unit`` names what the number counts (``steps``,
    ``layers``, ``bytes``, ``1`` for a plain number); ``source`` is where the default comes from."""

    name: str
    kind: type
    default: Any
    unit: str
    help: str
    source: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    neuron: bool = False  # a neuron parameter of the network (tau, v_th): applies to every rule
    on_chip: bool = True  # the on-chip learner and feasibility honour it (False: torch training only)
    default_text: str = ""  # what a default of None means, as help and docs print it

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` converted to the option's type and checked against its bounds; one line naming ``where``
        (default: the flag) otherwise."""
        where = where or self.flag
        if isinstance(value, bool) or (self.kind is not str and isinstance(value, str) and not value.strip()):
            raise RegistryError(f"{where}: expected {self._expects()}, got {value!r}")
        try:
            converted = self.kind(value)
        except (TypeError, ValueError, OverflowError):
            raise RegistryError(f"{where}: expected {self._expects()}, got {str(value)[:40]!r}") from None
        if self.kind is int and isinstance(value, float) and value != converted:
            raise RegistryError(f"{where}: expected {self._expects()}, got {value!r}")
        if self.kind is float and not (converted == converted and abs(converted) != float("inf")):
            raise RegistryError(f"{where}: expected a finite number, got {value!r}")
        if self.choices is not None and converted not in self.choices:
            raise RegistryError(f"{where}: expected one of {', '.join(self.choices)}, got {str(value)[:40]!r}")
        if (self.minimum is not None and converted < self.minimum) or (
                self.maximum is not None and converted > self.maximum):
            raise RegistryError(f"{where}: expected {self._expects()}, got {value!r}")
        return converted

    def _expects(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        what = {int: "an integer", float: "a number", str: "text"}.get(self.kind, self.kind.__name__)
        if self.minimum is not None and self.maximum is not None:
            return f"{what} in {self.minimum:g}..{self.maximum:g}"
        if self.minimum is not None:
            return f"{what} >= {self.minimum:g}"
        return what


@dataclass(frozen=True)
class Needs:
    """What a rule needs from a chip's learning engine and memory.

    ``capabilities``: names of ``learning`` capabilities of a chip profile (``graded_error_messages``,
    ``third_factor``, ``local_traces``, …); ``accumulators``: a gradient accumulator per synapse; ``traces``: a
    presynaptic trace per neuron; ``history``: state kept over time (``"T"``: every step, ``"window"``: the
    truncation window, None: none); ``aux``: extra networks trained beside the main one (``"classifier"``: a local
    linear classifier per block, ``"copy"``: STDL's auxiliary networks); ``eligibility``: where e-prop's eligibility
    traces live (``"per_synapse"``: state per synapse, as Bellec et al. 2020; ``"per_neuron"``: traces per neuron
    only, the products formed on the fly, as ReckOn; None: the rule keeps none); ``learning_signal``: a learning
    signal computed at the read-out and broadcast to every hidden neuron (e-prop's ``L_j = sum_k B_jk err_k``).
    A rule whose needs depend on its options (e-prop's ``eligibility``) gives them through :func:`needs_of`."""

    capabilities: tuple[str, ...]
    accumulators: bool = True
    traces: bool = False
    history: str | None = None
    aux: str | None = None
    eligibility: str | None = None
    learning_signal: bool = False


@dataclass(frozen=True)
class Rule:
    """A learning rule. ``torch`` is ``"module:builder"`` of its torch reference (imported only when training);
    ``kernel`` the on-chip kernel family (``"online"``: per-step backward through layers, ``"windowed"``: state
    history inside a window, ``"eprop"``: e-prop's eligibility traces and broadcast learning signal on one recurrent
    layer and its read-out, :mod:`hwsim.learning.eprop`; None: no on-chip form); ``options`` the names of the
    :data:`OPTIONS` it uses besides the neuron and surrogate options every rule takes."""

    name: str
    title: str
    paper: str
    torch: str
    needs: Needs
    kernel: str | None = None
    options: tuple[str, ...] = ()
    color: str = "#777777"
    summary: str = ""
    traces: bool = False  # the weight gradient uses a presynaptic trace (OTTT)
    update_every_step: bool = False  # weights written at every step (OTTT_O), not once per sample
    sampled_steps: bool = False  # backward only at K sampled steps (SLTT-K)
    window: str | None = None  # "T" (BPTT), "option" (TTL-BPTT's window), "1" (STDL), None (online rules)
    marker: str = "o"  # matplotlib marker in figures
    writes_network: bool = True  # training writes the trained hwsim network (False: another architecture)
    loss_text: str = "loss"  # what the printed training loss is

    @property
    def budgeted(self) -> bool:
        """Its auxiliary networks are chosen under a memory budget (STDL): the budget must admit one."""
        return self.needs.aux == "copy"


OPTIONS: dict[str, Option] = {}
RULES: dict[str, Rule] = {}
STUDY_DEFAULTS = {"train_rules": ("sltt", "bptt"), "on_chip": ("sltt", "ottt_a")}  # the built-in study's choices
COMMON = ("surrogate", "alpha", "mse", "mse_target")  # options of every rule (surrogate gradient, loss mix)
KERNELS = (None, "online", "windowed", "eprop")  # the on-chip kernel families (None: no on-chip form)


def add_option(option: Option) -> Option:
    """Declare an option (once; a second declaration of the same name is an error)."""
    if option.name in OPTIONS:
        raise RegistryError(f"option {option.name!r} is declared twice")
    OPTIONS[option.name] = option
    return option


def register(rule: Rule) -> Rule:
    """Add ``rule`` to the registry (its options must be declared first)."""
    if rule.name in RULES:
        raise RegistryError(f"rule {rule.name!r} is registered twice")
    unknown = [name for name in rule.options if name not in OPTIONS]
    if unknown:
        raise RegistryError(f"rule {rule.name!r}: undeclared options {', '.join(unknown)}")
    if rule.kernel not in KERNELS:
        raise RegistryError(f"rule {rule.name!r}: kernel must be 'online', 'windowed', 'eprop' or None, got "
                            f"{rule.kernel!r}")
    RULES[rule.name] = rule
    return rule


def unregister(name: str) -> None:
    """Remove a rule (tests that register a toy rule clean up with this)."""
    RULES.pop(name, None)


def get(name: str, what: str = "rule") -> Rule:
    """The rule called ``name``; one line naming the known rules otherwise."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise RegistryError(f"{what}: unknown rule {str(name)[:40]!r}; known rules: {', '.join(RULES)}") from None


def names(on_chip: bool | None = None) -> tuple[str, ...]:
    """Rule names in registration order; ``on_chip=True``: those with an on-chip kernel; False: those without."""
    return tuple(r.name for r in RULES.values() if on_chip is None or (r.kernel is not None) == on_chip)


def parse_rules(text: str | Iterable[str], what: str = "--rules", on_chip: bool | None = None) -> list[str]:
    """``"all"``, ``"a,b"`` or a list of names → the rule names, each checked (``on_chip``: only rules with an
    on-chip form, the others named as such)."""
    items = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p).strip() for p in text]
    if items == ["all"]:
        return list(names(on_chip))
    if not items or "" in items:
        raise RegistryError(f"{what}: give rule names separated by commas, or 'all'")
    for item in items:
        rule = get(item, what)
        if on_chip and rule.kernel is None:
            raise RegistryError(f"{what}: {item} has no on-chip form; rules with one: {', '.join(names(True))}")
    return list(dict.fromkeys(items))


def options_of(rule: str) -> tuple[str, ...]:
    """Every option ``rule`` takes: its own, the surrogate options and the neuron options."""
    own = get(rule).options
    neuron = tuple(n for n, o in OPTIONS.items() if o.neuron)
    return tuple(dict.fromkeys((*own, *COMMON, *neuron)))


def needs_of(rule: str, options: RuleOptions | None = None) -> Needs:
    """What ``rule`` needs from a chip with the run's ``options`` (None: the defaults): its :class:`Needs`, with
    e-prop's ``eligibility`` option applied -- per synapse (Bellec et al. 2020): eligibility state and a gradient
    accumulator per synapse, weights written once per batch; per neuron (ReckOn, Frenkel & Indiveri 2022):
    traces per neuron only and weights written at every scored step, so no per-synapse state besides the weight."""
    entry = get(rule)
    if "eligibility" not in entry.options:
        return entry.needs
    where = (options or RuleOptions()).values["eligibility"]
    return replace(entry.needs, eligibility=where, accumulators=where == "per_synapse")


@dataclass(frozen=True)
class RuleOptions:
    """The option values of one run (every declared option; defaults where not given). Read them as attributes
    (``options.k``); :meth:`of` gives the ones a rule uses, as reports print them."""

    values: Mapping[str, Any] = field(default_factory=dict)
    given: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        full = {name: option.default for name, option in OPTIONS.items()}
        for name, value in self.values.items():
            if name not in OPTIONS:
                raise RegistryError(f"unknown rule option {name!r}; known: {', '.join(OPTIONS)}")
            full[name] = OPTIONS[name].check(value, name)
        object.__setattr__(self, "values", full)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "values")
        if name in values:
            return values[name]
        raise AttributeError(name)

    @classmethod
    def build(cls, rules: Iterable[str], given: Mapping[str, Any], where: str = "option",
              timesteps: int | None = None) -> RuleOptions:
        """Options for a run of ``rules`` from the values ``given`` (None = not given): each checked, one that
        none of the rules uses refused, K and the TTL-BPTT window held to ``timesteps``. ``where`` formats the
        name in messages: ``"flag"`` (``--budget-bytes``) or ``"key"`` (``budget_bytes``)."""
        rules = list(dict.fromkeys(rules))
        given = {k: v for k, v in given.items() if v is not None}
        for name in given:
            if name not in OPTIONS:
                raise RegistryError(f"unknown rule option {name!r}; known: {', '.join(OPTIONS)}")
            label = OPTIONS[name].flag if where == "flag" else name
            users = [r for r in RULES if name in options_of(r)]
            if not set(users) & set(rules):
                raise RegistryError(f"{label} applies to {', '.join(users)} only; {', '.join(rules)} does not use it")
        checked = {n: OPTIONS[n].check(v, OPTIONS[n].flag if where == "flag" else n) for n, v in given.items()}
        options = cls(checked, frozenset(checked))
        if timesteps is not None:
            options.check_timesteps(rules, timesteps, where)
        return options

    def check_timesteps(self, rules: Iterable[str], timesteps: int, where: str = "option") -> None:
        """K of SLTT-K and TTL-BPTT's window must not exceed T (one line otherwise)."""
        rules = set(rules)
        label = (lambda n: OPTIONS[n].flag) if where == "flag" else (lambda n: n)
        if "k" in self.given and any("k" in get(r).options for r in rules) and self.k > timesteps:
            raise RegistryError(f"{label('k')}: SLTT-K backpropagates at K of the T steps; K={self.k} is larger "
                                f"than T={timesteps}")
        if "window" in self.given and any("window" in get(r).options for r in rules) and self.window > timesteps:
            raise RegistryError(f"{label('window')} {self.window}: TTL-BPTT's window is longer than T={timesteps} "
                                f"(a window of T is BPTT: use bptt)")

    def of(self, rule: str, timesteps: int | None = None, on_chip: bool = False) -> dict[str, Any]:
        """The rule's own options with their values (K and window held to ``timesteps``), plus any surrogate or
        neuron option given explicitly: what makes this run of ``rule`` the rule it is (``on_chip``: only the
        options the on-chip learner honours)."""
        out = {}
        for name in get(rule).options:
            if on_chip and not OPTIONS[name].on_chip:
                continue
            value = self.values[name]
            if name in ("k", "window") and timesteps is not None:
                value = min(value, timesteps)
            out[name] = value
        for name in (*COMMON, *(n for n, o in OPTIONS.items() if o.neuron)):
            if name in self.given:
                out[name] = self.values[name]
        return out

    def text(self, rule: str, timesteps: int | None = None, on_chip: bool = False) -> str:
        """``sltt_k (k=2)``: the rule with its options, as tables print it."""
        used = self.of(rule, timesteps, on_chip)
        return rule + (f" ({', '.join(f'{k}={v}' for k, v in used.items())})" if used else "")


SURROGATE_ALPHA = {"triangle": 1.0, "sigmoid": 4.0, "rectangle": 1.0}  # each shape's paper default (alpha None)


def surrogate_alpha(surrogate: str | None, alpha: float | None) -> float:
    """The surrogate width/steepness a run uses: ``alpha``, or the shape's own paper default when None (triangle 1,
    Meng et al. 2023; sigmoid 4, Xiao et al. 2022; rectangle 1)."""
    return float(alpha) if alpha is not None else SURROGATE_ALPHA[surrogate or "triangle"]


def options_table() -> str:
    """The docs' option table (Markdown): every option, its flag/key, default, unit, rules and source."""
    lines = ["| option (flag / study key) | default | unit | rules | meaning | default from |",
             "|---|---|---|---|---|---|"]
    for option in OPTIONS.values():
        users = "all" if option.neuron or option.name in COMMON else ", ".join(
            r.name for r in RULES.values() if option.name in r.options)
        choices = f" ({' / '.join(option.choices)})" if option.choices else ""
        default = option.default if option.default is not None else option.default_text or "none"
        lines.append(f"| `{option.flag}` / `{option.name}` | {default} | {option.unit} | {users} | "
                     f"{option.help}{choices} | {option.source or '-'} |")
    return "\n".join(lines)


def _declare() -> None:
    """The shipped options and rules."""
    sltt_paper = "Meng et al., ICCV 2023 (arXiv 2302.14311)"
    ottt_paper = "Xiao et al., NeurIPS 2022"
    add_option(Option("k", int, 2, "steps", "SLTT-K: time steps with a backward pass, drawn per batch",
                      sltt_paper + ": K = 2 for DVS-CIFAR10 and ImageNet", minimum=1, maximum=100_000))
    add_option(Option("window", int, 2, "steps", "TTL-BPTT: truncation window k (BPTT inside a window)",
                      "Guo et al., Front. Neurosci. 2023: the design space is window x block", minimum=1,
                      maximum=100_000))
    add_option(Option("block", int, 1, "layers", "TTL-BPTT: layers per locally trained block",
                      "Guo et al., Front. Neurosci. 2023", minimum=1, maximum=1000))
    add_option(Option("ttl_update", str, "batch", "1", "TTL-BPTT: weights updated once per batch or after "
                      "every window", "Guo et al., Front. Neurosci. 2023", choices=("batch", "window"),
                      on_chip=False))
    add_option(Option("subnet", int, 1, "layers", "STDL: layers per subnetwork",
                      "Ma et al., arXiv 2506.01117 (2025)", minimum=1, maximum=1000))
    add_option(Option("budget_bytes", int, 128 * 1024, "bytes",
                      "STDL: training-memory budget of each auxiliary network",
                      "hwsim's default (binds on the built-in 64-128-128-10 net); Ma et al. choose it per task",
                      minimum=1, maximum=1 << 50))
    add_option(Option("surrogate", str, "triangle", "1", "surrogate gradient shape",
                      sltt_paper + " (triangle); " + ottt_paper + " uses sigmoid",
                      choices=("triangle", "sigmoid", "rectangle")))
    add_option(Option("alpha", float, None, "1", "surrogate width/steepness alpha",
                      sltt_paper + " (triangle alpha = 1); " + ottt_paper + " (sigmoid alpha = 4)",
                      minimum=1e-3, maximum=1e3, default_text="the shape's own: triangle 1, sigmoid 4, rectangle 1"))
    add_option(Option("mse", float, 0.0, "1", "weight of the MSE term in the loss ((1 - mse) CE + mse MSE, per step "
                      "/ T); 0 is cross-entropy alone, what the on-chip kernels compute",
                      "both papers' code use 0.05 (" + sltt_paper + "; " + ottt_paper + ")", minimum=0.0,
                      maximum=1.0, on_chip=False))
    add_option(Option("mse_target", str, None, "1", "target of the MSE term", "the rule's paper code: every output "
                      "against 1.0 for SLTT, the one-hot label for the others", choices=("means", "one_hot"),
                      on_chip=False, default_text="the rule's paper code's"))
    add_option(Option("tau", float, None, "steps", "membrane time constant of every LIF layer (leak 1 - 1/tau)",
                      sltt_paper + " (tau = 1.1); " + ottt_paper + " (tau = 2)", minimum=1.0, maximum=1e6,
                      neuron=True, default_text="the network's own (1.1 for a spec)"))
    add_option(Option("v_th", float, None, "weight units", "firing threshold of every LIF layer",
                      sltt_paper + " (V_th = 1)", minimum=1e-6, maximum=1e6, neuron=True,
                      default_text="the network's own (1 for a spec)"))
    _declare_eprop_options()
    online = ("graded_error_messages", "third_factor")
    register(Rule("bptt", "BPTT", "Werbos 1990 (backpropagation through time)", "hwsim.methods.bptt:build",
                  Needs(online, history="T"), "windowed", color="#444444", window="T",
                  marker="o", summary="full gradient through time; every step's state stored"))
    register(Rule("sltt", "SLTT", sltt_paper, "hwsim.methods.sltt:build", Needs(online), "online",
                  color="#0072B2", marker="s", summary="per-step backward through layers; temporal path dropped"))
    register(Rule("sltt_k", "SLTT-K", sltt_paper, "hwsim.methods.sltt:build", Needs(online), "online", ("k",),
                  color="#56B4E9", sampled_steps=True, marker="v", summary="SLTT with backward at K sampled steps"))
    register(Rule("ottt_a", "OTTT (accumulate)", ottt_paper, "hwsim.methods.ottt:build",
                  Needs(("local_traces", *online), traces=True), "online", color="#E69F00", traces=True,
                  marker="^", summary="per-step error x presynaptic trace, accumulated over the sample"))
    register(Rule("ottt_o", "OTTT (online)", ottt_paper, "hwsim.methods.ottt:build",
                  Needs(("local_traces", *online), accumulators=False, traces=True), "online", color="#D55E00",
                  traces=True, update_every_step=True, marker="<",
                  summary="per-step error x presynaptic trace, update every step"))
    register(Rule("ttl_bptt", "TTL-BPTT", "Guo, Fouda, Eltawil, Salama, Front. Neurosci. 17:1047008 (2023)",
                  "hwsim.methods.ttl_bptt:build", Needs(online, history="window", aux="classifier"), "windowed",
                  ("window", "block", "ttl_update"), color="#009E73", window="option",
                  marker="D", summary="local blocks with classifiers x BPTT inside time windows",
                  loss_text="loss (output + local classifiers)"))
    register(Rule("stdl", "STDL", "Ma, Chen, Tan, Wu, arXiv 2506.01117 (2025)", "hwsim.methods.stdl:build",
                  Needs(online, aux="copy"), "windowed", ("subnet", "budget_bytes"), color="#CC79A7", window="1",
                  marker="P", summary="subnetworks with auxiliary networks under a memory budget, online in time",
                  loss_text="loss (output + auxiliary networks)"))
    register(Rule("revsnn", "reversible SNN node", "Lei, Ding, Liao, Lin, Lin, arXiv 2308.08649 (2023)",
                  "hwsim.methods.revsnn:build", Needs(online, history="T"), None, color="#8C564B",
                  marker="X", summary="BPTT with states recomputed from outputs instead of stored",
                  writes_network=False))
    register(Rule("eprop", "e-prop", EPROP_PAPER, "hwsim.methods.eprop:build",
                  Needs(("local_traces", "third_factor"), traces=True, eligibility="per_synapse", learning_signal=True),
                  "eprop", ("eligibility", "feedback", "kappa", "trace_bits_in", "trace_bits_rec", "trace_bits_out"),
                  color="#882255", traces=True, marker="h",
                  summary="eligibility traces x a learning signal broadcast from the read-out; one recurrent layer"))


EPROP_PAPER = "Bellec et al., Nat. Commun. 11:3625 (2020)"
RECKON_PAPER = "Frenkel & Indiveri, ISSCC 2022 (ReckOn)"


def _declare_eprop_options() -> None:
    """e-prop's options (Bellec et al. 2020; ReckOn's per-neuron variant, Frenkel & Indiveri 2022)."""
    add_option(Option("eligibility", str, "per_synapse", "1", "e-prop: eligibility state per synapse (the paper: "
                      "filtered and adaptation traces per synapse, weights written once per batch) or per neuron "
                      "(ReckOn: presynaptic traces per neuron, psi x trace formed on the fly, weights written at every "
                      "scored step)", EPROP_PAPER + " (per synapse); " + RECKON_PAPER + " (per neuron)",
                      choices=("per_synapse", "per_neuron")))
    add_option(Option("feedback", str, "symmetric", "1", "e-prop: learning-signal weights B: the read-out's own "
                      "W_out^T (symmetric e-prop) or a fixed random matrix (random e-prop)",
                      EPROP_PAPER + " (symmetric, random and adaptive e-prop)", choices=("symmetric", "random")))
    add_option(Option("kappa", float, 0.0, "1", "e-prop: read-out filter y[t] = kappa y[t-1] + W_out s[t] + b "
                      "(0: the read-out current, as every rule's loss; the paper's leaky read-out: exp(-dt/tau_out))",
                      EPROP_PAPER + " (leaky read-out); 0 keeps hwsim's read-out", minimum=0.0, maximum=1.0))
    for name, part, bits in (("trace_bits_in", "input", 12), ("trace_bits_rec", "recurrent", 12),
                             ("trace_bits_out", "output", 10)):
        add_option(Option(name, int, bits, "bits", f"e-prop on chip, fixed point: bits of the per-neuron {part} "
                          f"eligibility trace", RECKON_PAPER + f": {bits}-bit {part} trace (neuron memory of its "
                          "released HDL, github.com/ChFrenkel/ReckOn)", minimum=2, maximum=24))


_declare()
