"""The ``ray`` spawner: each dispatch is one job on a Ray cluster, through Ray's Jobs API.

Selected by ``--spawner ray`` (or a routing arm), configured by ``[tool.chump.spawners.ray]``:

- ``address``: the cluster's Jobs API (``http://head:8265``), else ``RAY_ADDRESS``;
- ``agent``: the agent the job runs: ``claude`` (default), ``codex``, ``aider``, the name of a
  ``command`` spawner table, or an argv template of its own (``{gap_id}``, ``{branch}``,
  ``{worktree}``, ``{prompt_file}``), with ``stdin`` (default true);
- ``remote``: the git remote the nodes clone and push to (default: the base ref's remote, else
  ``origin``); ``cache_dir``: where a node keeps its clone (``~/.cache/chump/ray``);
- ``resources``: what a job claims (``{agent = 1}``: a custom resource each node declares as
  its number of agent slots) and ``num_cpus`` (0);
- ``env``: variables set for the agent; ``forward_env``: names of this side's variables
  passed on (their values are masked like secrets); ``python`` (``python3``) runs the job on
  the node; ``lost_after`` (120 s): a cluster silent that long counts as lost.

The job's entrypoint is :mod:`~pytest_chump.agents.ray_job`, shipped with a ``spec.json`` in
the job's working directory (Ray uploads it to the cluster): the remote's URL, the base
commit the orchestrator resolved, the branch, the agent's argv, prompt and environment, the
set-up steps and included files, the values to mask. Values travel in that file, never in
the job's runtime environment or metadata, which ``ray job list`` shows to anyone.

No local worktree is made for a Ray dispatch (``remote_workspace``): the node makes its own
and pushes the branch, and the ``git`` and ``github`` providers watch the remote branch.
Ray itself is imported only when a Ray dispatch is prepared (``pip install
'pytest-chump[ray]'``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shlex
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_chump import hookimpl
from pytest_chump.agents import ray_job
from pytest_chump.agents.aider import AiderSpawner
from pytest_chump.agents.claude import ClaudeSpawner
from pytest_chump.agents.codex import CodexSpawner
from pytest_chump.agents.command import CommandSpawner
from pytest_chump.agents.local import LocalSpawner, Options
from pytest_chump.agents.ray_handle import RayJobHandle
from pytest_chump.core import supervisor
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.redact import redaction_rules, secret_name_pattern
from pytest_chump.core.run import run
from pytest_chump.dispatch.agent_env import DEPTH_VAR
from pytest_chump.dispatch.setup import WorktreeSetup

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.protocols import Register, SpawnRequest

NAME = "ray"
OPTION_KEYS = (
    "address",
    "agent",
    "stdin",
    "remote",
    "cache_dir",
    "resources",
    "num_cpus",
    "env",
    "forward_env",
    "python",
    "lost_after",
)
INNER: dict[str, type[LocalSpawner]] = {
    "claude": ClaudeSpawner,
    "codex": CodexSpawner,
    "aider": AiderSpawner,
}
INSTALL_HINT = "the ray spawner needs Ray: pip install 'pytest-chump[ray]'"
CONNECT_TIMEOUT = 30.0  # seconds the cluster has to answer the client's first request
SUBMIT_TIMEOUT = 120.0  # seconds a submission (with its working directory upload) may take
T = TypeVar("T")


class SubmitFailed(ChumpError):
    """The cluster did not take the job. A connection problem (``network``) is retried
    after a backoff; a refusal is the spawner's failure (``spawn-failed``)."""

    def __init__(self, exc: BaseException) -> None:
        network = (
            isinstance(exc, TimeoutError | ConnectionError) or "connection" in str(exc).lower()
        )
        self.cause = "network" if network else "spawn-failed"
        verb = "cannot reach the cluster" if network else "the cluster refused the job"
        super().__init__(f"ray: {verb}: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    """An exception as one bounded line (its type when it says nothing)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def bounded(call: Callable[[], T], timeout: float) -> T:
    """``call()`` on a daemon thread, waited for at most ``timeout`` seconds: Ray's client
    sends its requests without a timeout, and a head that accepts connections but never
    answers must not hang chump. ``TimeoutError`` when it took longer."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:
            box.append((False, exc))

    worker = threading.Thread(target=run, name="ray-request", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        raise TimeoutError(f"no answer within {timeout:g}s")
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result


class RaySpawner:
    """Starts each agent as a Ray job; see the module docstring."""

    name = NAME
    remote_workspace = True  # the dispatcher makes no local worktree: the node makes its own

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        table = settings.spawner_options(NAME)
        options = Options(NAME, table, OPTION_KEYS)
        self.options = options
        if settings.merge_gate:
            raise UsageError(
                "[tool.chump.spawners.ray]: the merge gate checks branches in local worktrees; "
                "a Ray dispatch has none (use the github provider or no merge_gate)"
            )
        self.address = options.text("address") or os.environ.get("RAY_ADDRESS", "")
        self.inner = self._inner(options, table)
        self.remote = options.text("remote") or self._base_remote()
        self.cache_dir = options.text("cache_dir") or "~/.cache/chump/ray"
        self.python = options.text("python") or "python3"
        self.resources = self._resources(options, table.get("resources", {"agent": 1}))
        self.num_cpus = self._number(options, "num_cpus", table.get("num_cpus", 0))
        self.lost_after = self._number(options, "lost_after", table.get("lost_after", 120))
        self.env = options.str_table("env")
        self.forward = options.strings("forward_env")
        self.setup = WorktreeSetup.from_settings(
            settings.repo_root,
            settings.worktree,
            settings.worktree_include,
            settings.configured_secrets(),
            settings.log_max_bytes,
        )
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._url = ""

    # --- configuration -------------------------------------------------------------------

    def _inner(self, options: Options, table: Mapping[str, Any]) -> LocalSpawner:
        """The agent the job runs, built as locally but with binaries found on the node."""
        inner: LocalSpawner
        if isinstance(table.get("agent"), list):
            inner = CommandSpawner(self._command_settings(table), NAME)
        else:
            agent = options.text("agent") or "claude"
            if agent in INNER:
                inner = INNER[agent](self.settings)
            elif "command" in self.settings.spawner_options(agent):
                inner = CommandSpawner(self.settings, agent)
            else:
                valid = ", ".join([*INNER, "or a spawner table with a command"])
                raise options.error("agent", f"unknown agent {agent!r} (valid: {valid})")
        inner.resolve_binaries = False
        return inner

    def _command_settings(self, table: Mapping[str, Any]) -> Settings:
        """Settings whose ``ray`` table is what a command spawner reads: the ``agent`` argv
        template as its ``command``, and ``stdin``."""
        own = {"command": table["agent"], **{k: table[k] for k in ("stdin",) if k in table}}
        spawners = {**self.settings.spawners, NAME: own}
        return dataclasses.replace(self.settings, spawners=spawners)

    def _base_remote(self) -> str:
        remotes = run(["git", "remote"], cwd=self.settings.repo_root, check=False).stdout.split()
        head = self.settings.base_ref.removeprefix("refs/remotes/").partition("/")[0]
        return head if head in remotes else "origin"

    @staticmethod
    def _resources(options: Options, value: object) -> dict[str, float]:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        ):
            raise options.error("resources", f"expected a table of numbers, got {value!r}")
        return {str(k): float(v) for k, v in value.items()}

    @staticmethod
    def _number(options: Options, key: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise options.error(key, f"expected a number of 0 or more, got {value!r}")
        return float(value)

    # --- the cluster ---------------------------------------------------------------------

    def client(self) -> Any:
        """The Jobs API client (made once); a one-line error naming the address when Ray is
        missing or the cluster does not answer."""
        with self._client_lock:
            if self._client is None:
                if not self.address:
                    raise UsageError(
                        "[tool.chump.spawners.ray] address: not set (nor RAY_ADDRESS): "
                        "the Jobs API address of the cluster, e.g. http://127.0.0.1:8265"
                    )
                try:
                    from ray.job_submission import JobSubmissionClient
                except ImportError:
                    raise UsageError(INSTALL_HINT) from None
                _quiet_ray()
                try:
                    self._client = bounded(
                        lambda: JobSubmissionClient(self.address), CONNECT_TIMEOUT
                    )
                except Exception as exc:
                    raise UsageError(
                        f"ray: cannot reach the cluster at {self.address}: {first_line(exc)}"
                    ) from None
            return self._client

    def remote_url(self) -> str:
        """The remote's URL as the nodes reach it (a local path becomes a ``file://`` URL)."""
        if not self._url:
            proc = run(
                ["git", "remote", "get-url", "--push", self.remote],
                cwd=self.settings.repo_root,
                check=False,
            )
            url = proc.stdout.strip()
            if proc.returncode != 0 or not url:
                raise UsageError(
                    f"[tool.chump.spawners.ray] remote: no git remote {self.remote!r} "
                    "(the nodes clone the repository from it and push the branch to it)"
                )
            if "://" not in url and ":" not in url.split("/")[0]:  # a path, not scp-like
                url = Path(self.settings.repo_root, url).resolve().as_uri()
            self._url = url
        return self._url

    def preflight(self, env: Mapping[str, str]) -> None:
        """Before any dispatch: Ray is installed, the cluster answers, the remote exists."""
        self.remote_url()
        self.client()

    # --- spawn and re-attach -------------------------------------------------------------

    def spawn(self, request: SpawnRequest) -> RayJobHandle:
        client = self.client()
        if not request.base:
            raise ChumpError("ray: no base commit for the branch (the dispatch has none)")
        job_id = f"chump-{request.gap.slug}-{secrets.token_hex(5)}"
        payload = self._payload(request, job_id)
        try:
            if request.on_remote is not None:  # durable before the job can exist
                request.on_remote({"spawner": NAME, "job_id": job_id, "address": self.address})
            entrypoint = [self.python, "-S", "ray_job.py", "spec.json"]
            runtime_env = {
                "working_dir": str(payload),
                # SIGTERM, then this long for the agent to stop and the job to save and push
                # its work before Ray's SIGKILL (Ray's default is 3 s); not a secret
                "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": f"{self.settings.kill_grace:g}"},
            }
            try:
                bounded(
                    lambda: client.submit_job(
                        entrypoint=shlex.join(entrypoint),  # Ray runs it through a shell
                        submission_id=job_id,
                        runtime_env=runtime_env,
                        entrypoint_resources=self.resources or None,
                        entrypoint_num_cpus=self.num_cpus,
                        metadata={"chump_gap": request.gap.id, "chump_branch": request.branch},
                    ),
                    SUBMIT_TIMEOUT,
                )
            except Exception as exc:
                self._withdraw(client, job_id)
                raise SubmitFailed(exc) from None
        finally:
            shutil.rmtree(payload, ignore_errors=True)  # uploaded (or refused) by now
        return self._handle(job_id, request.log_path, request.record_path, request.notify)

    def adopt(
        self, identity: Mapping[str, object], log_path: Path, record_path: Path | None
    ) -> RayJobHandle:
        """The handle of a job a dead orchestrator started (``identity`` as it recorded it),
        copying only the log lines that orchestrator had not copied yet."""
        seen = read_lines_seen(record_path)  # the cluster is asked later, on the handle's threads
        return self._handle(str(identity["job_id"]), log_path, record_path, None, seen)

    @staticmethod
    def _withdraw(client: Any, job_id: str) -> None:
        """A submit that failed may still have reached the cluster: ask it to stop the job
        (from a thread, without waiting), so no agent runs that no dispatch tracks."""

        def stop() -> None:
            with contextlib.suppress(Exception):
                client.stop_job(job_id)

        threading.Thread(target=stop, name=f"ray-withdraw-{job_id}", daemon=True).start()

    def _handle(
        self,
        job_id: str,
        log_path: Path,
        record_path: Path | None,
        notify: Any,
        skip: int = 0,
    ) -> RayJobHandle:
        parser = self.inner.parser()
        return RayJobHandle(
            self.client,
            job_id,
            log_path,
            record_path=record_path,
            parser=parser,
            facts=parser.facts if parser is not None else None,
            notify=notify,
            secrets=tuple(self._masked_here()),
            log_max_bytes=self.settings.log_max_bytes,
            ring_stdout=self.inner.plain_output,
            lost_after=self.lost_after,
            skip_lines=skip,
        )

    def _masked_here(self) -> list[str]:
        from pytest_chump.core.redact import known_secrets

        forwarded = [os.environ[name] for name in self.forward if name in os.environ]
        return known_secrets(self.settings.configured_secrets(), forwarded, self.env.values())

    # --- the job's package ---------------------------------------------------------------

    def _payload(self, request: SpawnRequest, job_id: str) -> Path:
        """A private folder with the job's entrypoint, the supervisor it uses, the spec and
        the included files; Ray uploads it as the job's working directory."""
        parent = self.settings.state_dir / "ray"
        parent.mkdir(parents=True, exist_ok=True)
        payload = Path(tempfile.mkdtemp(prefix="job-", dir=parent))
        try:
            shutil.copyfile(ray_job.__file__, payload / "ray_job.py")
            shutil.copyfile(supervisor.__file__, payload / "supervisor.py")
            self.setup.copy_includes(payload / "includes")
            spec = self._spec(request, job_id)
            _private(payload / ray_job.PROMPT_NAME, request.prompt)
            _private(payload / "spec.json", json.dumps(spec))
        except BaseException:
            shutil.rmtree(payload, ignore_errors=True)
            raise
        return payload

    def _spec(self, request: SpawnRequest, job_id: str) -> dict[str, Any]:
        remote_tree = Path(ray_job.WORKTREE_SLOT)
        inner_request = dataclasses.replace(
            request, worktree=remote_tree, prompt_file=Path(ray_job.PROMPT_SLOT)
        )
        argv = self.inner.argv(inner_request)
        forwarded = {name: os.environ[name] for name in self.forward if name in os.environ}
        markers = (DEPTH_VAR, "CHUMP_GAP_ID", "CHUMP_BRANCH", *self.settings.bot_identity)
        env = {
            **{k: request.env[k] for k in markers if k in request.env},
            **self.inner.extra_env(inner_request),
            **self.env,
            **forwarded,
        }  # on top of the node's own environment; nothing else of this side's
        shipped = set(env.values())
        masked = {*forwarded.values(), *(v for v in request.secrets if v in shipped)}
        steps = {step: list(argv) for step, argv in self.setup.steps.items()}
        return {
            "job_id": job_id,
            "gap_id": request.gap.id,
            "branch": request.branch,
            "base_sha": request.base,
            "remote_url": self.remote_url(),
            "cache_dir": self.cache_dir,
            "argv": argv,
            "prompt": self.inner.stdin_text(inner_request),
            "env": env,
            "secrets": sorted(masked, key=len, reverse=True),
            "secret_name_pattern": secret_name_pattern(),
            "rules": [list(rule) for rule in redaction_rules()],
            "setup": {**steps, "timeout": self.setup.timeout},
        }


def _quiet_ray() -> None:
    """Ray's client logs every upload and websocket at INFO on chump's own output: warnings
    and errors only."""
    manager = logging.Logger.manager
    names = [n for n in manager.loggerDict if n == "ray" or n.startswith("ray.")]
    for name in ("ray", *names):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _private(path: Path, text: str) -> None:
    """A new file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def read_lines_seen(record_path: Path | None) -> int:
    """How many lines of a job's log an earlier orchestrator copied (its record says)."""
    from pytest_chump.agents.logfiles import read_record

    lines = read_record(record_path).get("lines") if record_path is not None else 0
    return lines if isinstance(lines, int) and not isinstance(lines, bool) and lines > 0 else 0


@hookimpl
def chump_register_spawners(register: Register) -> None:
    register(NAME, RaySpawner)
