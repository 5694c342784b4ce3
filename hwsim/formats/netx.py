"""netx HDF5 (``model.net``) out and in, in the layout lava-dl 0.6.0's ``netx.hdf5.Network`` reads (its source,
``lava/lib/dl/netx/hdf5.py``, is the ground truth; the tests load every export with the real netx).

Layout: ``/layer/<i>/`` from i = 0: first ``type = input`` with ``shape`` (the network input); then per layer
``type`` (``flatten``, ``dense``, ``dense_rec`` or ``conv``), ``shape`` (output, channels first ``(C, H, W)`` or
``(n,)``; netx reverses it to Lava's ``(W, H, C)``), ``weight`` (integers as Lava adds them per spike: hwsim
weights times ``2**weight_exp``; dense ``(n_out, n_in)``, conv ``(out, in, kh, kw)`` cross-correlation as in torch),
``bias`` (per neuron or per channel, as netx's LIF ``bias_mant`` with its fixed ``bias_exp = 6``, so it is
hwsim's ``(bias_mant << bias_exp) / 64``), conv ``stride``, ``padding``, ``dilation = 1``, ``groups = 1``, and
``neuron/{type: CUBA, iDecay = du + 1, vDecay = dv, vThMant = vth, refDelay = 1, gradedSpike = 0}``.
netx 0.6.0 does not implement ``pool`` layers, so sum pooling is written as a channel-diagonal ``conv``. A
recurrent layer is netx's ``dense_rec``: ``weight`` and ``weight_rec`` (n_out, n_out), both as Lava adds them per
spike; netx fits one weight exponent to both (``optimize_weight_bits`` of the two side by side) and builds its
``RecurrentDense`` block: the LIF fed by a ``Dense`` of ``weight`` and a ``Dense`` of ``weight_rec`` from the
LIF's own ``s_out``, as hwsim's Lava export.
Values netx cannot hold exactly (a bias not a multiple of 64 in Lava's units, a weight exponent that does not
divide the weights) are refused with the layer named, never rounded.

:func:`read` takes such files back into a fixed-point :class:`Network`, and the files lava-dl's slayer writes
(``block.export_hdf5``) as netx reads them: no ``input`` layer (the input shape from the first dense layer's
``inFeatures``, as netx takes it from its weights), slayer's ``Pool`` block (``kernelSize``, a (1, 1, k, k)
weight of equal taps; netx 0.6.0 cannot run it), weights read with ``astype(int)`` and mixed-sign dense weights
beyond Loihi's synapse clipped to -256..254 with a warning, as netx's ``optimize_weight_bits`` does. Refused in
one line, never ignored: synaptic ``delay`` values that floor above 0 (hwsim's network has no delays),
``neuron/messageBits`` > 0 (graded spikes), other neuron types (SDNN, RF, ...) and layer types (``average``,
``concat``, ...), an input layer with its own neurons.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from hwsim.errors import UsageError, printable
from hwsim.sim.network import (
    MAX_LAYERS,
    Conv2d,
    Dense,
    Flatten,
    FloatALIF,
    Layer,
    LoihiLIF,
    Network,
    NetworkError,
    Recurrent,
    SumPool2d,
)


def _shifted(weight: np.ndarray, exp: int, where: str) -> np.ndarray:
    w = np.asarray(weight, np.int64)
    if exp >= 0:
        return w << exp
    if np.any(w % (1 << -exp)):
        raise NetworkError(f"{where}: weights are not multiples of 2**{-exp}; Lava's per-spike input "
                           f"(w * 2**weight_exp) is not an integer, netx cannot hold it")
    return w >> -exp


def write(network: Network, path: str | Path) -> Path:
    """Write a fixed-point ``network`` as netx HDF5; :class:`NetworkError` names a layer netx cannot hold. The file is
    built in memory and written atomically: a full disk is one :class:`~hwsim.errors.WriteError` line naming
    ``path``, which keeps its old content."""
    import h5py

    from hwsim.formats.bounds import hdf5_image
    from hwsim.safeio import atomic_write

    for i, layer in enumerate(network.layers):
        if isinstance(layer.neuron, FloatALIF):
            raise NetworkError(f"layer {i} ({layer.name}): adaptive-threshold (ALIF) neurons have no netx (CUBA) "
                               f"form; not exported")
    if network.mode != "fixed":
        raise NetworkError("netx export takes a fixed-point network; quantise the float network first")
    groups = [{"type": "input", "shape": np.array(network.input_shape, np.int64)}]
    for i, (layer, (in_shape, out_shape)) in enumerate(zip(network.layers, network.layer_shapes())):
        where = f"layer {i} ({layer.name})"
        if isinstance(layer, Flatten):
            groups.append({"type": "flatten", "shape": np.array(out_shape, np.int64)})
            continue
        neuron: LoihiLIF = layer.neuron
        entry = {"shape": np.array(out_shape, np.int64)}
        if isinstance(layer, (Dense, Recurrent)):
            from hwsim.sim.engine import lava_effective_weights

            entry.update(type="dense", weight=_shifted(lava_effective_weights(layer.weight), layer.weight_exp, where))
            if isinstance(layer, Recurrent):
                entry.update(type="dense_rec", weight_rec=_shifted(lava_effective_weights(layer.recurrent),
                                                                   layer.weight_exp, f"{where} recurrent"))
        else:
            if isinstance(layer, Conv2d):
                weight, padding = layer.weight, layer.padding
            else:
                c = in_shape[0]
                weight = np.zeros((c, c, layer.kernel, layer.kernel), np.int64)
                weight[np.arange(c), np.arange(c)] = int(layer.weight)
                padding = 0
            entry.update(type="conv", weight=_shifted(weight, layer.weight_exp, where), stride=int(layer.stride),
                         padding=int(padding), dilation=1, groups=1)
        if layer.bias is not None:
            effective = layer.bias.astype(np.int64) << neuron.bias_exp
            if np.any(effective % 64):
                raise NetworkError(f"{where}: bias mantissa << bias_exp = {int(effective[effective % 64 != 0][0])} "
                                   f"is not a multiple of 64; netx fixes bias_exp = 6, so this bias has no exact "
                                   f"netx form")
            entry["bias"] = effective >> 6
        entry["neuron"] = {"type": "CUBA", "iDecay": neuron.du + 1, "vDecay": neuron.dv, "vThMant": neuron.vth,
                           "refDelay": 1, "gradedSpike": 0}
        groups.append(entry)
    path = Path(path)

    def build(buffer) -> None:
        with h5py.File(buffer, "w") as f:
            for index, entry in enumerate(groups):
                group = f.create_group(f"layer/{index}")
                for key, value in entry.items():
                    if key == "neuron":
                        sub = group.create_group("neuron")
                        for name, item in value.items():
                            sub[name] = np.bytes_(item) if isinstance(item, str) else item
                    else:
                        group[key] = np.bytes_(value) if isinstance(value, str) else value

    # built in memory, written by Python (hwsim.formats.bounds): a full disk never reaches HDF5
    atomic_write(path, hdf5_image(build))
    return path


# ---------------------------------------------------------------------------------------------------------
# In
# ---------------------------------------------------------------------------------------------------------
def _text(value) -> str:
    value = np.asarray(value).ravel()[0] if np.asarray(value).ndim else np.asarray(value)[()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _dense_weights(w: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """Integer per-spike inputs -> (hwsim weights, weight_exp) that hwsim (and Lava's Dense) apply exactly."""
    w = np.asarray(w, np.int64)
    mixed = w.min(initial=0) < 0 < w.max(initial=0)
    for k in range(0, 8):
        if np.any(w % (1 << k)):
            break
        m = w >> k
        if mixed and -128 <= m.min() and m.max() <= 127:
            return (2 * m).astype(np.int32), k - 1
        if not mixed and -255 <= m.min() and m.max() <= 255:
            return m.astype(np.int32), k
    raise NetworkError(f"{where}: dense weights {int(w.min())}..{int(w.max())} do not fit Loihi's 8-bit weights "
                       f"with a weight exponent")


def _conv_weights(w: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    w = np.asarray(w, np.int64)
    for k in range(0, 8):
        if np.any(w % (1 << k)):
            break
        m = w >> k
        if -256 <= m.min() and m.max() <= 255:
            return m.astype(np.int32), k
    raise NetworkError(f"{where}: conv weights {int(w.min())}..{int(w.max())} do not fit 9-bit signed weights with "
                       f"a weight exponent")


def _scalar(group, key: str, where: str, default=None) -> int:
    if key not in group:
        if default is None:
            raise NetworkError(f"{where}: missing '{key}'")
        return default
    values = np.atleast_1d(group[key][()]).astype(np.int64)
    if values.size > 1 and np.any(values != values[0]):
        raise NetworkError(f"{where}: {key} = {values.tolist()}; hwsim takes the same value on both axes")
    return int(values[0])


def read(path: str | Path) -> Network:
    """A fixed-point :class:`Network` from a netx HDF5 file of CUBA ``dense``/``conv``/``pool`` layers. Sizes are
    checked before anything is read (:mod:`hwsim.formats.bounds`: the datasets' declared shapes, then the inputs and
    neurons the layers declare) against the memory limit (:class:`~hwsim.errors.TooLarge`, naming the file)."""
    import h5py

    from hwsim.formats.bounds import NETX_BYTES_PER_VALUE, check_network_memory, checked_hdf5

    path = Path(path)
    if not path.is_file():
        raise NetworkError(f"{path}: no such netx file")
    try:
        with checked_hdf5(path, "netx HDF5 file", NETX_BYTES_PER_VALUE) as handle, h5py.File(handle, "r") as f:
            network = _read(f)
        check_network_memory(network, f"netx HDF5 file {path}")
        return network
    except UsageError:  # TooLarge (naming the file) or a bad HWSIM_MAX_MEMORY
        raise
    except NetworkError as err:
        raise NetworkError(f"{path}: {err}") from None
    except OSError as err:
        raise NetworkError(f"{path}: cannot read the netx file ({err.strerror or type(err).__name__})") from None
    except (KeyError, ValueError, TypeError, IndexError, OverflowError) as err:
        raise NetworkError(f"{path}: malformed netx layer ({type(err).__name__}: {printable(str(err), 200)})") \
            from None


def _read(f) -> Network:
    if "layer" not in f:
        raise NetworkError("no '/layer' group; not a netx network")
    if len(f["layer"]) > MAX_LAYERS:
        raise NetworkError(f"{len(f['layer'])} layers, over the limit of {MAX_LAYERS} layers")
    keys = sorted(f["layer"].keys(), key=lambda k: int(k) if k.isdecimal() and len(k) < 12 else -1)
    input_shape: tuple[int, ...] | None = None
    layers: list[Layer] = []
    shape = None
    for key in keys:
        group, where = f["layer"][key], f"layer {key}"
        kind = _text(group["type"][()])
        if kind == "input":
            if "neuron" in group:
                raise NetworkError(f"{where}: an input layer with its own neurons is not supported")
            input_shape = shape = tuple(int(s) for s in np.atleast_1d(group["shape"][()]))
            continue
        if kind == "flatten":
            layers.append(Flatten())
            shape = (int(np.prod(shape)),) if shape else None
            continue
        if kind not in ("dense", "dense_rec", "conv", "pool"):
            raise NetworkError(f"{where}: layer type {kind!r} is not supported; hwsim reads input, flatten, dense, "
                               f"dense_rec, conv and pool")
        _refuse_delays_and_graded_spikes(group, kind, where)
        if shape is None:  # no input layer: netx takes the input from the first layer (a dense one's inFeatures)
            input_shape = shape = _input_from_first_layer(group, kind, where)
        neuron, bias = _neuron(group, where)
        if kind in ("dense", "dense_rec"):
            if len(shape) > 1:
                layers.append(Flatten())
                shape = (int(np.prod(shape)),)
            layer: Layer = _dense_layer(group, kind, neuron, bias, where)
        elif kind == "conv":
            weight = np.asarray(group["weight"][()]).astype(np.int64)  # netx reads weights with astype(int)
            weight = weight.reshape(weight.shape[:4])
            if _scalar(group, "dilation", where, 1) != 1 or _scalar(group, "groups", where, 1) != 1:
                raise NetworkError(f"{where}: dilated or grouped convolutions are not supported")
            stride, padding = _scalar(group, "stride", where, 1), _scalar(group, "padding", where, 0)
            layer = _pool_or_conv(weight, stride, padding, neuron, bias, where)
        else:
            layer = _pool(group, neuron, bias, shape, where)
        try:
            shape = layer.out_shape(shape)
        except NetworkError as err:
            raise NetworkError(f"{where}: {err}") from None
        layers.append(layer)
    if input_shape is None:
        raise NetworkError("no 'input' layer and no dense layer to take the network's input shape from")
    cleaned = [layer for i, layer in enumerate(layers)
               if not (isinstance(layer, Flatten) and i + 1 < len(layers) and isinstance(layers[i + 1], Flatten))]
    return Network(input_shape, cleaned)


def _dense_layer(group, kind: str, neuron: LoihiLIF, bias, where: str) -> Layer:
    """A ``dense`` layer, or a ``dense_rec`` one (``weight_rec`` (n_out, n_out), one weight exponent for both, as
    netx fits it to the two side by side)."""
    out_n = int(np.prod(np.atleast_1d(group["shape"][()])))
    weight = np.asarray(group["weight"][()]).reshape(out_n, -1)
    if kind == "dense_rec":
        if "weight_rec" not in group:
            raise NetworkError(f"{where}: a dense_rec layer without 'weight_rec'")
        recurrent = np.asarray(group["weight_rec"][()]).reshape(out_n, -1)
        if recurrent.shape != (out_n, out_n):
            raise NetworkError(f"{where}: weight_rec has shape {recurrent.shape}; a dense_rec layer of {out_n} "
                               f"neurons needs ({out_n}, {out_n})")
        weight = np.hstack([weight, recurrent])
    w, exp = _dense_weights(_netx_dense(weight, where), where)
    if kind == "dense":
        return Dense(w, neuron=neuron, bias=_per_channel(bias, out_n, where), weight_exp=exp)
    n_in = w.shape[1] - out_n
    return Recurrent(w[:, :n_in], w[:, n_in:], neuron=neuron, bias=_per_channel(bias, out_n, where), weight_exp=exp)


def _refuse_delays_and_graded_spikes(group, kind: str, where: str) -> None:
    """Synaptic delays (lava-dl writes ``delay`` for blocks built with ``delay=True``) and graded spikes
    (``neuron/messageBits`` > 0) have no form in hwsim's network: refused, never ignored. Delays that floor to 0
    (a block whose delays were never trained past one step) are no delays."""
    if "delay" in group:
        delays = np.floor(np.atleast_1d(np.asarray(group["delay"][()], np.float64)))
        if np.any(delays != 0):
            note = "; netx 0.6.0 ignores conv delays, slayer applies them" if kind == "conv" else ""
            raise NetworkError(f"{where}: synaptic delays ('delay', {int(np.count_nonzero(delays))} of {delays.size} "
                               f"nonzero, up to {int(delays.max())} steps); hwsim's network has no delays{note}")
    if "neuron" in group and "messageBits" in group["neuron"]:
        bits = int(np.asarray(group["neuron"]["messageBits"][()]).ravel()[0])
        if bits > 0:
            raise NetworkError(f"{where}: graded spikes (neuron/messageBits = {bits}); hwsim's spikes are binary")


def _input_from_first_layer(group, kind: str, where: str) -> tuple[int, ...]:
    if kind in ("dense", "dense_rec"):
        if "inFeatures" in group:
            return (int(np.asarray(group["inFeatures"][()]).ravel()[0]),)
        weight = np.asarray(group["weight"][()])
        if weight.ndim == 2:
            return (int(weight.shape[1]),)
    raise NetworkError(f"{where}: the network input shape is unknown (a {kind} layer first, without 'inFeatures'); "
                       f"add an 'input' layer with 'shape'")


def _neuron(group, where: str) -> tuple[LoihiLIF, np.ndarray | None]:
    """The CUBA neuron of a layer and its bias mantissa (netx's ``bias_exp = 6``), or None."""
    if "neuron" not in group:
        raise NetworkError(f"{where}: no 'neuron' group")
    neuron_group = group["neuron"]
    neuron_type = _text(neuron_group["type"][()])
    if neuron_type not in ("CUBA", "LOIHI"):
        raise NetworkError(f"{where}: neuron type {neuron_type!r} is not supported; hwsim reads CUBA (LIF) neurons")
    bias = None
    if "bias" in group:
        raw = np.atleast_1d(group["bias"][()]).astype(np.int64)
        if raw.min() < -4096 or raw.max() > 4095:
            raise NetworkError(f"{where}: bias outside the 13-bit mantissa range -4096..4095")
        bias = raw if np.any(raw) else None
    neuron = LoihiLIF(du=_scalar(neuron_group, "iDecay", where) - 1, dv=_scalar(neuron_group, "vDecay", where),
                      vth=_scalar(neuron_group, "vThMant", where), bias_exp=6 if bias is not None else 0)
    return neuron, bias


def _netx_dense(weight: np.ndarray, where: str) -> np.ndarray:
    """Dense weights as netx 0.6.0 hands them to Lava: read with ``astype(int)``, mixed-sign weights beyond
    Loihi's synapse clipped to -256..254 (netx prints a warning; so does this, as a Python warning)."""
    w = np.asarray(weight).astype(np.int64)
    high, low = int(w.max(initial=0)), int(w.min(initial=0))
    if (high > 254 and low < 0) or (low < -256 and high > 0):
        warnings.warn(f"{where}: weight matrix cannot be optimized to fit in synapse (weights {low}..{high}); "
                      f"clipped to -256..254 as netx does", stacklevel=3)
        w = np.clip(w, -256, 254)
    elif high > 255 or low < -255:
        raise NetworkError(f"{where}: single-sign dense weights {low}..{high} beyond 255 in magnitude, which netx "
                           f"cannot shift into Loihi's synapse")
    return w


def _pool(group, neuron: LoihiLIF, bias, shape, where: str) -> Layer:
    """A ``pool`` layer: hwsim's own (``kernel``, scalar ``weight``) or slayer's ``Pool`` block (``kernelSize``,
    a (1, 1, k, k) weight of equal taps). slayer pads odd input sizes; hwsim pooling has no padding."""
    if bias is not None:
        raise NetworkError(f"{where}: hwsim pooling layers carry no bias")
    key = "kernel" if "kernel" in group else "kernelSize"
    kernel = _scalar(group, key, where)
    stride = _scalar(group, "stride", where, kernel)
    if _scalar(group, "padding", where, 0) != 0 or _scalar(group, "dilation", where, 1) != 1:
        raise NetworkError(f"{where}: padded or dilated pooling is not supported")
    taps = np.atleast_1d(np.asarray(group["weight"][()]).astype(np.int64)).ravel()
    if np.any(taps != taps[0]):
        raise NetworkError(f"{where}: pooling taps differ ({taps.min()}..{taps.max()}); hwsim sum pooling has one")
    if shape is not None and len(shape) == 3 and (shape[1] % kernel or shape[2] % kernel):
        raise NetworkError(f"{where}: input {shape} is not a multiple of the pooling kernel {kernel}; slayer pads it, "
                           f"hwsim pooling has no padding")
    return SumPool2d(kernel, stride, weight=int(taps[0]), neuron=neuron)


def _per_channel(bias, n: int, where: str):
    if bias is None:
        return None
    if bias.size == 1:
        return np.full(n, int(bias[0]), np.int32)
    if bias.size != n:
        raise NetworkError(f"{where}: bias has {bias.size} values for {n} neurons")
    return bias.astype(np.int32)


def _pool_or_conv(weight, stride, padding, neuron, bias, where) -> Layer:
    o, c, kh, kw = weight.shape
    diagonal = o == c and kh == kw and padding == 0 and bias is None
    if diagonal:
        taps = weight[np.arange(c), np.arange(c)]
        off = weight.copy()
        off[np.arange(c), np.arange(c)] = 0
        if not np.any(off) and np.all(taps == taps.flat[0]) and taps.flat[0] != 0 and -256 <= taps.flat[0] <= 255:
            return SumPool2d(kh, stride, weight=int(taps.flat[0]), neuron=neuron)
    w, exp = _conv_weights(weight, where)
    if bias is not None and bias.size not in (1, o):
        raise NetworkError(f"{where}: conv bias must be per channel ({o} values), got {bias.size}; hwsim conv "
                           f"biases are per channel")
    return Conv2d(w, stride=stride, padding=padding, neuron=neuron, bias=_per_channel(bias, o, where),
                  weight_exp=exp)
