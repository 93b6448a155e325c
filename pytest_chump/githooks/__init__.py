"""Git hooks: ``chump-validate`` and ``chump-dispatch`` (pre-commit ids, console scripts and
modules of the same name) and the plain sh hooks in ``scripts/``. May import: every stage, cli too.

Each hook id in ``.pre-commit-hooks.yaml`` is a console script of the same name and a module
here with that name underscored; ``scripts/`` holds the POSIX sh hooks ``chump install-hooks``
copies into repositories that do not use pre-commit.
"""
