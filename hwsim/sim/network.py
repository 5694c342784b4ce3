"""One description of a spiking network, shared by the engine, the torch methods and the exporters.

A :class:`Network` is an input shape plus a list of layers. Every synaptic layer (:class:`Dense`,
:class:`Recurrent`, :class:`Conv2d`, :class:`SumPool2d`) drives its own population of LIF neurons, one per
output element (as lava-dl's Dense/Conv/Pool blocks do); :class:`Flatten` only reshapes. Shapes are per
sample, channels first: ``(N,)`` or ``(C, H, W)``. A :class:`Recurrent` layer adds synapses from its own
neurons back to themselves with a one-step delay (as a Lava ``Dense`` feeding a ``LIF``'s output back).

Two numeric forms, fixed per network:

* ``float`` -- :class:`FloatLIF`: the SLTT/OTTT LIF (DESIGN.md section 2), float32 weights; or
  :class:`FloatALIF`, the adaptive-threshold LIF of Bellec et al. (dense and recurrent layers only).
* ``fixed`` -- :class:`LoihiLIF`: Loihi / Lava 0.10.0 ``LIF`` fixed-point parameters, integer weights
  with a per-layer ``weight_exp``, integer per-neuron ``bias`` (the bias mantissa).

File format (``.npz``, never pickle): a numpy ``savez`` archive holding ``__network__`` -- the UTF-8 JSON
text of :meth:`Network.describe` (format ``hwsim-network``, version 1: input shape, per-layer kind,
geometry and neuron parameters) stored as a uint8 array -- and one array per tensor, named
``layers.<i>.weight``, ``layers.<i>.bias`` and (recurrent layers) ``layers.<i>.recurrent``. Load with
:func:`load`; ``allow_pickle`` is off.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from hwsim.errors import NetworkError, short

Shape = tuple[int, ...]
Mode = Literal["float", "fixed"]
MODES = ("float", "fixed")
FORMAT_NAME = "hwsim-network"
FORMAT_VERSION = 1
MAX_LAYER_WEIGHTS = 1 << 28  # weights of one layer built from a spec (1 GiB of float32)
MAX_FILE_BYTES = 1 << 31  # array data read from one network file
MAX_DESCRIPTION_BYTES = 16 << 20  # the JSON description in a network file
MAX_LAYERS = 10_000  # layers of one network (a spec string or a file); each is a Python object of its own



# ---------------------------------------------------------------------------------------------------------
# Neuron parameters
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FloatLIF:
    """Float LIF (SLTT/OTTT form): ``u[t] = lam*(u[t-1] - v_th*s[t-1]) + I[t] (+ b)``, ``s = u >= v_th``.

    ``lam`` is the leak factor 1 - 1/tau (dimensionless, 0..1); ``v_th`` the threshold (same unit as the
    weights); ``reset`` is ``soft`` (subtract ``v_th``) or ``zero`` (u <- 0 after a spike).
    """

    lam: float = 1.0 - 1.0 / 1.1
    v_th: float = 1.0
    reset: Literal["soft", "zero"] = "soft"

    def __post_init__(self) -> None:
        if not (0.0 <= self.lam <= 1.0):
            raise NetworkError(f"FloatLIF.lam must be in [0, 1], got {self.lam}")
        if not (self.v_th > 0 and np.isfinite(self.v_th)):
            raise NetworkError(f"FloatLIF.v_th must be a finite number > 0, got {self.v_th}")
        if self.reset not in ("soft", "zero"):
            raise NetworkError(f"FloatLIF.reset must be 'soft' or 'zero', got {self.reset!r}")


@dataclass(frozen=True)
class LoihiLIF:
    """Fixed-point CUBA LIF, bit-exact with Lava 0.10.0 ``LIF`` under ``fixed_pt`` (DESIGN.md section 2).

    ``du``/``dv``: current/voltage decay, 12-bit (0..4095; du = 4095 keeps no current memory);
    ``vth``: threshold mantissa, 17-bit unsigned (compared as ``v > vth << 6``);
    ``bias_exp``: exponent of the per-neuron bias mantissa (0..7). Reset is to zero, as in Lava.
    """

    du: int = 4095
    dv: int = 0
    vth: int = 64
    bias_exp: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("du", 0, 4095), ("dv", 0, 4095), ("vth", 0, 2**17 - 1), ("bias_exp", 0, 7)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or not lo <= value <= hi:
                raise NetworkError(f"LoihiLIF.{name} must be an integer in {lo}..{hi}, got {value!r}")
            object.__setattr__(self, name, int(value))


FLOAT_WEIGHT_MAX = 1e30  # float weights beyond this overflow float32 sums of a few thousand synapses
ALIF_BETA_MAX = 1e4  # an adaptation raising the threshold by more than 10^4 per unit of a is never meant
LSNN_BETA = 1.8  # Bellec et al. 2018: adaptation strength on an adaptation variable that grows by (1 - rho) per spike


@dataclass(frozen=True)
class FloatALIF:
    """Adaptive-threshold LIF (ALIF; Bellec et al., NeurIPS 2018 "LSNN", Nat. Commun. 11:3625, 2020), float.

    Per step t (``I[t]`` the synaptic input current, ``b`` the bias)::

        u[t] = lam * (u[t-1] - v_th * s[t-1]) + I[t] (+ b)      (reset 'zero': u[t-1] -> 0 after a spike)
        a[t] = rho * a[t-1] + s[t-1]                             adaptation, a[0] = 0
        s[t] = H(u[t] - (v_th + beta * a[t]))                    adaptive threshold A[t] = v_th + beta a[t]

    ``lam``: membrane leak (dimensionless, 0..1); ``v_th``: base threshold (weight units); ``rho``:
    adaptation decay per step, ``exp(-1/tau_a)`` (0..1); ``beta``: threshold increase per unit of ``a`` (weight
    units, >= 0; 0 is a plain LIF). The soft reset subtracts the base threshold ``v_th``, as in the e-prop
    paper's Methods. Defaults: ``tau_a = 200`` steps and ``beta = 1.8 (1 - rho)``: the LSNN paper's beta = 1.8 on
    its adaptation variable, which grows by ``(1 - rho)`` per spike where ``a`` here grows by 1 (the same
    threshold). Tasks with long memory often want more: the cue-accumulation examples use beta = 0.1 (spec
    token ``a64b0.1``).
    """

    lam: float = 1.0 - 1.0 / 1.1
    v_th: float = 1.0
    reset: Literal["soft", "zero"] = "soft"
    rho: float = float(np.exp(-1.0 / 200.0))
    beta: float | None = None  # None: 1.8 (1 - rho), the LSNN paper's setting in this form

    def __post_init__(self) -> None:
        FloatLIF(self.lam, self.v_th, self.reset)  # the LIF part's checks
        if not (0.0 <= self.rho <= 1.0):
            raise NetworkError(f"FloatALIF.rho must be in [0, 1], got {self.rho}")
        if self.beta is None:
            object.__setattr__(self, "beta", LSNN_BETA * (1.0 - float(self.rho)))
        if not (0 <= self.beta <= ALIF_BETA_MAX):
            raise NetworkError(f"FloatALIF.beta must be a number in 0..{ALIF_BETA_MAX:g}, got {self.beta}")


Neuron = FloatLIF | FloatALIF | LoihiLIF
NEURON_TYPES = {"FloatLIF": FloatLIF, "FloatALIF": FloatALIF, "LoihiLIF": LoihiLIF}

# Fixed-point synapse ranges (Lava Dense: 8-bit magnitude + sign mode; Loihi weight exponent).
WEIGHT_MIN, WEIGHT_MAX = -256, 255
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7
BIAS_MANT_MIN, BIAS_MANT_MAX = -4096, 4095


# ---------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Dense:
    """Fully connected synapses ``(n_out, n_in)`` driving ``n_out`` LIF neurons.

    ``weight``: (n_out, n_in), float32 or integer; ``bias``: (n_out,) or None (float: added to the input
    current each step; fixed: the bias mantissa); ``weight_exp``: fixed mode only, ``a = (W s) << weight_exp``.
    """

    weight: np.ndarray
    neuron: Neuron = field(default_factory=FloatLIF)
    bias: np.ndarray | None = None
    weight_exp: int = 0
    name: str = ""
    kind = "dense"

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight)
        if self.weight.ndim != 2:
            raise NetworkError(f"Dense.weight must be 2-D (n_out, n_in), got shape {self.weight.shape}")

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    def out_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.n_in,):
            raise NetworkError(f"Dense expects input shape ({self.n_in},), got {in_shape}")
        return (self.n_out,)

    def geometry(self) -> dict:
        return {}


@dataclass(eq=False)
class Recurrent:
    """A recurrent LIF population: input synapses ``weight`` (n_out, n_in) plus recurrent synapses
    ``recurrent`` (n_out, n_out) from the population's own spikes, with a one-step delay.

    Float: ``I[t] = weight @ x[t] + recurrent @ s[t-1]`` enters the neuron equation of ``neuron``
    (:class:`FloatLIF` or :class:`FloatALIF`). Fixed point: a Lava ``LIF`` fed by a ``Dense`` of ``weight``
    and a second ``Dense`` of ``recurrent`` from its own ``s_out`` (``a = (weight x + recurrent s_prev)``
    shifted by ``weight_exp``, one exponent for both synapse sets); the recurrent spike reaches the neurons
    one step after it is sent, as a feed-forward spike reaches the next layer. All-to-all; sparse
    connectivity is zeros in ``recurrent`` (the counters count every stored synapse, as for ``Dense``).
    """

    weight: np.ndarray
    recurrent: np.ndarray
    neuron: Neuron = field(default_factory=FloatLIF)
    bias: np.ndarray | None = None
    weight_exp: int = 0
    name: str = ""
    kind = "recurrent"

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight)
        self.recurrent = np.asarray(self.recurrent)
        if self.weight.ndim != 2:
            raise NetworkError(f"Recurrent.weight must be 2-D (n_out, n_in), got shape {self.weight.shape}")
        n = self.weight.shape[0]
        if self.recurrent.shape != (n, n):
            raise NetworkError(f"Recurrent.recurrent must have shape ({n}, {n}) (n_out, n_out), got "
                               f"{self.recurrent.shape}")

    n_in = Dense.n_in
    n_out = Dense.n_out

    def out_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.n_in,):
            raise NetworkError(f"Recurrent expects input shape ({self.n_in},), got {in_shape}")
        return (self.n_out,)

    def geometry(self) -> dict:
        return {}


@dataclass(eq=False)
class Conv2d:
    """2-D convolution ``weight`` (out_ch, in_ch, kh, kw), cross-correlation as in torch, zero padding.

    One LIF neuron per output element ``(out_ch, H_out, W_out)``; ``bias`` is per output channel.
    """

    weight: np.ndarray
    stride: int = 1
    padding: int = 0
    neuron: Neuron = field(default_factory=FloatLIF)
    bias: np.ndarray | None = None
    weight_exp: int = 0
    name: str = ""
    kind = "conv2d"

    def __post_init__(self) -> None:
        self.weight = np.asarray(self.weight)
        if self.weight.ndim != 4:
            raise NetworkError(f"Conv2d.weight must be 4-D (out_ch, in_ch, kh, kw), got {self.weight.shape}")
        if self.stride < 1 or self.padding < 0:
            raise NetworkError(f"Conv2d needs stride >= 1 and padding >= 0, got {self.stride}, {self.padding}")

    def out_shape(self, in_shape: Shape) -> Shape:
        o, c, kh, kw = self.weight.shape
        if len(in_shape) != 3 or in_shape[0] != c:
            raise NetworkError(f"Conv2d expects input (C={c}, H, W), got {in_shape}")
        h = (in_shape[1] + 2 * self.padding - kh) // self.stride + 1
        w = (in_shape[2] + 2 * self.padding - kw) // self.stride + 1
        if h < 1 or w < 1:
            raise NetworkError(f"Conv2d kernel {kh}x{kw} does not fit input {in_shape} with padding {self.padding}")
        return (o, h, w)

    def geometry(self) -> dict:
        return {"stride": int(self.stride), "padding": int(self.padding)}


@dataclass(eq=False)
class SumPool2d:
    """Channel-wise sum pooling, ``kernel`` x ``kernel`` window, every tap weighted by the scalar ``weight``.

    One LIF neuron per output element ``(C, H_out, W_out)``; no padding.
    """

    kernel: int
    stride: int | None = None
    weight: float = 1.0
    neuron: Neuron = field(default_factory=FloatLIF)
    weight_exp: int = 0
    name: str = ""
    bias = None
    kind = "sumpool2d"

    def __post_init__(self) -> None:
        if self.stride is None:
            self.stride = self.kernel
        if self.kernel < 1 or self.stride < 1:
            raise NetworkError(f"SumPool2d needs kernel >= 1 and stride >= 1, got {self.kernel}, {self.stride}")

    def out_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise NetworkError(f"SumPool2d expects input (C, H, W), got {in_shape}")
        c, h, w = in_shape
        ho, wo = (h - self.kernel) // self.stride + 1, (w - self.kernel) // self.stride + 1
        if ho < 1 or wo < 1:
            raise NetworkError(f"SumPool2d kernel {self.kernel} does not fit input {in_shape}")
        return (c, ho, wo)

    def geometry(self) -> dict:
        return {"kernel": int(self.kernel), "stride": int(self.stride), "weight": float(self.weight)}


@dataclass(eq=False)
class Flatten:
    """Reshape ``(C, H, W)`` to ``(C*H*W,)`` in C order (as ``torch.flatten``); no neurons, no cost."""

    name: str = ""
    neuron = None
    bias = None
    weight_exp = 0
    kind = "flatten"

    def out_shape(self, in_shape: Shape) -> Shape:
        return (int(np.prod(in_shape)),)

    def geometry(self) -> dict:
        return {}


Layer = Dense | Recurrent | Conv2d | SumPool2d | Flatten
LAYER_KINDS = {"dense": Dense, "recurrent": Recurrent, "conv2d": Conv2d, "sumpool2d": SumPool2d, "flatten": Flatten}


def is_recurrent(network: Network) -> bool:
    """True when any layer of ``network`` has recurrent synapses."""
    return any(isinstance(layer, Recurrent) for layer in network.layers)


def has_adaptation(network: Network) -> bool:
    """True when any layer of ``network`` has adaptive-threshold (ALIF) neurons."""
    return any(isinstance(layer.neuron, FloatALIF) for layer in network.layers)


def require_feedforward(network: Network, what: str) -> None:
    """Refuse, in one line naming ``what``, a network with recurrent layers or ALIF neurons, for the parts
    of hwsim that do not handle them yet (so they are never silently run as feed-forward LIF)."""
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Recurrent):
            raise NetworkError(f"{what} does not support recurrent layers yet (layer {i}, {layer.name}); "
                               f"use a feed-forward network")
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"{what} does not support adaptive (ALIF) neurons yet (layer {i}, {layer.name})")


# ---------------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------------
class Network:
    """An input shape and a feed-forward list of layers; validates shapes and numeric form on creation.

    ``timesteps``: the number of time steps the network was trained with, or None (not declared). It is
    metadata (a network runs for any T); the engine uses it to refuse input whose axes look swapped."""

    def __init__(self, input_shape: Shape | int, layers: list[Layer], timesteps: int | None = None):
        self.input_shape: Shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        self.layers: list[Layer] = list(layers)
        if timesteps is not None and (not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1):
            raise NetworkError(f"timesteps must be a positive integer or None, got {timesteps!r}")
        self.timesteps: int | None = timesteps
        if not self.layers:
            raise NetworkError("a network needs at least one layer")
        self.shapes: list[Shape] = [self.input_shape]
        for i, layer in enumerate(self.layers):
            if not layer.name:
                layer.name = f"{layer.kind}{i}"
            self.shapes.append(layer.out_shape(self.shapes[-1]))
        modes = {_mode_of(layer.neuron) for layer in self.layers if layer.neuron is not None}
        if len(modes) != 1:
            raise NetworkError("a network mixes float (FloatLIF/FloatALIF) and LoihiLIF neurons; use one "
                               "numeric form")
        for i, layer in enumerate(self.layers):
            if isinstance(layer.neuron, FloatALIF) and not isinstance(layer, (Dense, Recurrent)):
                raise NetworkError(f"layer {i} ({layer.name}): adaptive (ALIF) neurons are supported in dense "
                                   f"and recurrent layers only, not {layer.kind}")
        self.mode: Mode = modes.pop()
        for i, layer in enumerate(self.layers):
            _check_tensors(layer, i, self.mode)

    @property
    def output_shape(self) -> Shape:
        return self.shapes[-1]

    def layer_shapes(self) -> list[tuple[Shape, Shape]]:
        """(input shape, output shape) of every layer."""
        return list(zip(self.shapes[:-1], self.shapes[1:]))

    def describe(self) -> dict:
        """JSON-ready description (everything but the tensors)."""
        layers = []
        for layer in self.layers:
            entry = {"kind": layer.kind, "name": layer.name, **layer.geometry()}
            if layer.neuron is not None:
                entry["neuron"] = {"type": type(layer.neuron).__name__, **asdict(layer.neuron)}
                entry["weight_exp"] = int(layer.weight_exp)
            layers.append(entry)
        desc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "mode": self.mode,
                "input_shape": list(self.input_shape), "layers": layers}
        if self.timesteps is not None:
            desc["timesteps"] = self.timesteps
        return desc

    def __repr__(self) -> str:
        parts = " -> ".join(f"{layer.name}{list(s)}" for layer, s in zip(self.layers, self.shapes[1:]))
        return f"Network[{self.mode}]({list(self.input_shape)} -> {parts})"


def _mode_of(neuron: Neuron) -> Mode:
    return "fixed" if isinstance(neuron, LoihiLIF) else "float"


def _check_tensors(layer: Layer, index: int, mode: Mode) -> None:
    where = f"layer {index} ({layer.name})"
    if isinstance(layer, Recurrent):
        layer.recurrent = _check_weights(layer.recurrent, f"{where} recurrent", mode)
    if isinstance(layer, (Dense, Recurrent, Conv2d)):
        layer.weight = _check_weights(layer.weight, f"{where} weight", mode)
        n_bias = layer.weight.shape[0]
        if layer.bias is not None:
            layer.bias = np.asarray(layer.bias)
            if layer.bias.shape != (n_bias,):
                raise NetworkError(f"{where}: bias must have shape ({n_bias},), got {layer.bias.shape}")
            if mode == "float":
                if layer.bias.dtype.kind not in "biuf" or not np.all(np.isfinite(layer.bias)):
                    raise NetworkError(f"{where}: bias must be finite real numbers")
                layer.bias = layer.bias.astype(np.float32, copy=False)
            else:
                layer.bias = _as_int(layer.bias, f"{where} bias")
                if layer.bias.min() < BIAS_MANT_MIN or layer.bias.max() > BIAS_MANT_MAX:
                    raise NetworkError(f"{where}: bias mantissa must be in {BIAS_MANT_MIN}..{BIAS_MANT_MAX}")
    if isinstance(layer, SumPool2d) and mode == "fixed":
        if int(layer.weight) != layer.weight or not WEIGHT_MIN <= layer.weight <= WEIGHT_MAX:
            raise NetworkError(f"{where}: fixed-point pool weight must be an integer in -256..255")
    if mode == "fixed" and layer.neuron is not None:
        if int(layer.weight_exp) != layer.weight_exp or not WEIGHT_EXP_MIN <= layer.weight_exp <= WEIGHT_EXP_MAX:
            raise NetworkError(f"{where}: weight_exp must be an integer in {WEIGHT_EXP_MIN}..{WEIGHT_EXP_MAX}, "
                               f"got {layer.weight_exp!r}")


def _check_weights(weight: np.ndarray, what: str, mode: Mode) -> np.ndarray:
    """``weight`` as float32 (float mode, finite) or int32 within Loihi's 8-bit-plus-sign range (fixed)."""
    if mode == "float":
        if weight.dtype.kind not in "biuf":
            raise NetworkError(f"{what}: weights must be real numbers, got {weight.dtype}")
        lo, hi = weight.min(initial=0), weight.max(initial=0)  # NaN propagates into both; no full-size temporary
        if not -FLOAT_WEIGHT_MAX <= lo <= hi <= FLOAT_WEIGHT_MAX:
            raise NetworkError(f"{what}: weights must be finite, at most {FLOAT_WEIGHT_MAX:g} in magnitude")
        return weight.astype(np.float32, copy=False)
    weight = _as_int(weight, what)
    lo, hi = int(weight.min(initial=0)), int(weight.max(initial=0))
    inhibitory_only = hi <= 0 and lo < 0
    if lo < WEIGHT_MIN or hi > WEIGHT_MAX or (inhibitory_only and lo < -255):
        raise NetworkError(f"{what}: fixed-point weights must fit 8 bits plus sign "
                           f"({WEIGHT_MIN}..{WEIGHT_MAX}; -255..0 when all are inhibitory), got {lo}..{hi}")
    return weight


