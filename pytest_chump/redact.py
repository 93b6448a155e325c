"""Removes secrets from text before any log, sink or reflection sees it.

Two nets: values of environment variables named like secrets (``*_KEY``, ``*_TOKEN``,
``*_SECRET``, ``*PASSWORD*``), and token shapes of well-known services.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET|PASSWORD|_PAT)$|^(GH|GITHUB)_TOKEN$", re.I)
_TOKEN_SHAPES = re.compile(
    r"""
    sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}            # Anthropic / OpenAI keys
    | gh[pousr]_[A-Za-z0-9]{20,}                    # GitHub tokens
    | github_pat_[A-Za-z0-9_]{20,}
    | xox[abprs]-[A-Za-z0-9-]{10,}                  # Slack
    | AKIA[0-9A-Z]{16}                              # AWS access key id
    | AIza[0-9A-Za-z_-]{30,}                        # Google API key
    | (?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}         # Authorization headers
    | (?i:(?:api[_-]?key|token|secret|password)\s*[=:]\s*)[^\s'"]{8,}
    """,
    re.X,
)


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named variables in ``env`` (default: os.environ), longest first."""
    env = os.environ if env is None else env
    found = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with known secret values and token-shaped strings replaced by ``[REDACTED]``."""
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)
