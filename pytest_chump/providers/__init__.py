"""Providers: what the forge says about each branch in flight (merged, closed, checks), one
call per poll: github (gh), git (offline, merge gate), instant. May import: core up to agents.
"""
