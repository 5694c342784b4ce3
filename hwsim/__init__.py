"""hwsim: a neuromorphic on-chip learning simulator with hardware cost models.

Importing ``hwsim`` loads nothing heavy; the simulator core (everything but the training glue) runs without
torch. ``__version__`` is the one place the version is written (``pyproject.toml`` reads it from here).
"""

__version__ = "0.1.0"


def _same_tree(subpackage_file: str, name: str) -> None:
    """Refuse to load ``hwsim.chips``/``hwsim.methods`` from another copy of hwsim than the ``hwsim`` package
    itself (two checkouts mixed, e.g. one installed editable and another on ``PYTHONPATH``): in a source tree they
    sit beside ``hwsim/``, in an installed wheel inside it."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    folder = Path(subpackage_file).resolve().parent
    if folder.parent not in (here, here.parent):
        raise ImportError(f"hwsim.{name} was found at {folder}, but hwsim itself is at {here}: two copies of hwsim "
                          f"are mixed (check PYTHONPATH and which checkout is installed: pip install -e <one tree>)")
