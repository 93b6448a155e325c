"""Agent stand-in that starts a sleeping child, prints the child's pid, then sleeps itself.

Stopping the agent must reach the child too: it shares the agent's process group.
"""

from __future__ import annotations

import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(child.pid, flush=True)
time.sleep(3600)
