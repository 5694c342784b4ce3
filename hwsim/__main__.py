"""``python -m hwsim`` (and ``torchrun -m hwsim``) runs the command-line interface."""

import sys

from hwsim.cli import main

sys.exit(main())
