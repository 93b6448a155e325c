"""The state database's schema, as an ordered list of migrations (``PRAGMA user_version``),
and the same schema as one script for a new database.

Migration N brings a database from version N-1 to N; released migrations never change. A new
database is given :data:`SCHEMA` instead of replaying them: each statement of DDL costs SQLite a
re-read of the schema, and the ``ALTER TABLE``s of later migrations made a new store take
several milliseconds. A new migration is added to both; ``tests/state/test_schema.py`` checks
that they give the same tables, columns and indexes.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE dispatches (
        id INTEGER PRIMARY KEY,
        gap_id TEXT NOT NULL,
        branch TEXT NOT NULL,
        worktree TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT,
        owner TEXT NOT NULL,
        pid INTEGER,
        log_path TEXT,
        effort TEXT NOT NULL DEFAULT '',
        priority TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        ended_at REAL,
        state TEXT NOT NULL DEFAULT 'starting',
        outcome TEXT,
        pr_number INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        cause TEXT NOT NULL DEFAULT '',
        exit_code INTEGER,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX dispatches_gap ON dispatches(gap_id);
    CREATE INDEX dispatches_state ON dispatches(state);
    CREATE TABLE leases (
        gap_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        dispatch_id INTEGER,
        acquired_at REAL NOT NULL
    );
    CREATE TABLE owners (
        owner TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL
    );
    CREATE TABLE reflections (
        id INTEGER PRIMARY KEY,
        dispatch_id INTEGER UNIQUE,
        gap_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        outcome_class TEXT NOT NULL,
        backend TEXT NOT NULL DEFAULT '',
        directive TEXT NOT NULL,
        error_pattern TEXT NOT NULL DEFAULT 'orchestrator_dispatch',
        created_at REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX reflections_gap ON reflections(gap_id);
    CREATE TABLE routing_outcomes (
        id INTEGER PRIMARY KEY,
        dispatch_id INTEGER UNIQUE,
        task_class TEXT NOT NULL DEFAULT '',
        priority TEXT NOT NULL DEFAULT '',
        effort TEXT NOT NULL DEFAULT '',
        backend TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL,
        pr_number INTEGER,
        duration_s REAL,
        cost_usd REAL,
        created_at REAL NOT NULL
    );
    """,
    # 2: the dispatch row is the outbox of its reflection; sinks are delivered from it
    """
    ALTER TABLE dispatches ADD COLUMN reflection TEXT;
    ALTER TABLE dispatches ADD COLUMN delivered TEXT NOT NULL DEFAULT '[]'
    """,
    # 3: orchestrators beat; one silent past lease_ttl (stopped, hung) loses what it holds
    """
    ALTER TABLE owners ADD COLUMN beat_at REAL NOT NULL DEFAULT 0
    """,
    # 4: reactions: attempts chain through retries; gaps held for a human; open circuits
    """
    ALTER TABLE dispatches ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE dispatches ADD COLUMN previous_id INTEGER;
    CREATE TABLE retries (
        gap_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        cause TEXT NOT NULL DEFAULT '',
        not_before REAL NOT NULL,
        previous_id INTEGER,
        attempt INTEGER NOT NULL,
        feedback_n INTEGER NOT NULL DEFAULT 0,
        transient_n INTEGER NOT NULL DEFAULT 0,
        feedback TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE holds (
        gap_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        dispatch_id INTEGER,
        since REAL NOT NULL,
        cause TEXT NOT NULL DEFAULT '',
        feedback TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE circuits (
        arm TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        message TEXT NOT NULL,
        opened_at REAL NOT NULL
    )
    """,
    # 5: what each dispatch cost, as its agent reported it
    """
    ALTER TABLE dispatches ADD COLUMN cost_usd REAL;
    ALTER TABLE dispatches ADD COLUMN tokens_in INTEGER;
    ALTER TABLE dispatches ADD COLUMN tokens_out INTEGER;
    ALTER TABLE dispatches ADD COLUMN tokens_cache INTEGER
    """,
    # 6: what watchers see: the event stream (bounded), each orchestrator's timings, and
    # indexes that keep the dashboard's reads of a long history quick
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE timings (
        owner TEXT PRIMARY KEY,
        updated_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX dispatches_ended ON dispatches(ended_at);
    CREATE INDEX dispatches_started ON dispatches(started_at);
    CREATE INDEX dispatches_totals ON dispatches(
        outcome, backend, cost_usd, tokens_in, tokens_out, tokens_cache);
    CREATE INDEX routing_classes ON routing_outcomes(backend, model, task_class, outcome);
    CREATE INDEX dispatches_log ON dispatches(log_path);
    ALTER TABLE owners ADD COLUMN nudge INTEGER NOT NULL DEFAULT 0
    """,
)

SCHEMA = """
    CREATE TABLE dispatches (
        id INTEGER PRIMARY KEY,
        gap_id TEXT NOT NULL,
        branch TEXT NOT NULL,
        worktree TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT,
        owner TEXT NOT NULL,
        pid INTEGER,
        log_path TEXT,
        effort TEXT NOT NULL DEFAULT '',
        priority TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        ended_at REAL,
        state TEXT NOT NULL DEFAULT 'starting',
        outcome TEXT,
        pr_number INTEGER,
        reason TEXT NOT NULL DEFAULT '',
        cause TEXT NOT NULL DEFAULT '',
        exit_code INTEGER,
        meta TEXT NOT NULL DEFAULT '{}',
        reflection TEXT,
        delivered TEXT NOT NULL DEFAULT '[]',
        attempt INTEGER NOT NULL DEFAULT 1,
        previous_id INTEGER,
        cost_usd REAL,
        tokens_in INTEGER,
        tokens_out INTEGER,
        tokens_cache INTEGER
    );
    CREATE INDEX dispatches_gap ON dispatches(gap_id);
    CREATE INDEX dispatches_state ON dispatches(state);
    CREATE INDEX dispatches_ended ON dispatches(ended_at);
    CREATE INDEX dispatches_started ON dispatches(started_at);
    CREATE INDEX dispatches_totals ON dispatches(
        outcome, backend, cost_usd, tokens_in, tokens_out, tokens_cache);
    CREATE INDEX dispatches_log ON dispatches(log_path);
    CREATE TABLE leases (
        gap_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        dispatch_id INTEGER,
        acquired_at REAL NOT NULL
    );
    CREATE TABLE owners (
        owner TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        beat_at REAL NOT NULL DEFAULT 0,
        nudge INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE reflections (
        id INTEGER PRIMARY KEY,
        dispatch_id INTEGER UNIQUE,
        gap_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        outcome_class TEXT NOT NULL,
        backend TEXT NOT NULL DEFAULT '',
        directive TEXT NOT NULL,
        error_pattern TEXT NOT NULL DEFAULT 'orchestrator_dispatch',
        created_at REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX reflections_gap ON reflections(gap_id);
    CREATE TABLE routing_outcomes (
        id INTEGER PRIMARY KEY,
        dispatch_id INTEGER UNIQUE,
        task_class TEXT NOT NULL DEFAULT '',
        priority TEXT NOT NULL DEFAULT '',
        effort TEXT NOT NULL DEFAULT '',
        backend TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL,
        pr_number INTEGER,
        duration_s REAL,
        cost_usd REAL,
        created_at REAL NOT NULL
    );
    CREATE INDEX routing_classes ON routing_outcomes(backend, model, task_class, outcome);
    CREATE TABLE retries (
        gap_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        cause TEXT NOT NULL DEFAULT '',
        not_before REAL NOT NULL,
        previous_id INTEGER,
        attempt INTEGER NOT NULL,
        feedback_n INTEGER NOT NULL DEFAULT 0,
        transient_n INTEGER NOT NULL DEFAULT 0,
        feedback TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    );
    CREATE TABLE holds (
        gap_id TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        dispatch_id INTEGER,
        since REAL NOT NULL,
        cause TEXT NOT NULL DEFAULT '',
        feedback TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE circuits (
        arm TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        message TEXT NOT NULL,
        opened_at REAL NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE timings (
        owner TEXT PRIMARY KEY,
        updated_at REAL NOT NULL,
        body TEXT NOT NULL
    )
"""
"""The schema of version ``len(MIGRATIONS)`` in one script: what a new database is given."""
