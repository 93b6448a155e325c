"""Agent stand-in that writes stdout lines and 100 stderr problem lines mixed with noise.

Problem lines cycle through WARN, error, Fail and PANIC (mixed case); noise lines hold no
keyword, so the stderr ring must not keep them.
"""

from __future__ import annotations

import sys

KINDS = ("WARN", "error:", "Fail", "PANIC")

for i in range(3):
    print(f"out {i}", flush=True)
for i in range(100):
    print(f"{KINDS[i % 4]} line {i}", file=sys.stderr, flush=True)
    if i % 10 == 0:
        print(f"info {i}", file=sys.stderr, flush=True)
