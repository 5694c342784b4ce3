"""``python -m hwsim`` (and ``torchrun -m hwsim``) runs the command-line interface."""

if __name__ == "__main__":
    import sys

    from hwsim.cli.main import main

    sys.exit(main())
