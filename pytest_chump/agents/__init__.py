"""Agents: running coding agents: the process runner, the built-in spawners (claude, codex,
aider, command, fake), handles of adopted agents, fault injection. May import: core up to dispatch.
"""
