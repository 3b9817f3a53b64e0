"""The machine a harness run measured on: CPU, cores, memory, device and library versions.

Its own module so that the run (:mod:`~bench.harness.run`, which records these details) and the
report (:mod:`~bench.harness.report`, which prints a run) do not import each other.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import torch

_PACKAGES = ("torch", "transformers", "kafka-python", "sqlalchemy", "attnwatch")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_details(device: str, loop_torch_threads: int) -> dict[str, str]:
    """CPU, cores, memory, device, torch threads and library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    details = {
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": device,
        "torch threads": f"{torch.get_num_threads()} harness, {loop_torch_threads} run loop",
    }
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text(encoding="ascii").split()[1])
        details["memory"] = f"{total_kib / 1024 / 1024:.1f} GiB"
    if device.startswith("cuda") and torch.cuda.is_available():
        details["gpu"] = torch.cuda.get_device_name(torch.device(device))
    for name in _PACKAGES:
        try:
            details[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            details[name] = "not installed"
    return details
