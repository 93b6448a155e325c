"""One module per ``chump`` sub-command; each exposes ``add_parser`` and ``run``."""
