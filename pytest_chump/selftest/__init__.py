"""Self-test: the real orchestrator driven over a synthetic backlog, and the pytest fixtures
plugin authors test with. May import: every stage up to loop.

``inprocess.run`` (fake spawner, instant provider, memory sink, no git) and ``real.run`` (a
temporary git repository, real worktrees, real agent processes, the git provider) both
return a :class:`~pytest_chump.selftest.report.Report` with the reference verdict.
"""
