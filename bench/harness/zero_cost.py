"""``--only null``: the run loop with the zero-cost model alone, and its per-stage cost table.

What the lead reruns after each change to the loop: the mix on the broker, the null-model
backlog run at each ``--batch-sizes`` in one child (the best counts), then, with stages, one
more run under py-spy at the best batch size.  No limit, no naive loop, no real model.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from consumers.connection import KafkaConnection
from models.saving import read_info

from . import kafka_io
from .child import run_in_child
from .kafka_io import Topics
from .machine import machine_details
from .mix import MixOptions, MixStats, build, describe, unit_texts
from .pipeline_run import BacklogRun
from .run import HarnessOptions
from .stages import StageTable


@dataclass(frozen=True)
class ZeroCostResult:
    """The zero-cost runs of ``--only null``."""

    options: HarnessOptions
    model: str
    produced: int
    mix: MixStats
    runs: list[BacklogRun]
    peak_rss_bytes: int
    stages: StageTable | None
    stages_error: str = ""
    stages_raw: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    seconds: float = 0.0

    @property
    def best(self) -> BacklogRun:
        """The batch size with the highest throughput."""
        return max(self.runs, key=lambda r: r.msg_per_s)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings)."""
        return {**asdict(self), "options": self.options.as_dict()}


def run_zero_cost(options: HarnessOptions, connection: KafkaConnection) -> ZeroCostResult:
    """The null-model backlog runs (and the stage table) on the harness's mix."""
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    mix_options = MixOptions(count=options.count, seed=options.seed)
    messages = build(mix_options)
    stats = describe(mix_options, messages, unit_texts(messages, mix_options.max_sentences))
    inputs = Topics.fresh("in")
    kafka_io.create(connection, inputs, options.partitions)
    kafka_io.produce(connection, inputs, messages, progress=options.progress, desc="backlog")
    plan = options.plan(connection, inputs, len(messages), loads=(), profile=False,
                        null_model=True)
    side = run_in_child(plan, messages)
    info = read_info(options.model_dir)
    return ZeroCostResult(
        options=options,
        model=f"{info.name}@{info.version}",
        produced=len(messages),
        mix=stats,
        runs=side.runs,
        peak_rss_bytes=side.peak_rss_bytes,
        stages=side.stages,
        stages_error=side.stages_error,
        stages_raw=side.stages_raw,
        machine=machine_details(options.device, side.torch_threads),
        started_at=started_at.isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - clock, 1),
    )
