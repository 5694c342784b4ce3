"""On-chip forms of the time-local learning rules, as numba kernels run inside the time-step loop.

Only kernels live here (their sources key the numba cache, see ``hwsim.kernels``); the driver is
``hwsim.learning``.
"""
