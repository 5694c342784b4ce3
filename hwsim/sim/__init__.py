"""Simulation: what a network is and what it does, event by event, with no chip in sight.

The network description (:mod:`~hwsim.sim.network`: layers, neuron parameters, spec strings, ``.npz`` files), the
numba kernels (:mod:`~hwsim.sim.kernels`), the time-step loop that runs them (:mod:`~hwsim.sim.engine`), the exact
event counts it produces (:mod:`~hwsim.sim.counts`), float → Loihi fixed-point conversion
(:mod:`~hwsim.sim.quantize`), spike input from files (:mod:`~hwsim.sim.inputs`) and the one thread policy
(:mod:`~hwsim.sim.threads`). Nothing here reads a chip profile; nothing imports torch except the optional engine
for large batches on a GPU (:mod:`~hwsim.sim.torch_engine`, torch imported lazily; fused neuron kernels in
:mod:`~hwsim.sim.triton_lif` when Triton is installed). Everything above builds on this layer.
"""
