"""Simulate: the real picker, loop, deadline ladder, router, retries and sinks driven by a
virtual clock, with agents and a PR provider drawn from a seeded model — to measure scheduling
before spending on agents. May import every stage before it.
"""
