"""Reference training in torch: BPTT, SLTT, SLTT-K, OTTT (A, O), TTL-BPTT, STDL and the reversible node.

``build_rule(name, network, **options)`` returns a :class:`methods.rule.TrainingRule` over a torch copy
of the float :class:`hwsim.sim.network.Network`; ``RULES`` lists the names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.methods.errors import RuleError

import hwsim

hwsim._same_tree(__file__, "methods")  # refuse a copy of hwsim mixed from another checkout

if TYPE_CHECKING:  # torch is imported by build_rule, not by ``import hwsim.methods``
    import torch
    from hwsim.methods.rule import TrainingRule

    from hwsim.sim.network import Network

RULES = ("bptt", "sltt", "sltt_k", "ottt_a", "ottt_o", "ttl_bptt", "stdl", "revsnn")


def build_rule(name: str, network: Network, *, k: int = 2, window: int = 1, block: int = 1, subnet: int = 1,
               budget_bytes: int | None = None, batch_size: int = 32, surrogate=None, seed: int = 0,
               ttl_update: str = "batch", device: str | torch.device = "cpu") -> TrainingRule:
    """A training rule by name. Options: ``k`` (SLTT-K), ``window``/``block``/``ttl_update`` (TTL-BPTT), ``subnet``/
    ``budget_bytes``/``batch_size`` (STDL; budget default
    :data:`hwsim.learning.stdl_plan.DEFAULT_BUDGET_BYTES`). The model is
    moved to ``device``."""
    import torch
    from hwsim.methods.bptt import BPTT
    from hwsim.methods.models import SpikingNet
    from hwsim.methods.ottt import OTTT
    from hwsim.methods.revsnn import Reversible, from_network
    from hwsim.methods.sltt import SLTT
    from hwsim.methods.stdl import STDL
    from hwsim.methods.ttl_bptt import TTLBPTT

    if name not in RULES:
        raise RuleError(f"unknown rule {name!r}; known rules: {', '.join(RULES)}")
    if name == "revsnn":
        return Reversible(from_network(network, seed=seed).to(device))
    model = SpikingNet.from_network(network, surrogate).to(device)
    if name == "bptt":
        return BPTT(model)
    if name in ("sltt", "sltt_k"):
        return SLTT(model, k=k if name == "sltt_k" else None, generator=torch.Generator().manual_seed(seed))
    if name in ("ottt_a", "ottt_o"):
        return OTTT(model, variant=name[-1].upper())
    if name == "ttl_bptt":
        return TTLBPTT(model, window=window, block=block, seed=seed, update=ttl_update)
    from hwsim.learning.stdl_plan import DEFAULT_BUDGET_BYTES

    budget = DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes
    return STDL(model, subnet=subnet, budget_bytes=budget, batch_size=batch_size, seed=seed, network=network)


def __getattr__(name: str):
    if name == "TrainingRule":  # lazily, so that ``import hwsim.methods`` stays free of torch
        from hwsim.methods.rule import TrainingRule

        return TrainingRule
    raise AttributeError(f"module 'methods' has no attribute {name!r}")


__all__ = ["RULES", "RuleError", "TrainingRule", "build_rule"]
