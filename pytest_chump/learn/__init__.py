"""Learn: what earlier dispatches teach the next ones: the routing table, Thompson sampling
over stored outcomes, and lessons for prompts. May import: core, state, backlog, pick.
"""
