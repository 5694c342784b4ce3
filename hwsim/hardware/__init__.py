"""Hardware: what the simulated events cost on a given chip.

Layers placed on cores with every per-core limit (:mod:`~hwsim.hardware.mapping`), messages scheduled over the
on-chip network (:mod:`~hwsim.hardware.noc_timing`), and counts × a chip profile's prices → dynamic and static
energy, latency and memory fit (:mod:`~hwsim.hardware.cost`). Reads ``hwsim.chips`` profiles and
``hwsim.sim`` counts; never runs a network itself.
"""
