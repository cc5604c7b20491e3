"""``python -m sparsetrt``: the ``sparsetrt`` command."""

from sparsetrt.cli import main

raise SystemExit(main())
