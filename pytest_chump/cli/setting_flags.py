"""Options shared by sub-commands, derived from the declared settings in ``config``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from pytest_chump.core import config
from pytest_chump.core.config_values import boolean


def add_setting_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add ``--repo-root`` and one flag per declared setting (all, or those in ``names``)."""
    parser.add_argument(
        "--repo-root",
        metavar="PATH",
        help="repository to work on (default: the git top level of .)",
    )
    wanted = None if names is None else set(names)
    for f in config.declared():
        if not f.metadata["flag"] or (wanted is not None and f.name not in wanted):
            continue
        envs = ", ".join(config.env_names(f))
        switch = {"nargs": "?", "const": "true"} if f.metadata["parse"] is boolean else {}
        parser.add_argument(
            config.flag_name(f),
            dest=f.name,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{f.metadata['help']} (env {envs}; default {config.shown_default(f)})",
            **switch,  # type: ignore[arg-type]
        )


def setting_flags(args: argparse.Namespace) -> dict[str, object]:
    """The setting values given on the command line (None = not given), plus repo_root."""
    values = {f.name: getattr(args, f.name, None) for f in config.declared()}
    values["repo_root"] = args.repo_root
    return values
