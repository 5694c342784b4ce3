"""The ``hwsim`` command: argument parsing (:mod:`~hwsim.cli.main`), the subcommands (:mod:`~hwsim.cli.commands`)
and argument checks (:mod:`~hwsim.cli.validate`). Commands compose the layers below and format their results;
they hold no logic of their own that the Python API lacks.
"""
