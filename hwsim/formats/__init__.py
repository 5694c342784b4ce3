"""Formats: reading and writing networks for other tools, both directions side by side.

NIR graphs (:mod:`~hwsim.formats.nir_io`: in, and the entry points for out; :mod:`~hwsim.formats.nir_out`:
writing; :mod:`~hwsim.formats.nir_graph`: a graph's chain and recurrent loops), lava-dl netx HDF5
(:mod:`~hwsim.formats.netx`), Lava processes built and run in a child process group (:mod:`~hwsim.formats.lava`,
:mod:`~hwsim.formats.lava_child`, :mod:`~hwsim.formats.lava_learning`, the one Lava shim
:mod:`~hwsim.formats.lava_compat`), the export bundle with golden spikes and a stand-alone ``run_lava.py``
(:mod:`~hwsim.formats.bundle`; written into a private staging folder and renamed into place, so a full disk
leaves the output as it was), one entry point for every network file hwsim reads (:mod:`~hwsim.formats.files`),
and the bounds of the HDF5 formats (:mod:`~hwsim.formats.bounds`: sizes from the headers before anything is read,
names safe as HDF5 group names, HDF5 files built in memory so that a full disk never reaches HDF5).
"""
