"""The self-test: the real orchestrator core driven over a synthetic backlog.

``run`` (in-process: fake spawner, instant provider, memory sink, no git) and ``run_real``
(a temporary git repository, real worktrees, real agent processes, the git provider) both
return a :class:`~pytest_chump.selftest.report.Report` with the reference verdict.
"""
