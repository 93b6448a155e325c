"""Makes untrusted text safe: secrets removed before any log, sink or reflection sees it, and
control characters escaped before a terminal does (``printable``).

Three nets: values of environment variables named like secrets (``*_KEY``, ``*_TOKEN``,
``*_SECRET``, ``*_PAT``, anything containing ``PASSWORD``), token shapes of well-known
services, and the value half of ``Authorization: Bearer …`` / ``api_key=…`` assignments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6
_SECRET_NAME = re.compile(r"(?:_KEY|_TOKEN|_SECRET|_PAT)$|PASSWORD|^(?:GH|GITHUB)_TOKEN$", re.I)

# Whole matches are masked. The look-behind keeps words like "task-…" from reading as "sk-…".
_TOKEN_SHAPES = re.compile(
    r"""
    (?<![A-Za-z0-9_-])(?:
        sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}   # Anthropic / OpenAI keys
      | gh[pousr]_[A-Za-z0-9]{20,}                              # GitHub tokens
      | github_pat_[A-Za-z0-9_]{20,}
      | glpat-[A-Za-z0-9_-]{20,}                                # GitLab
      | xox[abeprs]-[A-Za-z0-9-]{10,} | xapp-[A-Za-z0-9-]{10,}  # Slack
      | (?:AKIA|ASIA)[0-9A-Z]{16}                               # AWS access key id
      | AIza[0-9A-Za-z_-]{30,} | ya29\.[0-9A-Za-z_-]{20,}       # Google
      | hf_[A-Za-z0-9]{30,} | npm_[A-Za-z0-9]{30,}              # Hugging Face, npm
      | (?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}                # Stripe
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+  # JWT
    )
    | hooks\.slack\.com/services/[A-Za-z0-9/]+
    | -----BEGIN[A-Z ]*PRIVATE\ KEY(?:\ BLOCK)?-----[\s\S]*?
      (?:-----END[A-Z ]*PRIVATE\ KEY(?:\ BLOCK)?-----|\Z)
    """,
    re.X,
)

# The first group (the name, header or scheme) is kept; the value after it is masked.
_ASSIGNMENTS = (
    re.compile(r"(\bbearer\s+)[A-Za-z0-9._~+/=-]{12,}", re.I),
    re.compile(
        r"""(authorization["']?\s*[=:]\s*["']?(?:basic|bearer|token)?\s*)[^\s'",;]{8,}""", re.I
    ),
    re.compile(r"""((?:api[_-]?key|token|secret)["']?\s*[=:]\s*["']?)[^\s'",;]{8,}""", re.I),
    re.compile(r"""((?:password|passwd)["']?\s*[=:]\s*["']?)[^\s'",;]{3,}""", re.I),
    re.compile(r"(://[^/\s:@]+:)[^/\s@]+(?=@)"),  # credentials in a URL
)


def secret_name_pattern() -> str:
    """The regular expression (case-insensitive) of variable names whose values are secret:
    for a process elsewhere (a Ray node) that masks its own environment's secrets."""
    return _SECRET_NAME.pattern


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named variables in ``env`` (default: os.environ), longest first."""
    env = os.environ if env is None else env
    # names first: only the values of secret-named variables are read (os.environ decodes
    # each value it hands out)
    named = [env[k] for k in env if _SECRET_NAME.search(k)]
    return sorted({v for v in named if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)


def known_secrets(*groups: Iterable[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Every value to mask, longest first: this process's secret-named variables, those of
    ``env`` (an agent's environment), and ``groups`` (e.g. the configuration's)."""
    found = {*secret_values(), *(secret_values(env) if env is not None else ())}
    found.update(value for group in groups for value in group)
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with known secret values and token-shaped strings replaced by ``[REDACTED]``."""
    for value in secret_values() if secrets is None else secrets:
        if value:
            text = text.replace(value, MASK)
    text = _TOKEN_SHAPES.sub(MASK, text)
    for pattern in _ASSIGNMENTS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redaction_rules() -> list[tuple[str, int, int]]:
    """The token shapes and assignments :func:`redact` masks, as ``(pattern, flags, kept
    group)`` triples: how a process that cannot import chump (the agent's supervisor, which
    masks the logs as it writes them) applies the same rules."""
    rules = [(_TOKEN_SHAPES.pattern, int(_TOKEN_SHAPES.flags), 0)]
    return rules + [(p.pattern, int(p.flags), 1) for p in _ASSIGNMENTS]


LINE_LIMIT = 2048  # characters of one line kept in a record (the log keeps all of it)
NOTES_LIMIT = 16384  # characters of a reflection's notes


def clip(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a visible marker saying how much was cut.

    Redact before clipping: a secret cut in two would no longer be recognised.
    """
    if len(text) <= limit:
        return text
    marker = " [... {} more characters cut]"
    keep = max(limit - len(marker.format(len(text))), 0)
    return text[:keep] + marker.format(len(text) - keep)


def bounded(text: str, limit: int = LINE_LIMIT, secrets: Iterable[str] | None = None) -> str:
    """``text`` redacted, then cut to ``limit`` (the order matters, see :func:`clip`).

    Only the first ``4 * limit`` characters are redacted: the cut keeps less than that, so no
    half of a secret at the edge of that window survives it, and a 20 MB line costs no more
    than a short one.
    """
    window = redact(text[: 4 * limit], secrets)
    if len(text) <= 4 * limit:
        return clip(window, limit)
    marker = " [... {} more characters cut]"
    keep = max(limit - len(marker.format(len(text))), 0)
    return window[:keep] + marker.format(len(text) - keep)


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, carriage
    returns, newlines), line separators and bidirectional overrides shown as ``\\xNN``."""
    return _UNPRINTABLE.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )
