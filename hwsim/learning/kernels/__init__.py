"""On-chip forms of the time-local learning rules, as numba kernels run inside the time-step loop.

Only kernels live here (their sources key the numba cache, see ``hwsim.sim.kernels``); the driver is
``hwsim.learning.learner``.
"""

import hwsim.sim.kernels.layer  # noqa: F401  (the simulation kernels keep their own cache directory)
from hwsim.sim.kernels import use_cache_for

use_cache_for("sim/kernels", "learning/kernels")  # learning kernels inline both packages' functions
