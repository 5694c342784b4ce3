"""One entry point for every network file hwsim reads: hwsim ``.npz``, NIR ``.nir``, netx ``.net``/``.h5``."""

from __future__ import annotations

from pathlib import Path

from hwsim.sim.network import Network, NetworkError, load

SUFFIXES = {".npz": "hwsim network", ".nir": "NIR graph", ".net": "netx HDF5", ".h5": "netx HDF5",
            ".hdf5": "netx HDF5"}


def is_network_file(name: str) -> bool:
    """Whether ``name`` names a network file (by suffix, or as an existing file)."""
    from hwsim.safeio import is_file

    return Path(name).suffix.lower() in SUFFIXES or is_file(name)


def load_network(path: str | Path) -> Network:
    """Read ``path`` by its suffix; errors are one :class:`NetworkError` line naming the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".nir":
        from hwsim.formats import nir_io

        return nir_io.read(path)
    if suffix in (".net", ".h5", ".hdf5"):
        from hwsim.formats import netx

        return netx.read(path)
    if suffix == ".npz" or not suffix:
        return load(path)
    raise NetworkError(f"{path}: unknown network file type {suffix!r}; expected "
                       f"{', '.join(f'{s} ({w})' for s, w in SUFFIXES.items())}")
