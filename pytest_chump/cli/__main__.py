"""``python -m pytest_chump.cli``: the ``chump`` console script without its installed wrapper
(the post-merge hook starts the detached orchestrator this way)."""

from pytest_chump.cli import main

raise SystemExit(main())
