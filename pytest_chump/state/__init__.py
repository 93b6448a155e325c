"""State: ``.chump/`` on disk: the SQLite store (dispatches, leases, reflections, routing
outcomes), its schema, read-only queries, locks and who owns them. May import: core.
"""