def _as_int(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int32, copy=False)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return values.astype(np.int32)
    raise NetworkError(f"{what}: fixed-point values must be integers, got dtype {values.dtype}")


# ---------------------------------------------------------------------------------------------------------
# Spec strings
# ---------------------------------------------------------------------------------------------------------
_TOKEN_HELP = ("N (dense), rN (recurrent LIF), aN[bBETA][tTAU_A] (recurrent adaptive ALIF, float only), "
               "cO[kK][sS][pP] (conv: O channels, kernel K=3, stride S=1, padding P=0), pK[sS] (sum pool), "
               "or f (flatten)")
_RECURRENT = re.compile(r"^([ra])(\d+)(?:b(\d+(?:\.\d+)?))?(?:t(\d+(?:\.\d+)?))?$", re.ASCII)
RECURRENT_GAIN = 1.0  # recurrent weights ~ N(0, (RECURRENT_GAIN / sqrt(n))^2), no self-connections
_CONV = re.compile(r"^c(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?$", re.ASCII)  # ASCII digits only ("²" is no size)
_POOL = re.compile(r"^p(\d+)(?:s(\d+))?$", re.ASCII)
_SHAPE = re.compile(r"^\d+(x\d+x\d+)?$", re.ASCII)


def from_spec(spec: str, mode: Mode = "float", seed: int = 0, gain: float = 3.0) -> Network:
    """Build a randomly initialised network from a compact spec string.

    ``784-512-10`` is an MLP; ``1x28x28-c8k3p1-p2-c16k3p1-p2-10`` a conv net (a Flatten is inserted before
    the first dense layer after a spatial one); ``40-r256-16`` a recurrent net (``rN``: N recurrent LIF
    neurons; ``aN``: N recurrent ALIF neurons, float only). Recurrent weights are
    N(0, (1 / sqrt(N))^2) with no self-connections (zero diagonal). Float weights are
    N(0, (gain / sqrt(fan_in))^2) with the SLTT neuron (lam = 1 - 1/1.1, v_th = 1, soft reset); fixed weights
    are the same draw scaled to integers (x 64, clipped to -254..254, even values, so they are exact in every
    Lava sign mode) with
    ``LoihiLIF(du=4095, dv=3724, vth=64)``, the quantised counterpart of the float neuron.

    Sizes are checked before anything is allocated: the spec is first walked without weights (shapes only), its
    weights counted against :data:`MAX_LAYER_WEIGHTS` per layer and their bytes against the memory limit
    (:func:`hwsim.safeio.check_memory`); then the weights are drawn.
    """
    size = spec_size(spec, mode)
    from hwsim.safeio import check_memory

    check_memory(size.weight_bytes, f"network {_shown(spec)}", f"{size.weights} weights of {size.layers} layers")
    rng = np.random.default_rng(seed)
    input_shape, layers = _walk(spec, mode, lambda shape, fan_in, g, order, zero_diagonal=False: _init(
        rng, shape, fan_in, g, mode, order, zero_diagonal), gain)
    return Network(input_shape, layers)


