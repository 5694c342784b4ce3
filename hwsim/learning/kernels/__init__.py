"""On-chip forms of the time-local learning rules, as numba kernels run inside the time-step loop.

One kernel family for every rule and every network (dense, conv and sum-pool nodes in one graph):
:mod:`~hwsim.learning.kernels.graph` (the kernel, :func:`~hwsim.learning.kernels.graph.train`; its weight
write-back in :mod:`~hwsim.learning.kernels.update`),
:mod:`~hwsim.learning.kernels.records` (the records it takes -- graph, rule settings, learner state, tally, batch
-- and the named counter indices), :mod:`~hwsim.learning.kernels.ops` (surrogate derivative, fixed-point
roundings) and :mod:`~hwsim.learning.kernels.conv` (conv and pool geometry, channels last). Only kernels live
here (their sources key the numba cache, see ``hwsim.sim.kernels``); the driver is ``hwsim.learning.learner``.
"""

import hwsim.sim.kernels.layer  # noqa: F401  (the simulation kernels keep their own cache directory)
from hwsim.sim.kernels import use_cache_for

use_cache_for("sim/kernels", "learning/kernels")  # learning kernels inline both packages' functions
