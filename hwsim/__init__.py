"""hwsim: a neuromorphic on-chip learning simulator with hardware cost models.

Importing ``hwsim`` loads nothing heavy; the simulator core (everything but the training glue) runs without
torch. ``__version__`` is the one place the version is written (``pyproject.toml`` reads it from here).
"""

__version__ = "0.1.0"
