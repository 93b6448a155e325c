"""Built-in spawners (agent backends): claude, codex, aider, fake and ``command`` tables.

Each module registers its factory through ``chump_register_spawners`` exactly as a third-party
plugin would; local ones share :mod:`pytest_chump.spawners.base` and :mod:`pytest_chump.runner`.
A ``[tool.chump.spawners.<name>]`` table with a ``command`` list defines a spawner without code
(see :func:`pytest_chump.spawners.command.command_spawners`).
"""