@dataclass(frozen=True)
class SpecSize:
    """What a spec string builds, counted without building it: ``weights`` (synapses stored, all layers),
    ``weight_bytes`` (their bytes: 4 each, float32 or int32), ``neurons`` (LIF neurons, all layers), ``layers``,
    ``input_size`` (input neurons) and ``widest`` (neurons of the widest layer)."""

    weights: int
    weight_bytes: int
    neurons: int
    layers: int
    input_size: int
    widest: int


def spec_size(spec: str, mode: Mode = "float") -> SpecSize:
    """Count what :func:`from_spec` would build (every shape and grammar check of it, one line each) without
    allocating a single weight: time and memory independent of the sizes the spec names."""
    if mode not in MODES:
        raise NetworkError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    shapes: list[Shape] = []

    def count(shape, fan_in, g, order, zero_diagonal=False):
        weights = math.prod(shape)
        if weights > MAX_LAYER_WEIGHTS:  # checked before anything is allocated
            raise NetworkError(f"a layer of shape {short(shape, 60)} has {weights} weights, over the limit of "
                               f"{MAX_LAYER_WEIGHTS} per layer")
        shapes.append(shape)
        return np.broadcast_to(np.zeros((), np.float32 if mode == "float" else np.int32), shape)  # no memory

    input_shape, layers = _walk(spec, mode, count, 1.0)
    weights = sum(math.prod(shape) for shape in shapes)
    neurons, shape = [], input_shape
    for layer in layers:
        shape = layer.out_shape(shape)
        if layer.neuron is not None:
            neurons.append(math.prod(shape))
    return SpecSize(weights, 4 * weights, sum(neurons), len(layers), math.prod(input_shape), max(neurons, default=0))


