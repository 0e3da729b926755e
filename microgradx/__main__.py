"""``python -m microgradx``: the command line (see :mod:`microgradx.cli`)."""

from .cli import main

raise SystemExit(main())
