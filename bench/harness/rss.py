"""Resident memory of this process: the peak so far and the current value.

The run loop side runs in a child process of its own (:mod:`bench.harness.pipeline_run`),
so its peak is the run loop's alone, not the harness's with two more models loaded.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's own memory since it started.

    Linux: ``VmHWM`` of ``/proc/self/status``.  Not ``getrusage``: its ``ru_maxrss`` survives
    ``exec``, so a spawned child (fork + exec) reports at least the parent's resident size
    at the fork; the harness's run-loop child showed the harness's 1.35 GB that way.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_bytes() -> int:
    """Resident set size now: psutil when installed, else ``/proc/self/statm``."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        statm = Path("/proc/self/statm")
        if not statm.exists():
            return peak_rss_bytes()
        pages = int(statm.read_text(encoding="ascii").split()[1])
        return pages * resource.getpagesize()
    return int(psutil.Process().memory_info().rss)


def mib(n_bytes: int) -> float:
    """Bytes as MiB, one decimal."""
    return round(n_bytes / (1024 * 1024), 1)