def _shown(spec: object) -> str:
    """A spec string in a message: bounded (a configuration may hold megabytes of it) and printable."""
    return short(str(spec), 80)


def _walk(spec: str, mode: Mode, draw, gain: float) -> tuple[Shape, list[Layer]]:
    """Parse ``spec`` into its input shape and layers, drawing each weight tensor with
    ``draw(shape, fan_in, gain, order, zero_diagonal=False)`` in a fixed order (the same order whatever ``draw``
    does, so counting and building walk the same way)."""
    if mode not in MODES:
        raise NetworkError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    text = str(spec)
    if text.count("-") > MAX_LAYERS:
        raise NetworkError(f"network spec {_shown(text)}: {text.count('-')} layers, over the limit of {MAX_LAYERS} "
                           f"layers")
    tokens = [t.strip().lower() for t in text.split("-")]
    if len(tokens) < 2 or not _SHAPE.match(tokens[0]):
        raise NetworkError(f"malformed network spec {_shown(spec)}: expected INPUT-LAYER[-LAYER...], INPUT as N or "
                           f"CxHxW (e.g. 784-512-10 or 1x28x28-c8k3-p2-10)")
    input_shape: Shape = tuple(int(x) for x in tokens[0].split("x"))
    if min(input_shape) < 1:
        raise NetworkError(f"malformed network spec {_shown(spec)}: input sizes must be >= 1")
    neuron: Neuron = FloatLIF() if mode == "float" else LoihiLIF(du=4095, dv=3724, vth=64)
    layers: list[Layer] = []
    shape = input_shape
    for position, token in enumerate(tokens[1:], start=1):
        shown = short(token, 40)
        if (conv := _CONV.match(token)) is not None:
            out_ch, k, s, p = (int(g) if g is not None else d for g, d in zip(conv.groups(), (0, 3, 1, 0)))
            if len(shape) != 3 or min(out_ch, k, s) < 1:
                raise NetworkError(f"malformed network spec {_shown(spec)}: conv token {shown} at position "
                                   f"{position} needs a CxHxW input and sizes >= 1")
            w = draw((out_ch, shape[0], k, k), shape[0] * k * k, gain, "C")
            layer: Layer = Conv2d(w, stride=s, padding=p, neuron=neuron, weight_exp=_wexp(mode))
        elif (pool := _POOL.match(token)) is not None:
            k = int(pool.group(1))
            s = int(pool.group(2)) if pool.group(2) else k
            if len(shape) != 3 or k < 1 or s < 1:
                raise NetworkError(f"malformed network spec {_shown(spec)}: pool token {shown} at position "
                                   f"{position} needs a CxHxW input and sizes >= 1")
            pool_w = 1.0 / (k * k) * 2.0 if mode == "float" else 64
            layer = SumPool2d(k, s, weight=pool_w, neuron=neuron, weight_exp=_wexp(mode))
        elif (rec := _RECURRENT.match(token)) is not None:
            n = int(rec.group(2))
            if n < 1:
                raise NetworkError(f"malformed network spec {_shown(spec)}: recurrent token {shown} at position "
                                   f"{position} needs N >= 1")
            if len(shape) != 1:
                layers.append(Flatten())
                shape = layers[-1].out_shape(shape)
            if rec.group(1) == "r" and (rec.group(3) or rec.group(4)):
                raise NetworkError(f"malformed network spec {_shown(spec)}: token {shown}: b (adaptation strength) "
                                   f"and t (adaptation time constant) belong to adaptive layers: aN[bBETA][tTAU_A]")
            if rec.group(1) == "a" and mode != "float":
                raise NetworkError(f"malformed network spec {_shown(spec)}: token {shown}: adaptive (ALIF) neurons "
                                   f"exist in float mode only (pass --mode float); use rN for a fixed-point "
                                   f"recurrent layer")
            w = draw((n, shape[0]), shape[0], gain, "F")
            w_rec = draw((n, n), n, RECURRENT_GAIN, "F", zero_diagonal=True)
            layer_neuron = _alif_of(rec, neuron, spec, shown) if rec.group(1) == "a" else neuron
            layer = Recurrent(w, w_rec, neuron=layer_neuron, weight_exp=_wexp(mode))
        elif token == "f":
            layer = Flatten()
        elif token.isascii() and token.isdigit() and int(token) >= 1:
            if len(shape) != 1:
                layers.append(Flatten())
                shape = layers[-1].out_shape(shape)
            w = draw((int(token), shape[0]), shape[0], gain, "F")
            layer = Dense(w, neuron=neuron, weight_exp=_wexp(mode))
        else:
            raise NetworkError(f"malformed network spec {_shown(spec)}: token {shown} at position {position} is "
                               f"not a layer; expected {_TOKEN_HELP}")
        try:
            shape = layer.out_shape(shape)
        except NetworkError as err:
            raise NetworkError(f"malformed network spec {_shown(spec)}: token {shown}: {err}") from None
        layers.append(layer)
    return input_shape, layers


