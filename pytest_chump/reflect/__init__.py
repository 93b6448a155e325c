"""Reflect: the one record a dispatch gets when it ends: cause classification, notes,
the directive, and the built-in sinks that store it. May import: core up to providers.
"""
