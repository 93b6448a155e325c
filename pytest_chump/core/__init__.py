"""Core: the vocabulary every stage shares: gaps, records, plugin interfaces, settings, errors,
the plugin manager, the command runner and redaction. May import: nothing else in chump.
"""
