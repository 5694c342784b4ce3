"""A netx-compatible HDF5 (``model.net``) for lava-dl users (lava-dl 0.6.0 cannot be installed beside
torch 2.13, so the layout is written from its documented format and checked field by field in the tests).

Layout: ``/layer/<i>/`` per neuron layer, i from 0, with ``type`` (``dense``, ``conv`` or ``pool``),
``shape`` (the layer's output shape, channels last as netx expects: ``(n,)`` or ``(W, H, C)``),
``weight`` (integer weights as Lava applies them: the stored weights times 2**weight_exp, dense
``(n_out, n_in)``, conv ``(out, kh, kw, in)``... kept in hwsim's ``(out, in, kh, kw)`` order with
``weight_layout`` naming it), ``bias`` (bias mantissa << bias_exp, per neuron) and
``neuron/{type: CUBA, iDecay = du + 1, vDecay = dv, vThMant = vth, refDelay = 1, gradedSpike = 0}``;
conv and pool layers add ``stride``, ``padding`` and ``kernel``. Flatten layers are implicit in netx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.network import Conv2d, Dense, Flatten, Network, NetworkError

NETX_TYPES = {"dense": "dense", "conv2d": "conv", "sumpool2d": "pool"}


def write(network: Network, path: str | Path) -> Path:
    import h5py

    if network.mode != "fixed":
        raise NetworkError("netx export takes a fixed-point network; quantise the float network first")
    path = Path(path)
    with h5py.File(path, "w") as f:
        index = 0
        for layer, (_, out_shape) in zip(network.layers, network.layer_shapes()):
            if isinstance(layer, Flatten):
                continue
            group = f.create_group(f"layer/{index}")
            group["type"] = np.bytes_(NETX_TYPES[layer.kind])
            group["shape"] = np.array(out_shape[::-1] if len(out_shape) == 3 else out_shape, np.int64)
            neuron = layer.neuron
            if isinstance(layer, (Dense, Conv2d)):
                weight, shift = layer.weight.astype(np.int64), layer.weight_exp
                group["weight"] = (weight << shift) if shift >= 0 else (weight >> -shift)
                group["weight_layout"] = np.bytes_("out_in" if isinstance(layer, Dense) else "out_in_kh_kw")
            else:
                group["weight"] = np.array(layer.weight, np.int64)
            n_bias = layer.weight.shape[0] if isinstance(layer, (Dense, Conv2d)) else out_shape[0]
            bias = np.zeros(n_bias, np.int64) if layer.bias is None else layer.bias.astype(np.int64) << neuron.bias_exp
            group["bias"] = bias
            if isinstance(layer, Conv2d):
                group["stride"], group["padding"] = layer.stride, layer.padding
                group["kernel"] = np.array(layer.weight.shape[2:], np.int64)
            elif layer.kind == "sumpool2d":
                group["stride"], group["padding"], group["kernel"] = layer.stride, 0, layer.kernel
            n = group.create_group("neuron")
            n["type"] = np.bytes_("CUBA")
            n["iDecay"], n["vDecay"], n["vThMant"] = neuron.du + 1, neuron.dv, neuron.vth
            n["refDelay"], n["gradedSpike"] = 1, 0
            index += 1
    return path
