"""Dispatch: turning a picked gap into a started agent: lease, git worktree and branch, the
prompt, the agent's environment. May import: core, state, backlog, pick, learn.
"""
