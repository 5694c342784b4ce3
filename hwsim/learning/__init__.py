"""Learning on chip: the rules as a chip would run them, and whether a chip can.

The on-chip learner and its numba kernels (:mod:`~hwsim.learning.learner`, :mod:`~hwsim.learning.kernels`,
:mod:`~hwsim.learning.conv_graph`) count every learning operation; STDL's auxiliary networks are planned under a
memory budget (:mod:`~hwsim.learning.stdl_plan`, shared with the torch rule); feasibility
(:mod:`~hwsim.learning.feasibility`) holds a rule's state and operations against a chip's learning engine and
prices a training sample. Torch-free: the torch reference rules live in ``hwsim.methods``.
"""
