"""One harness run: build the mix, then the limit, the naive loop and the run loop, back to back."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch

from consumers.connection import KafkaConnection
from models.classifier import AttentionTextClassifier
from models.saving import read_info
from models.torch_thread import on_torch_thread

from . import kafka_io
from .child import run_in_child
from .gpu import GpuRows, gpu_rows, wants_gpu
from .kafka_io import Topics
from .limit import LimitResult, measure_limit
from .machine import machine_details
from .mix import Message, MixOptions, MixStats, build, describe, unit_texts
from .naive import NaiveResult, run_naive, warm_up
from .pipeline_run import BacklogRun, PipelinePlan, PipelineSide
from .rss import peak_rss_bytes
from .stages import StageTable

#: The prediction cache's budget in the cached run (the setting's default).
CACHE_MB = 64.0


@dataclass(frozen=True)
class HarnessOptions:
    """What to measure; the defaults are issue 14's reference run."""

    model_dir: Path = Path("var/models/default")
    count: int = 2000
    batch_sizes: tuple[int, ...] = (32, 64, 128)
    device: str = "cpu"
    #: Offered loads of the paced runs, as fractions of the best backlog throughput.
    loads: tuple[float, ...] = (0.5, 0.9)
    paced_count: int = 1000
    batch_wait_ms: int = 50
    limit_batch_sizes: tuple[int, ...] = (16, 64, 128)
    limit_repeats: int = 2
    partitions: int = 3
    torch_threads: int = 0
    seed: int = 0
    timeout_s: float = 900.0
    progress: bool = True
    profile: bool = False
    #: Other model directories (fast tiers: an ONNX export, a distilled student) run through
    #: the run loop at the default's best batch size, for their ratio to the default.
    tiers: tuple[Path, ...] = ()
    #: One more backlog run each for the zero-cost and the real model under py-spy, for the
    #: per-stage cost table (:mod:`bench.harness.stages`).
    stages: bool = False
    #: py-spy ``--native`` in the stage runs: GIL waits apart from work, at 2-6x the overhead.
    stages_native: bool = False
    #: ``all`` the sides, or ``null``: only the zero-cost run (and its stage table).
    only: str = "all"
    #: The device asked for when it is not here (``--device cuda`` without CUDA): the sides
    #: ran on ``device`` (the CPU) and the GPU rows are empty with this reason.
    gpu_missing: str = ""
    requested_device: str = ""

    def plan(
        self, connection: KafkaConnection, inputs: Topics, count: int, **changes: Any
    ) -> PipelinePlan:
        """The run-loop child's plan for these options on ``inputs`` (``changes`` on top)."""
        plan = PipelinePlan(
            model_dir=self.model_dir,
            device=self.device,
            connection=connection,
            inputs=inputs,
            count=count,
            batch_sizes=self.batch_sizes,
            batch_wait_ms=self.batch_wait_ms,
            loads=self.loads,
            paced_count=self.paced_count,
            partitions=self.partitions,
            torch_threads=self.torch_threads,
            timeout_s=self.timeout_s,
            progress=self.progress,
            profile=self.profile,
            stages=self.stages,
            stages_native=self.stages_native,
        )
        return replace(plan, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings)."""
        data = asdict(self)
        data["model_dir"] = str(self.model_dir)
        data["tiers"] = [str(t) for t in self.tiers]
        return data

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            msg = f"batch sizes must be >= 1, got {list(self.batch_sizes)}"
            raise ValueError(msg)
        if any(not 0 < load <= 1.5 for load in self.loads):
            msg = f"loads are fractions of the sustainable rate in (0, 1.5], got {self.loads}"
            raise ValueError(msg)
        if self.only not in ("all", "null"):
            msg = f"only is 'all' or 'null', got {self.only!r}"
            raise ValueError(msg)
        if self.paced_count < 1 or self.count < 1:
            msg = "count and paced_count must be >= 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class TierRun:
    """A fast tier's run loop on the same mix, at the default's best batch size."""

    model_dir: str
    model: str
    run: BacklogRun
    peak_rss_bytes: int
    #: Its msg/s over the default model's best run-loop msg/s, measured in the same run.
    over_default: float


@dataclass(frozen=True)
class HarnessResult:
    """Everything one run measured, with where and on what."""

    options: HarnessOptions
    model: str
    produced: int
    mix: MixStats
    limit: LimitResult
    naive: NaiveResult
    pipeline: PipelineSide
    harness_peak_rss_bytes: int
    machine: dict[str, str] = field(default_factory=dict)
    tiers: list[TierRun] = field(default_factory=list)
    #: The run loop with a zero-cost model at the best batch size: the loop's own cost.
    null_model: BacklogRun | None = None
    #: The run loop with the prediction cache on (:data:`CACHE_MB`), at the best batch size.
    cached: BacklogRun | None = None
    started_at: str = ""
    seconds: float = 0.0
    #: Per-stage cost tables by run ("zero-cost", "real"), and why one is missing.
    stages: dict[str, StageTable] = field(default_factory=dict)
    stages_errors: dict[str, str] = field(default_factory=dict)
    #: py-spy's collapsed stacks by run (written beside the results, not into the JSON).
    stages_raw: dict[str, str] = field(default_factory=dict)
    gpu: GpuRows | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings)."""
        return {**asdict(self), "options": self.options.as_dict()}


