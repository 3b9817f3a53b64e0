"""The attnwatch commands the image test runs in the container, by compose service name.

``deploy/compose.yaml`` must give its attnwatch services exactly these commands
(``tests/unit/deploy/test_compose.py``), so every command the stack runs has run in the
image that `make image` builds.
"""

from __future__ import annotations

COMMANDS: dict[str, list[str]] = {
    "topic-init": ["topics", "--replication", "1"],
    "migrate": ["migrate"],
    "run": ["run"],
    "dashboard": ["dashboard"],
}
