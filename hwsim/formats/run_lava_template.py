"""Run the exported network in Lava (fixed_pt) on golden.npz's input and compare every layer with its spikes.

Standalone: needs lava-nc 0.10.0 and numpy only (no hwsim). Reads network.npz (a numpy archive: the JSON
description ``__network__`` and the arrays ``layers.<i>.weight`` / ``layers.<i>.bias`` / ``layers.<i>.recurrent``)
and builds RingBuffer -> Dense|Conv -> LIF -> ... as hwsim's exporter does; a recurrent layer's LIF also gets a
Dense of its recurrent weights from its own s_out back into its a_in. Usage: python run_lava.py
"""

import dataclasses
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np


def import_lava_on_python311():
    """lava-nc 0.10.0 declares Python < 3.11: make one dataclass default hashable (as 3.10 accepted it) and
    let Lava fix the multiprocessing start method it needs ('fork')."""
    original_dataclass, original_start = dataclasses.dataclass, multiprocessing.set_start_method

    def dataclass(cls=None, /, **kwargs):
        def wrap(c):
            if c.__module__ == "lava.magma.compiler.var_model" and c.__name__ == "ByteEncoder":
                kwargs["unsafe_hash"] = True
            return original_dataclass(c, **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    multiprocessing.set_start_method = lambda method, force=False: original_start(method, force=True)
    try:
        __import__("lava.magma.compiler.var_model")
        __import__("lava.magma.runtime.message_infrastructure.multiprocessing")
    finally:
        dataclasses.dataclass, multiprocessing.set_start_method = original_dataclass, original_start


def lava_layout(values, shape):
    """(..., C*H*W) in (C, H, W) order -> (..., W, H, C) as Lava lays out spatial populations."""
    if len(shape) != 3:
        return values
    return np.swapaxes(values.reshape(*values.shape[:-1], *shape), -1, -3)


def main():
    here = Path(__file__).resolve().parent
    with np.load(here / "network.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    desc = json.loads(arrays["__network__"].tobytes().decode())
    golden = np.load(here / "golden.npz", allow_pickle=False)
    spikes = golden["input"]
    steps = spikes.shape[0]

    import_lava_on_python311()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    shape = tuple(desc["input_shape"])
    data = lava_layout(spikes.reshape(steps, -1), shape)
    source = RingBuffer(data=np.ascontiguousarray(np.moveaxis(data, 0, -1)).astype(np.int32))
    port, monitors = source.s_out, []
    for i, layer in enumerate(desc["layers"]):
        kind = layer["kind"]
        if kind == "flatten":
            continue
        neuron, exp = layer["neuron"], int(layer["weight_exp"])
        if kind in ("dense", "recurrent"):
            weight = arrays[f"layers.{i}.weight"].astype(np.int32)
            if len(shape) == 3:  # the network flattens (C, H, W); Lava flattens (W, H, C)
                c, h, w = shape
                weight = weight[:, np.arange(c * h * w).reshape(c, h, w).transpose(2, 1, 0).ravel()]
                port = port.flatten()
            synapse = Dense(weights=weight, weight_exp=exp)
            out_shape = (weight.shape[0],)
        else:
            c, h, w = shape
            if kind == "conv2d":
                kernel = arrays[f"layers.{i}.weight"].astype(np.int64)
                stride, pad = int(layer["stride"]), int(layer["padding"])
            else:
                k = int(layer["kernel"])
                kernel = np.zeros((c, c, k, k), np.int64)
                kernel[np.arange(c), np.arange(c)] = int(layer["weight"])
                stride, pad = int(layer["stride"]), 0
            kernel = (kernel << exp) if exp >= 0 else (kernel >> -exp)  # Lava's Conv has no weight exponent
            o, _, kh, kw = kernel.shape
            out_shape = (o, (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1)
            lava_kernel = np.ascontiguousarray(kernel.transpose(0, 3, 2, 1)[:, ::-1, ::-1]).astype(np.int32)
            synapse = Conv(weight=lava_kernel, input_shape=(w, h, c), padding=(pad, pad), stride=(stride, stride))
        n = int(np.prod(out_shape))
        bias = arrays.get(f"layers.{i}.bias")
        bias = np.zeros(n, np.int32) if bias is None else np.repeat(bias.astype(np.int32), n // bias.shape[0])
        lava_shape = tuple(out_shape[::-1]) if len(out_shape) == 3 else (n,)
        lif = LIF(shape=lava_shape, du=neuron["du"], dv=neuron["dv"], vth=neuron["vth"],
                  bias_mant=lava_layout(bias, out_shape).reshape(lava_shape), bias_exp=neuron["bias_exp"])
        port.connect(synapse.s_in)
        synapse.a_out.connect(lif.a_in)
        if kind == "recurrent":  # the layer's own spikes, one step later, into the same a_in
            loop = Dense(weights=arrays[f"layers.{i}.recurrent"].astype(np.int32), weight_exp=exp)
            lif.s_out.connect(loop.s_in)
            loop.a_out.connect(lif.a_in)
        monitor = Monitor()
        monitor.probe(lif.s_out, steps)
        monitors.append((monitor, lif, out_shape))
        port, shape = lif.s_out, out_shape
    try:
        source.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        recorded = [np.asarray(m.get_data()[lif.name]["s_out"]) for m, lif, _ in monitors]
    finally:
        source.stop()
    same = []
    for k, (values, (_, _, out_shape)) in enumerate(zip(recorded, monitors)):
        if len(out_shape) == 3:
            c, h, w = out_shape
            values = np.swapaxes(values.reshape(steps, w, h, c), 1, 3)
        same.append(bool(np.array_equal(values.reshape(steps, -1), golden[f"layer{k}"])))
    print("spikes equal per layer:", same)
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.exit(main())
