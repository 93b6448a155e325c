"""Pick: which ready gaps start next: eligibility, priority order, critical path, INFRA bias,
and the built-in ``chump_pick``. May import: core, state, backlog.
"""
