"""Numba kernels: event-driven synapses, LIF updates (float32 and Loihi fixed point), layer loops.

Every kernel is a plain function over explicit arrays (no Python objects inside the loops) and is
compiled once, on first use, into numba's on-disk cache.
"""
