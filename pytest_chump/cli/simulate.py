"""``chump simulate``: run a backlog through the real loop on virtual time, with agents drawn
from a seeded model, next to the reference rounds on the same agents — before spending on
real ones.

The backlog is generated (``--gaps N [--deps-density D]``) or the repository's own (its
configured backlog, or ``--backlog PATH``), simulated with the repository's settings
(deadlines, retries, routing, picker order) and the files a real dispatch reads there (the
prompt template, the rules file, ``.chump/routing.yaml``). ``--backends`` replaces the
routing table with one default list of those arms. Nothing is dispatched and nothing is
written but ``--timeline`` pages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import PICKER_ORDERS
from pytest_chump.core.run import display_path
from pytest_chump.loop.app import App

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings

POLICIES = ("both", "continuous", "reference")


def _count(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1 to 100000")
    return int(text)


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number from 0 to 20") from None
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError(f"{text!r}: a number from 0 to 20")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate", help="simulate a backlog on virtual time, next to the reference rounds"
    )
    parser.add_argument(
        "--gaps", type=_count, metavar="N", help="a generated backlog of N gaps (a DAG)"
    )
    parser.add_argument(
        "--deps-density",
        type=_density,
        default=0.5,
        metavar="D",
        help="mean dependencies per generated gap (default 0.5)",
    )
    parser.add_argument("--slots", type=_count, metavar="N", help="default: max_parallel")
    parser.add_argument("--seed", type=int, default=0, help="the model's seed (default 0)")
    parser.add_argument("--order", choices=PICKER_ORDERS, help="picker order of the continuous run")
    parser.add_argument(
        "--policy", choices=POLICIES, default="both", help="which policies to run (default both)"
    )
    parser.add_argument(
        "--backends",
        metavar="A,B",
        help="arms the router chooses among (default: the routing table, else the spawner)",
    )
    parser.add_argument(
        "--no-failures", action="store_true", help="every attempt ships (scheduling alone)"
    )
    parser.add_argument("--timeline", metavar="PATH", help="write the run's timeline page")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    add_setting_flags(parser, names=("backlog",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_chump.core.records import Backlog
    from pytest_chump.observe.page import report_html
    from pytest_chump.simulate.backlogs import generate
    from pytest_chump.simulate.model import Model
    from pytest_chump.simulate.reference import reference_rounds
    from pytest_chump.simulate.run import Result, simulate, simulated

    app = App.create(setting_flags(args))
    base = app.settings
    timeline = Path(args.timeline) if args.timeline else None
    if timeline is not None and not timeline.parent.is_dir():
        raise UsageError(f"--timeline {args.timeline}: no such directory")
    backlog: Backlog = (
        generate(args.gaps, args.deps_density, args.seed) if args.gaps else app.load_backlog()
    )
    slots = args.slots or base.max_parallel
    order = args.order or base.picker_order
    backends = _backends(args.backends, base)
    if args.backends:  # the arms given replace the table; else the repository's table holds
        arms = [{"spawner": name} for name in backends]
        base = _with_routing(base, {"default": arms})
    model = Model(seed=args.seed, failures=not args.no_failures)
    runs: list[Result] = []
    if args.policy in ("both", "reference"):
        settings = simulated(base, slots, "declared")
        runs.append(reference_rounds(backlog, settings, model, backends[0]))
    if args.policy in ("both", "continuous"):
        runs.append(simulate(backlog, slots=slots, model=model, order=order, base=base))
    if timeline is not None:
        said = sys.stderr if args.json else sys.stdout
        _write(timeline, report_html(runs[-1].history), said)
        if len(runs) > 1:
            other = timeline.with_stem(timeline.stem + "-reference")
            _write(other, report_html(runs[0].history), said)
    what = (
        f"{len(backlog.gaps)} generated gaps (deps density {args.deps_density:g})"
        if args.gaps
        else f"{display_path(backlog.path)} ({len(backlog.gaps)} gaps)"
    )
    if args.json:
        doc = {
            "backlog": what,
            "seed": args.seed,
            "slots": slots,
            "backends": list(backends),
            "failures": not args.no_failures,
            "runs": [r.as_dict() for r in runs],
        }
        print(json.dumps(doc, sort_keys=True))
        return 0
    print(f"simulated {what} on {slots} slots, seed {args.seed}, backends {', '.join(backends)}")
    print(
        f"  {'policy':<18} {'order':<14} {'makespan':>9} {'bound':>9} {'ratio':>6} "
        f"{'use':>5} {'shipped':>8} {'dispatches':>10}"
    )
    for r in runs:
        print(
            f"  {r.policy:<18} {r.order:<14} {_hours(r.makespan_s):>9} "
            f"{_hours(r.lower_bound_s):>9} {r.ratio:>6.3f} {r.utilisation:>5.0%} "
            f"{r.shipped:>8} {r.dispatches:>10}"
        )
    if len(runs) == 2 and runs[1].makespan_s:
        print(f"  continuous finishes {runs[0].makespan_s / runs[1].makespan_s:.2f}x sooner")
    return 0


def _backends(given: str | None, settings: Settings) -> list[str]:
    if given:
        names = [name.strip() for name in given.split(",") if name.strip()]
        if not names:
            raise UsageError("--backends: give at least one name")
        return names
    from pytest_chump.learn.routing import load_table

    table = load_table(settings)
    arms = [arm.spawner for rule in table.rules for arm in rule.arms]
    arms += [arm.spawner for arm in table.default]
    return list(dict.fromkeys(arms)) or [settings.spawner]


def _with_routing(settings: Settings, routing: dict[str, object]) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, routing=routing)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}h"


def _write(path: Path, text: str, said: TextIO) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--timeline {path}: {exc.strerror or exc}") from None
    print(f"timeline: {display_path(path)}", file=said)