def _alif_of(rec: re.Match, neuron: Neuron, spec: str, shown: str) -> FloatALIF:
    """The ALIF of a spec token ``aN[bBETA][tTAU_A]`` (BETA: adaptation strength, TAU_A: adaptation time
    constant in steps, rho = exp(-1/TAU_A)); the membrane of the spec's LIF."""
    beta = None if rec.group(3) is None else float(rec.group(3))
    tau_a = 200.0 if rec.group(4) is None else float(rec.group(4))
    if not 0 < tau_a < math.inf:
        raise NetworkError(f"malformed network spec {_shown(spec)}: token {shown}: the adaptation time constant "
                           f"t must be a finite number of steps > 0")
    return FloatALIF(lam=neuron.lam, rho=float(np.exp(-1.0 / tau_a)), beta=beta)


def _wexp(mode: Mode) -> int:
    return 0 if mode == "float" else -1


DRAW_CHUNK = 1 << 19  # values per random draw: bounds the float64 temporary of from_spec at 4 MB


def _init(rng: np.random.Generator, shape: Shape, fan_in: int, gain: float, mode: Mode,
          order: Literal["C", "F"] = "C", zero_diagonal: bool = False) -> np.ndarray:
    """N(0, (gain / sqrt(fan_in))^2) weights of ``shape``, drawn in C order in chunks of whole rows of the
    first axis (the same values as one draw of the whole tensor, without its float64 copy) and stored
    in ``order`` (dense layers: ``F``, so the engine's fan-out-major view of them needs no copy);
    ``zero_diagonal``: a square matrix without self-connections."""
    if math.prod(shape) > MAX_LAYER_WEIGHTS:  # checked before anything is allocated
        raise NetworkError(f"a layer of shape {short(shape, 60)} has {math.prod(shape)} weights, over the "
                           f"limit of {MAX_LAYER_WEIGHTS} per layer")
    scale = gain / np.sqrt(fan_in)
    out = np.empty(shape, np.float32 if mode == "float" else np.int32, order=order)
    rows = out.reshape(shape[0], -1) if order == "C" else out
    per_row = int(np.prod(shape[1:]))
    step = max(1, DRAW_CHUNK // max(per_row, 1))
    for r0 in range(0, shape[0], step):
        r1 = min(shape[0], r0 + step)
        w = rng.normal(0.0, scale, size=(r1 - r0, per_row))
        if mode == "fixed":
            # Integer weights w_int exported as 2*w_int with weight_exp -1 (exact in every Lava sign mode).
            w = 2 * np.clip(np.round(w * 64), -127, 127)
        rows[r0:r1] = w
        del w  # free this chunk before the next draw
    if zero_diagonal:
        np.fill_diagonal(out, 0)
    return out


# ---------------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------------
def save(network: Network, path: str | Path) -> Path:
    """Write ``network`` to ``path`` (``.npz``; format in the module docstring). Returns the path."""
    path = Path(path)
    arrays = {"__network__": np.frombuffer(json.dumps(network.describe()).encode(), dtype=np.uint8)}
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Recurrent):
            arrays[f"layers.{i}.recurrent"] = layer.recurrent
        if isinstance(layer, (Dense, Recurrent, Conv2d)):
            arrays[f"layers.{i}.weight"] = layer.weight
            if layer.bias is not None:
                arrays[f"layers.{i}.bias"] = layer.bias
    import io

    from hwsim.safeio import atomic_path

    buffer = io.BytesIO()  # built in memory: a failed disk write cannot leave numpy's zip writer half open
    np.savez(buffer, **arrays)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # never a half-written file at ``path``
        handle.write(buffer.getbuffer())
    return path


