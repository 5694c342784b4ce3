"""Reference training in torch: BPTT, SLTT, SLTT-K, OTTT (A, O), TTL-BPTT, STDL and the reversible node.

``build_rule(name, network, **options)`` returns a :class:`methods.rule.TrainingRule` over a torch copy
of the float :class:`hwsim.sim.network.Network`; ``RULES`` lists the names (the rule registry's,
:mod:`hwsim.learning.registry`, where each rule names its builder here).
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

def build_rule(name: str, network: Network, *, device: str | torch.device = "cpu", **options) -> TrainingRule:
    """A training rule by name (any rule in :mod:`hwsim.learning.registry`) over a torch copy of ``network``, moved
    to ``device``: the registry entry names its builder (``Rule.torch``, ``module:function``).

    Keyword ``options`` (:class:`hwsim.methods.options.RuleOptions`; defaults and bounds are the registry's, each
    rule reads the ones it uses, an unknown keyword or a bad value is one :class:`RuleError` line): ``k``
    (SLTT-K), ``window``/``block``/``ttl_update`` (TTL-BPTT), ``subnet``/``budget_bytes``/``batch_size`` (STDL), and
    for every rule ``tau``/``v_th`` (replace the network's LIF parameters), ``surrogate``/``alpha`` (shape and
    width of the surrogate gradient), ``mse``/``mse_target`` (the papers' CE + MSE loss mix) and ``seed``. OTTT at
    its paper setting: OTTT's name with ``tau=2, surrogate="sigmoid", alpha=4, mse=0.05``."""
    import importlib

    from hwsim.methods.neuron import make_surrogate
    from hwsim.methods.options import RuleOptions
    from hwsim.methods.rule import LossMix

    from hwsim.learning import registry

    try:
        entry = registry.get(name)
    except registry.RegistryError as err:
        raise RuleError(str(err).removeprefix("rule: ")) from None
    o = RuleOptions.of(options)
    surrogate = make_surrogate(o.surrogate, o.alpha)
    network = with_neuron(network, tau=o.tau, v_th=o.v_th)
    module, function = entry.torch.split(":")
    rule = getattr(importlib.import_module(module), function)(entry, network, surrogate, o, device)
    rule.loss_mix = LossMix(o.mse, o.mse_target or rule.paper_mse_target)
    return rule


def with_neuron(network: Network, tau: float | None = None, v_th: float | None = None) -> Network:
    """``network`` with every float LIF or ALIF layer's time constant ``tau`` (steps; leak ``lam = 1 - 1/tau``) and/or
    threshold ``v_th`` replaced (a new :class:`~hwsim.sim.network.Network` sharing the weight arrays); the
    network itself when both are None. Values are checked as :func:`build_rule` checks them."""
    if tau is None and v_th is None:
        return network
    import dataclasses

    from hwsim.methods.options import RuleOptions

    from hwsim.sim.network import FloatALIF, FloatLIF
    from hwsim.sim.network import Network as _Network

    RuleOptions(tau=tau, v_th=v_th).check()
    changes = {**({} if tau is None else {"lam": 1.0 - 1.0 / float(tau)}),
               **({} if v_th is None else {"v_th": float(v_th)})}
    layers = [layer if not isinstance(getattr(layer, "neuron", None), (FloatLIF, FloatALIF)) else
              dataclasses.replace(layer, neuron=dataclasses.replace(layer.neuron, **changes))
              for layer in network.layers]
    return _Network(network.input_shape, layers, network.timesteps)


def __getattr__(name: str):
    if name == "RULES":  # every registered rule (hwsim.learning.registry), as registered now
        from hwsim.learning import registry

        return registry.names()
    if name == "TrainingRule":  # lazily, so that ``import hwsim.methods`` stays free of torch
        from hwsim.methods.rule import TrainingRule

        return TrainingRule
    raise AttributeError(f"module 'methods' has no attribute {name!r}")


__all__ = ["RULES", "RuleError", "TrainingRule", "build_rule", "with_neuron"]
