"""``python -m smevo``: the same command line as the ``smevo`` script."""

from smevo.cli import main

raise SystemExit(main())