def load(path: str | Path) -> Network:
    """Read a network written by :func:`save`; errors name the file and the field that is wrong.

    Nothing large is allocated before it is checked: the description first (at most
    :data:`MAX_DESCRIPTION_BYTES`, :data:`MAX_LAYERS` layers), then the headers of the tensors it names (shape and
    dtype of each, no data read), whose bytes -- with the float32/int32 copies and checks :class:`Network` makes --
    must fit :data:`MAX_FILE_BYTES` and the memory limit (:func:`hwsim.safeio.check_memory`); only then are those
    members read. Members the description does not name are never read."""
    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such network file")
    from hwsim.safeio import NpzError, array_bytes, check_memory, npz_headers, read_npz

    what = "hwsim network file (.npz)"
    try:  # only the expected members, each checked (no complex, no objects) and size-limited before reading
        arrays = read_npz(path, lambda name: name == "__network__", MAX_DESCRIPTION_BYTES, kinds="u", what=what)
        if "__network__" not in arrays:
            raise NetworkError(f"{path}: missing '__network__' description; not an hwsim network file")
    except NpzError as err:
        raise NetworkError(f"{path}: {err}") from None
    desc = _description(path, arrays.pop("__network__"))
    names = _tensor_names(path, desc)
    try:
        headers = npz_headers(path, names.__contains__, what=what)
        raw = sum(array_bytes(shape, dtype) for shape, dtype in headers.values())
        elements = sum(math.prod(shape) for shape, _ in headers.values())
        if raw > MAX_FILE_BYTES:
            raise NetworkError(f"{path}: its tensors hold {raw} bytes of data, over the limit of {MAX_FILE_BYTES} "
                               f"bytes for one network file")
        # the data, their float32/int32 copies, and the boolean masks of the finiteness checks
        check_memory(raw + 5 * elements, f"network file {path}", f"{len(headers)} tensors, {elements} values")
        arrays = read_npz(path, names.__contains__, MAX_FILE_BYTES, what=what)
    except NpzError as err:
        raise NetworkError(f"{path}: {err}") from None
    try:
        layers = [_layer_from(entry, i, arrays) for i, entry in enumerate(desc["layers"])]
        return Network(tuple(desc["input_shape"]), layers, timesteps=desc.get("timesteps"))
    except KeyError as err:
        raise NetworkError(f"{path}: missing field {short(err.args[0] if err.args else err, 60)}") from None
    except (NetworkError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as err:
        raise NetworkError(f"{path}: {short_text(err)}") from None


def short_text(err: BaseException, limit: int = 300) -> str:
    """An exception's message for a one-line error: bounded and printable."""
    from hwsim.errors import one_line

    return one_line(str(err), limit)


def _description(path: Path, data: np.ndarray) -> dict:
    """The JSON description of a network file, checked to be an hwsim network of at most :data:`MAX_LAYERS`."""
    try:
        desc = json.loads(data.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise NetworkError(f"{path}: '__network__' is not valid JSON: {short_text(err, 200)}") from None
    if not isinstance(desc, dict):
        raise NetworkError(f"{path}: '__network__' is not a JSON object; not an hwsim network file")
    if desc.get("format") != FORMAT_NAME or desc.get("version") != FORMAT_VERSION:
        raise NetworkError(f"{path}: expected format {FORMAT_NAME} version {FORMAT_VERSION}, got "
                           f"{short(desc.get('format'))} version {short(desc.get('version'))}")
    layers = desc.get("layers")
    if not isinstance(layers, list) or not all(isinstance(entry, dict) for entry in layers):
        raise NetworkError(f"{path}: field 'layers' must be a list of layer objects")
    if len(layers) > MAX_LAYERS:
        raise NetworkError(f"{path}: {len(layers)} layers, over the limit of {MAX_LAYERS} layers")
    return desc


def _tensor_names(path: Path, desc: dict) -> set[str]:
    """The members the description names: weight, bias (and recurrent) of every layer that has synapses."""
    names = set()
    for i, entry in enumerate(desc["layers"]):
        if entry.get("kind") in ("dense", "recurrent", "conv2d"):
            names |= {f"layers.{i}.weight", f"layers.{i}.bias"}
            if entry.get("kind") == "recurrent":
                names.add(f"layers.{i}.recurrent")
    return names


MAX_NAME_CHARS = 200  # a layer name read from a file


def _layer_from(entry: dict, i: int, arrays: dict[str, np.ndarray]) -> Layer:
    kind = entry["kind"]
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        raise NetworkError(f"layers[{i}].kind {short(kind, 40)} unknown; expected one of {', '.join(LAYER_KINDS)}")
    name = entry["name"]
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise NetworkError(f"layers[{i}].name must be a text of at most {MAX_NAME_CHARS} characters, got "
                           f"{short(name, 60)}")
    if kind == "flatten":
        return Flatten(name=entry["name"])
    params = dict(entry["neuron"])
    neuron_type = params.pop("type")
    if not isinstance(neuron_type, str) or neuron_type not in NEURON_TYPES:
        raise NetworkError(f"layers[{i}].neuron.type {short(neuron_type, 40)} unknown; expected one of "
                           f"{', '.join(NEURON_TYPES)}")
    neuron = NEURON_TYPES[neuron_type](**params)
    common = {"neuron": neuron, "weight_exp": entry["weight_exp"], "name": entry["name"]}
    if kind == "sumpool2d":
        return SumPool2d(entry["kernel"], entry["stride"], weight=entry["weight"], **common)
    weight_key = f"layers.{i}.weight"
    if weight_key not in arrays:
        raise NetworkError(f"missing array {weight_key!r}")
    bias = arrays.get(f"layers.{i}.bias")
    if kind == "dense":
        return Dense(arrays[weight_key], bias=bias, **common)
    if kind == "recurrent":
        if f"layers.{i}.recurrent" not in arrays:
            raise NetworkError(f"missing array 'layers.{i}.recurrent'")
        return Recurrent(arrays[weight_key], arrays[f"layers.{i}.recurrent"], bias=bias, **common)
    return Conv2d(arrays[weight_key], stride=entry["stride"], padding=entry["padding"], bias=bias, **common)
