"""Loop: the orchestrator: keep slots full, watch agents and PRs, decide outcomes, finish
each dispatch once, resume after a crash, print progress. May import: every stage before it.
"""