def run_harness(options: HarnessOptions, connection: KafkaConnection) -> HarnessResult:
    """Measure the three sides on one mix through the broker at ``connection``."""
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    if options.torch_threads:
        torch.set_num_threads(options.torch_threads)
    mix_options = MixOptions(count=options.count, seed=options.seed)
    messages = build(mix_options)
    per_message = unit_texts(messages, mix_options.max_sentences)
    stats = describe(mix_options, messages, per_message)

    limit = measure_limit(options.model_dir, per_message, device=options.device,
                          batch_sizes=options.limit_batch_sizes, repeats=options.limit_repeats,
                          progress=options.progress)
    gc.collect()

    inputs = Topics.fresh("in")
    kafka_io.create(connection, inputs, options.partitions)
    kafka_io.produce(connection, inputs, messages, progress=options.progress, desc="backlog")

    classifier = AttentionTextClassifier(options.model_dir, options.device)
    model = f"{classifier.info.name}@{classifier.info.version}"
    warm_up(classifier, [units[0] for units in per_message])
    # A naive loop is one thread doing everything: the torch thread itself, so its predict
    # calls are not handed over to another thread (decision 0024).
    naive = on_torch_thread(
        partial(run_naive, connection, inputs.with_fresh_outputs("naive"), len(messages),
                classifier, max_sentences=mix_options.max_sentences, progress=options.progress)
    )
    del classifier
    gc.collect()

    plan = options.plan(connection, inputs, len(messages))
    pipeline = run_in_child(plan, messages)
    null_side = backlog_only(plan, messages, pipeline.best.batch_size, null_model=True,
                             stages=options.stages)
    tiers = [measure_tier(plan, messages, tier, pipeline.best) for tier in options.tiers]
    cached = backlog_only(plan, messages, pipeline.best.batch_size,
                          prediction_cache_mb=CACHE_MB).best
    stages, errors = stage_tables({"zero-cost": null_side, "real": pipeline})
    return HarnessResult(
        options=options,
        model=model,
        produced=len(messages),
        mix=stats,
        limit=limit,
        naive=naive,
        pipeline=pipeline,
        harness_peak_rss_bytes=peak_rss_bytes(),
        machine=machine_details(options.device, pipeline.torch_threads),
        started_at=started_at.isoformat(timespec="seconds"),
        seconds=round(time.monotonic() - clock, 1),
        tiers=tiers,
        null_model=null_side.best,
        cached=cached,
        stages=stages,
        stages_errors=errors,
        stages_raw={name: side.stages_raw for name, side in
                    (("zero-cost", null_side), ("real", pipeline)) if side.stages_raw},
        gpu=gpu_of(options, limit, pipeline),
    )


def stage_tables(
    sides: dict[str, PipelineSide]
) -> tuple[dict[str, StageTable], dict[str, str]]:
    """The stage table of each side that has one, and the reason of each that has none."""
    tables = {name: side.stages for name, side in sides.items() if side.stages is not None}
    errors = {name: side.stages_error for name, side in sides.items() if side.stages_error}
    return tables, errors


def gpu_of(options: HarnessOptions, limit: LimitResult, pipeline: PipelineSide
           ) -> GpuRows | None:
    """The GPU rows when a GPU was asked for (empty, with the reason, when none is here)."""
    requested = options.requested_device or options.device
    if not wants_gpu(requested):
        return None
    return gpu_rows(requested, options.gpu_missing, limit_msg_per_s=limit.msg_per_s,
                    limit_batch_size=limit.batch_size,
                    loop={r.batch_size: r.msg_per_s for r in pipeline.runs})


def backlog_only(
    plan: PipelinePlan, messages: Sequence[Message], batch_size: int, **changes: Any
) -> PipelineSide:
    """One backlog run of ``plan`` with ``changes`` at ``batch_size`` in a fresh child:
    no paced runs, no profile, no stage table unless ``changes`` asks."""
    settings: dict[str, Any] = {"batch_sizes": (batch_size,), "loads": (), "profile": False,
                                "stages": False, **changes}
    return run_in_child(replace(plan, **settings), messages)


def measure_tier(
    plan: PipelinePlan, messages: Sequence[Message], model_dir: Path, default: BacklogRun
) -> TierRun:
    """The run loop with ``model_dir`` (any runtime) on the same backlog, in a fresh child."""
    side = backlog_only(plan, messages, default.batch_size, model_dir=model_dir)
    info = read_info(model_dir)
    return TierRun(
        model_dir=str(model_dir),
        model=f"{info.name}@{info.version}",
        run=side.best,
        peak_rss_bytes=side.peak_rss_bytes,
        over_default=round(side.best.msg_per_s / default.msg_per_s, 3),
    )
