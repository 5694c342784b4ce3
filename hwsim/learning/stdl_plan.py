"""STDL's auxiliary networks: which following layers each subnetwork trains against, under a memory budget.

Ma et al., "Spatio-Temporal Decoupled Learning for Spiking Neural Networks" (arXiv 2506.01117, 2025): the
network is cut into subnetworks; each but the last trains against an auxiliary network built from the
*largest* subset of its subsequent layers that fits a memory constraint. Our reading (the paper's code was
not readable here), shared by the torch rule (``methods.stdl``), the on-chip learner (``hwsim.learning.learner``)
and the feasibility analysis (``hwsim.learning.feasibility``), which all call :func:`plan`:

* the neuron layers (a ``Flatten`` is not one) are cut into runs of ``subnet`` layers;
* the candidates for subnetwork i (ending at neuron layer ``hi``) are the runs ``hi .. hi+m-1`` of the
  layers that follow it, longest first (m = L - hi down to 0), each followed by a linear classifier of its
  last spikes unless it reaches the network's read-out; the first candidate whose training memory fits
  ``budget_bytes`` is taken;
* training memory of a candidate is what training it takes by torch's allocator (float32, 4 bytes a value, at
  batch size ``batch``; :func:`training_bytes`): ``3 x parameters`` (weights, gradients, SGD momentum) ``+`` the
  state it carries from step to step (every mirrored layer's membrane and spikes, ``2 B n_l``) ``+`` the largest
  working set of one layer's step ``+`` the loss (log-softmax and its gradient, ``2 B C``). The working sets:
  a dense layer ``2 B n_l`` forward (its current and new membrane), ``B n_l + B n_{l-1} + |W_l|`` backward (the
  error at its output, the error for the layer below -- the first mirrored layer's input comes from the
  subnetwork, which learns from it -- and the weight-gradient temporary); a recurrent layer counts its recurrent
  weights among its parameters, holds three currents forward (``3 B n_l``: input, recurrent, their sum), the
  larger of its two weight-gradient temporaries backward, and carries the previous spikes its recurrent synapses
  save (``B n_l`` more state); an ALIF layer carries its adaptation ``a`` and the ``u - A`` its spike function
  saves (``2 B n_l`` more state); a sum-pool layer ``2 B n_l`` forward and ``2 B n_l + B n_{l-1}`` backward; a
  conv layer ``2 (B n_l + B n_{l-1}) + |W_l|`` backward and ``2 B n_l`` forward, ``4 B n_l`` when another mirrored
  layer feeds it (torch's CPU convolutions, oneDNN, reorder their operands into blocked buffers: these two conv
  terms are calibrated on torch 2.13's CPU kernels); a classifier ``B C + B F + |W_c|``. ``tests/test_stdl.py``
  holds the plan to the allocator's measurement within 10 % on an MLP and a conv net (16- and 32-channel layers;
  narrower conv layers, padded by oneDNN to its channel blocks, need up to ~15 % more),
  ``tests/test_methods_recurrent.py`` on recurrent and ALIF layers (3 % measured);
* the auxiliary layers get their own weights, drawn independently of the layers they mirror
  (:func:`init_weights`): a mirrored layer as ``hwsim.sim.network.from_spec`` draws weights (N(0, (3/sqrt(fan_in))^2),
  a zero bias where the mirrored layer has one), the classifier as torch's ``nn.Linear`` (U(+-1/sqrt(fan_in)))
  -- never copies, or the auxiliary network would receive exactly its layers' gradients and STDL would
  degenerate into SLTT; a mirrored recurrent layer's recurrent weights come from :func:`init_recurrent`.

A budget too small for every candidate is refused with one line naming the smallest candidate and its need
(a budget of that size admits it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.sim.network import RECURRENT_GAIN, Conv2d, Flatten, FloatALIF, Network, Recurrent, SumPool2d

FLOAT_BYTES = 4
DEFAULT_BUDGET_BYTES = 128 * 1024
DEFAULT_BATCH = 32
INIT_GAIN = 3.0  # hwsim.sim.network.from_spec's default gain


class STDLError(ValueError):
    """An STDL option that cannot work (subnetwork size, a budget too small for any auxiliary network)."""


@dataclass(frozen=True)
class Auxiliary:
    """The auxiliary network of one subnetwork: ``layers`` (neuron-layer positions it mirrors, in order),
    whether a linear ``classifier`` follows, and its training memory ``bytes`` at the plan's batch size."""

    layers: tuple[int, ...]
    classifier: bool
    bytes: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Subnetworks as ``(lo, hi)`` neuron-layer ranges; one :class:`Auxiliary` per subnetwork but the last."""

    subnets: tuple[tuple[int, int], ...]
    auxiliary: tuple[Auxiliary, ...]
    budget_bytes: int
    batch: int
    neuron_layers: tuple[int, ...]  # index in ``network.layers`` of each neuron layer

    def describe(self, network: Network) -> dict:
        names = [network.layers[i].name or f"layer{i}" for i in self.neuron_layers]
        return {"budget_bytes": self.budget_bytes, "batch": self.batch,
                "subnetworks": [names[lo:hi] for lo, hi in self.subnets],
                "auxiliary": [list(a.names) for a in self.auxiliary],
                "auxiliary_training_bytes": [a.bytes for a in self.auxiliary]}


def _neuron_layers(network: Network) -> list[int]:
    return [i for i, layer in enumerate(network.layers) if not isinstance(layer, Flatten)]


def _numel(shape) -> int:
    return int(np.prod(shape))


def training_bytes(network: Network, layers: list[int], classifier: bool, batch: int) -> int:
    """Training memory (bytes, torch's allocator basis) of an auxiliary network mirroring neuron layers
    ``layers`` (positions among the neuron layers, in order) behind the layer before ``layers[0]``, followed by a
    classifier when ``classifier``; see the module docstring. ``layers`` may be empty only with a classifier
    (:func:`_classifier_bytes`)."""
    neuron = _neuron_layers(network)
    shapes = network.layer_shapes()
    classes = _numel(network.output_shape)
    params = state = work = 0
    prev = _numel(shapes[neuron[layers[0]]][0])
    for position, k in enumerate(layers):
        layer = network.layers[neuron[k]]
        n = _numel(shapes[neuron[k]][1])
        weights = 0 if isinstance(layer, SumPool2d) else \
            layer.weight.size + (0 if layer.bias is None else layer.bias.size)
        recurrent = layer.recurrent.size if isinstance(layer, Recurrent) else 0
        params += weights + recurrent
        state += (2 + (2 if isinstance(layer.neuron, FloatALIF) else 0) + (1 if recurrent else 0)) * batch * n
        if isinstance(layer, Conv2d):
            forward, backward = (2 if position == 0 else 4) * batch * n, 2 * batch * (n + prev) + weights
        elif isinstance(layer, SumPool2d):
            forward, backward = 2 * batch * n, 2 * batch * n + batch * prev
        else:
            forward, backward = (3 if recurrent else 2) * batch * n, batch * (n + prev) + max(weights, recurrent)
        work = max(work, forward, backward)
        prev = n
    if classifier:
        head = prev * classes + classes
        params += head
        work = max(work, batch * (classes + prev) + head)
    return FLOAT_BYTES * (3 * params + state + work + 2 * batch * classes)


def _features_before(network: Network, layers: list[int]) -> tuple[int, ...]:
    """Shape of the spikes the classifier reads: the last mirrored layer's output."""
    neuron = _neuron_layers(network)
    return network.layer_shapes()[neuron[layers[-1]]][1]


def plan(network: Network, subnet: int = 1, budget_bytes: int = DEFAULT_BUDGET_BYTES,
         batch: int = DEFAULT_BATCH) -> Plan:
    """Subnetworks and their auxiliary networks for ``budget_bytes`` (see the module docstring)."""
    neuron = _neuron_layers(network)
    count = len(neuron)
    if count < 1:
        raise STDLError("STDL needs at least one neuron layer")
    if subnet < 1 or (subnet >= count and count > 1):  # one layer: one subnetwork, trained by the read-out
        raise STDLError(f"STDL subnetwork size must be in 1..{count - 1} for a network of {count} neuron layers, "
                        f"got {subnet}")
    if budget_bytes <= 0:
        raise STDLError(f"STDL memory budget must be > 0 bytes, got {budget_bytes}")
    if batch < 1:
        raise STDLError(f"STDL batch size must be >= 1, got {batch}")
    names = [network.layers[i].name or f"layer{i}" for i in neuron]
    subnets = tuple((lo, min(lo + subnet, count)) for lo in range(0, count, subnet))
    auxiliary = []
    for index, (_, hi) in enumerate(subnets[:-1]):
        chosen, smallest = None, None
        for m in range(count - hi, -1, -1):
            layers = list(range(hi, hi + m))
            classifier = hi + m != count
            needed = training_bytes(network, layers, classifier, batch) if layers else \
                _classifier_bytes(network, hi - 1, batch)
            if smallest is None or needed < smallest[0]:  # a longer run can need less than a classifier alone
                smallest = (needed, "a classifier alone" if not layers else
                            " + ".join([names[k] for k in layers] + (["a classifier"] if classifier else [])))
            if needed <= budget_bytes:
                chosen = Auxiliary(tuple(layers), classifier, needed,
                                   tuple(names[k] for k in layers) + (("classifier",) if classifier else ()))
                break
        if chosen is None:
            raise STDLError(f"STDL memory budget {budget_bytes} bytes is too small for any auxiliary network of "
                            f"subnetwork {index} ({', '.join(names[subnets[index][0]:hi])}): the smallest "
                            f"({smallest[1]}) needs {smallest[0]} bytes at batch {batch}")
        auxiliary.append(chosen)
    return Plan(subnets, tuple(auxiliary), int(budget_bytes), int(batch), tuple(neuron))


def _classifier_bytes(network: Network, below: int, batch: int) -> int:
    """A classifier alone on the spikes of neuron layer ``below`` (allocator basis, as :func:`training_bytes`)."""
    neuron = _neuron_layers(network)
    features = _numel(network.layer_shapes()[neuron[below]][1])
    classes = _numel(network.output_shape)
    head = features * classes + classes
    return FLOAT_BYTES * (3 * head + batch * (classes + features) + head + 2 * batch * classes)


def init_recurrent(network: Network, stdl_plan: Plan, seed: int = 0) -> list[list[np.ndarray | None]]:
    """Initial recurrent weights (n, n) of every auxiliary layer that mirrors a recurrent layer, per subnetwork,
    in the order of :func:`init_weights` (None for a layer without recurrent synapses; the classifier has no
    entry). Drawn as ``hwsim.sim.network.from_spec`` draws them -- N(0, (RECURRENT_GAIN / sqrt(n))^2), no
    self-connections -- from their own stream of ``seed``, so :func:`init_weights` is the same for every network
    and a feed-forward plan draws nothing here."""
    rng = np.random.default_rng([int(seed), 0x5D2])
    neuron = stdl_plan.neuron_layers
    out = []
    for aux in stdl_plan.auxiliary:
        chain = []
        for k in aux.layers:
            layer = network.layers[neuron[k]]
            if not isinstance(layer, Recurrent):
                chain.append(None)
                continue
            n = layer.n_out
            weight = rng.normal(0.0, RECURRENT_GAIN / np.sqrt(n), (n, n)).astype(np.float32)
            np.fill_diagonal(weight, 0.0)
            chain.append(weight)
        out.append(chain)
    return out


def init_weights(network: Network, stdl_plan: Plan, seed: int = 0) -> list[list[tuple[np.ndarray | None,
                                                                                   np.ndarray | None]]]:
    """Initial (weight, bias) of every auxiliary layer, per subnetwork, in order (classifier last); a sum-pool
    layer has no parameters: (None, None). Float32; drawn from ``seed`` alone, independent of the weights of
    the layers mirrored (see the module docstring)."""
    rng = np.random.default_rng([int(seed), 0x5D1])
    neuron = stdl_plan.neuron_layers
    classes = _numel(network.output_shape)
    out = []
    for (_, hi), aux in zip(stdl_plan.subnets, stdl_plan.auxiliary):
        chain = []
        for k in aux.layers:
            layer = network.layers[neuron[k]]
            if isinstance(layer, SumPool2d):
                chain.append((None, None))
                continue
            fan_in = int(np.prod(layer.weight.shape[1:]))
            weight = rng.normal(0.0, INIT_GAIN / np.sqrt(fan_in), layer.weight.shape).astype(np.float32)
            bias = None if layer.bias is None else np.zeros(layer.bias.shape, np.float32)
            chain.append((weight, bias))
        if aux.classifier:
            features = _numel(network.layer_shapes()[neuron[aux.layers[-1] if aux.layers else hi - 1]][1])
            bound = 1.0 / np.sqrt(features)
            chain.append((rng.uniform(-bound, bound, (classes, features)).astype(np.float32),
                          rng.uniform(-bound, bound, classes).astype(np.float32)))
        out.append(chain)
    return out
