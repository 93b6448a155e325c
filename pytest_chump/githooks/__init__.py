"""Git hook entry points (``chump-validate``, ``chump-dispatch``) and their plain-script twins.

Each hook id in ``.pre-commit-hooks.yaml`` is a console script of the same name and a module
here with that name underscored; ``scripts/`` holds the POSIX sh hooks ``chump install-hooks``
copies into repositories that do not use pre-commit.
"""
