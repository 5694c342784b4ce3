"""The torch rules' options: one validated record, so that ``hwsim.methods.build_rule(name, network, **options)``
refuses a bad value with one line naming it (:class:`~hwsim.methods.errors.RuleError`). Torch-free.

Defaults and where they come from (docs/rules.md has the table):

* ``tau``, ``v_th`` -- None: the network's own neurons (``from_spec``: tau = 1.1, V_th = 1, the SLTT paper's
  setting; the OTTT paper uses tau = 2). Given, they replace every LIF layer's (lam = 1 - 1/tau).
* ``surrogate``, ``alpha`` -- triangle with alpha = 1 (SLTT paper code). ``alpha`` None: the shape's own paper
  default (triangle 1, sigmoid 4 -- OTTT paper code --, rectangle width 1).
* ``mse``, ``mse_target`` -- the loss mix ``((1 - mse) CE + mse MSE) / T``; 0 here (cross-entropy alone, what the
  on-chip kernels compute); both papers' code use 0.05. Target None: the rule's paper code's (SLTT: every output
  against 1.0; OTTT and the others: the one-hot label).
* ``k`` (SLTT-K: 2, Meng et al.), ``window`` (TTL-BPTT: 2, the smallest that differs from SLTT), ``block`` (1),
  ``ttl_update`` ("batch"), ``subnet`` (STDL: 1), ``budget_bytes`` (STDL: 128 KiB,
  :data:`hwsim.learning.stdl_plan.DEFAULT_BUDGET_BYTES`), ``batch_size`` (the STDL plan's batch: 32), ``seed`` (0).

Every default and bound but ``batch_size`` and ``seed`` is the rule registry's (:mod:`hwsim.learning.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from hwsim.methods.errors import RuleError


def _default(name: str):
    """The registry's default of option ``name`` (:mod:`hwsim.learning.registry`: one place for every default)."""
    from hwsim.learning.registry import OPTIONS

    return OPTIONS[name].default


@dataclass(frozen=True)
class RuleOptions:
    """Every option a torch rule takes (each rule reads the ones it uses; see the module docstring). Defaults and
    bounds are the rule registry's; ``batch_size`` (the STDL plan's batch) and ``seed`` are the training's.
    ``surrogate`` may also be a surrogate object from :mod:`hwsim.methods.neuron`."""

    k: int = _default("k")
    window: int = _default("window")
    block: int = _default("block")
    ttl_update: str = _default("ttl_update")
    subnet: int = _default("subnet")
    budget_bytes: int | None = _default("budget_bytes")
    batch_size: int = 32
    surrogate: object = _default("surrogate")
    alpha: float | None = _default("alpha")
    tau: float | None = _default("tau")
    v_th: float | None = _default("v_th")
    mse: float = _default("mse")
    mse_target: str | None = _default("mse_target")
    eligibility: str = _default("eligibility")
    feedback: str = _default("feedback")
    kappa: float = _default("kappa")
    seed: int = 0

    @classmethod
    def of(cls, options: dict) -> RuleOptions:
        """The record for keyword ``options``; an unknown keyword or a bad value is one :class:`RuleError` line."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in options if k not in known)
        if unknown:
            raise RuleError(f"unknown rule option {unknown[0]!r}; known: {', '.join(sorted(known))}")
        record = cls(**options)
        record.check()
        return record

    def check(self) -> None:
        """Each value against the registry's type and bounds (one :class:`RuleError` line naming it)."""
        from hwsim.learning.registry import OPTIONS, RegistryError

        _integer("batch_size", self.batch_size, 1)
        _integer("seed", self.seed, 0)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in OPTIONS or value is None or (f.name == "surrogate" and not isinstance(value, str)):
                continue
            if OPTIONS[f.name].kind is int:
                _integer(f.name, value, int(OPTIONS[f.name].minimum or 0))
            try:
                OPTIONS[f.name].check(value, f.name)
            except RegistryError as err:
                raise RuleError(str(err)) from None


def _integer(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RuleError(f"{name}: expected an integer >= {low}, got {value!r}")


__all__ = ["RuleOptions"]
