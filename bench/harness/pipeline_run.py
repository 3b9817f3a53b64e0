"""The real run loop end to end: backlog runs per batch size, paced runs per offered load.

``service(...)`` wires exactly what ``attnwatch run`` runs: Kafka source, decoding,
classifier, SQLite store, enriched and dead-letter topics, alert evaluator, retention,
metrics and offset commits.  Two kinds of run, each with its own topics, group and store:

- **backlog**, once per batch size: the whole mix is already on the input topics;
  throughput is messages handled / time from the first record polled to the last commit;
- **paced**, once per load: the parent process sends at ``load`` x the best backlog rate
  (event time stamped at send), and the run loop's ``end_to_end_latency`` observations
  (event time to durably written) give the percentiles.

:func:`pipeline_side` runs them all with the model loaded once; :mod:`bench.harness.child`
runs it in a process of its own.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from attnwatch.service import load_classifier, service
from attnwatch.settings import Settings, load_settings
from consumers.connection import KafkaConnection
from models.classifier import TextClassifier
from models.saving import read_info
from pipeline.metrics import Metrics
from pipeline.stream.runner import Runner, RunReport

from . import kafka_io
from .kafka_io import Topics
from .mix import percentile
from .null_model import NullClassifier
from .probes import LatencyRecorder, Timing, fetched_from_all
from .profiling import RunProfile
from .rss import current_rss_bytes, peak_rss_bytes
from .stage_probe import StageRun
from .stages import StageTable

#: How often the loop samples consumer lag (default 10 s); cheap: no request is sent.
LAG_INTERVAL_S = 0.5


@dataclass(frozen=True)
class PipelinePlan:
    """Everything the child needs (picklable)."""

    model_dir: Path
    device: str
    connection: KafkaConnection
    inputs: Topics
    count: int
    batch_sizes: tuple[int, ...]
    batch_wait_ms: int
    loads: tuple[float, ...]
    paced_count: int
    partitions: int = 3
    torch_threads: int = 0
    timeout_s: float = 900.0
    progress: bool = True
    profile: bool = False
    #: Run with :class:`~bench.harness.null_model.NullClassifier` (no model: the loop's own cost).
    null_model: bool = False
    #: One more backlog run at the best batch size under py-spy: the per-stage cost table.
    stages: bool = False
    #: py-spy with native frames in the stage run: the GIL's waits apart, at 2-6x the cost.
    stages_native: bool = False
    #: The prediction cache's budget (``stream.prediction_cache_mb``).  Off in the measured
    #: runs: the mix draws its texts from the seed pools, so two thirds of its units repeat,
    #: which no real stream does; the cached run is reported on its own row.
    prediction_cache_mb: float = 0.0


@dataclass(frozen=True)
class PaceRequest:
    """The child asks the parent to send ``count`` messages at ``rate`` msg/s to ``topics``."""

    topics: Topics
    rate: float
    count: int


@dataclass(frozen=True)
class BacklogRun:
    """One batch size on the whole mix; every count should equal the messages produced."""

    batch_size: int
    handled: int
    enriched: int
    dead_letters: int
    stored: int
    enriched_topic: int
    batches: int
    seconds: float
    msg_per_s: float
    peak_rss_bytes: int
    load_avg: float


@dataclass(frozen=True)
class PacedRun:
    """One offered load: end-to-end latency percentiles in seconds."""

    load: float
    batch_size: int
    offered_msg_per_s: float
    handled: int
    stored: int
    observations: int
    handled_msg_per_s: float
    latency_s: dict[str, float]
    load_avg: float
    sent_msg_per_s: float = 0.0


@dataclass(frozen=True)
class PipelineSide:
    """Every run of the child plus its memory and thread count."""

    runs: list[BacklogRun]
    paced: list[PacedRun]
    rss_model_loaded_bytes: int
    peak_rss_bytes: int
    torch_threads: int
    profile: str = ""
    #: The per-stage cost of one more (profiled) run at the best batch size.
    stages: StageTable | None = None
    #: Why there is no stage table although one was asked for.
    stages_error: str = ""
    #: py-spy's collapsed stacks of the stage run (written next to the results).
    stages_raw: str = ""

    @property
    def best(self) -> BacklogRun:
        """The batch size with the highest throughput (the sustainable rate)."""
        return max(self.runs, key=lambda r: r.msg_per_s)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def settings_for(plan: PipelinePlan, topics: Topics, batch_size: int, store: Path) -> Settings:
    """The run loop's settings for one run: its topics, group and store, the plan's batching."""
    return load_settings(
        store_url=f"sqlite:///{store}",
        model_dir=plan.model_dir,
        device=plan.device,
        torch_threads=plan.torch_threads,
        topic_chat=topics.chat,
        topic_news=topics.news,
        topic_enriched=topics.enriched,
        topic_deadletter=topics.deadletter,
        topic_alerts=topics.alerts,
        group_id=topics.group,
        partitions=plan.partitions,
        batch_max_size=batch_size,
        batch_max_wait_ms=plan.batch_wait_ms,
        metrics_port=0,
        log_level="WARNING",
        # The lag gauge tells a paced run when every partition is being fetched from.
        lag_interval_s=LAG_INTERVAL_S,
        stream={"prediction_cache_mb": plan.prediction_cache_mb},
    )


def run_until(runner: Runner, expected: int, timeout_s: float, desc: str, progress: bool
              ) -> RunReport:
    """Run the loop in this thread until ``expected`` records are handled (or time runs out)."""
    stop, timed_out = threading.Event(), threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        with tqdm(total=expected, desc=desc, unit="msg", disable=not progress) as bar:
            while not stop.wait(0.02):
                done = runner.totals.enriched + runner.totals.dead_letters
                bar.update(done - bar.n)
                if done >= expected:
                    stop.set()
                elif time.monotonic() > deadline:
                    timed_out.set()
                    stop.set()

    watcher = threading.Thread(target=watch, name="bench-watch", daemon=True)
    watcher.start()
    try:
        report = runner.run(stop)
    finally:
        stop.set()
        watcher.join()
    if timed_out.is_set():
        msg = f"{desc}: {report.enriched + report.dead_letters} of {expected} after {timeout_s} s"
        raise TimeoutError(msg)
    return report


def backlog_run(plan: PipelinePlan, classifier: TextClassifier, batch_size: int,
                profile: RunProfile | None = None, stages: StageRun | None = None
                ) -> BacklogRun:
    """The whole mix, already on the input topics, through the loop at ``batch_size``.

    ``profile`` (cProfile) or ``stages`` (py-spy and counters) instrument the run; such a run
    is never one of the measured ones.
    """
    topics = plan.inputs.with_fresh_outputs(f"b{batch_size}")
    kafka_io.create(plan.connection, topics, plan.partitions)
    with tempfile.TemporaryDirectory(prefix="attnwatch-bench-") as tmp:
        settings = settings_for(plan, topics, batch_size, Path(tmp) / "store.db")
        with service(settings, plan.connection, classifier=classifier) as svc:
            if stages is not None:
                # Before Timing: the run's first record counts once py-spy is sampling.
                stages.attach(svc, classifier, plan.count)
            timing = Timing(svc.source)
            instrumented = profile is not None or stages is not None
            desc = f"attnwatch batch {batch_size}" + (" (profiled)" if instrumented else "")
            if profile is None:
                report = run_until(svc.runner, plan.count, plan.timeout_s, desc, plan.progress)
            else:
                profile.attach(svc.runner)
                with profile.polling_thread():
                    report = run_until(svc.runner, plan.count, plan.timeout_s, desc,
                                       plan.progress)
            if stages is not None:
                stages.table = stages.finish(batch_size=batch_size,
                                             handled=report.enriched + report.dead_letters,
                                             wall_s=timing.seconds)
            stored = svc.store.count()
    handled = report.enriched + report.dead_letters
    return BacklogRun(
        batch_size=batch_size,
        handled=handled,
        enriched=report.enriched,
        dead_letters=report.dead_letters,
        stored=stored,
        enriched_topic=kafka_io.count_records(plan.connection, topics.enriched, report.enriched),
        batches=report.batches,
        seconds=timing.seconds,
        msg_per_s=handled / timing.seconds if timing.seconds > 0 else 0.0,
        peak_rss_bytes=peak_rss_bytes(),
        load_avg=os.getloadavg()[0],
    )


def paced_run(plan: PipelinePlan, classifier: TextClassifier, batch_size: int, load: float,
              rate: float, request: Callable[[PaceRequest], None]) -> PacedRun:
    """``plan.paced_count`` messages offered at ``rate`` msg/s; latency from the histogram."""
    topics = Topics.fresh(f"p{round(load * 100)}")
    kafka_io.create(plan.connection, topics, plan.partitions)
    metrics = Metrics()
    recorder = LatencyRecorder(metrics.end_to_end_latency)
    metrics.end_to_end_latency = recorder  # type: ignore[assignment]
    ready = fetched_from_all(metrics, topics, plan.partitions)
    with tempfile.TemporaryDirectory(prefix="attnwatch-bench-") as tmp:
        settings = settings_for(plan, topics, batch_size, Path(tmp) / "store.db")
        with service(settings, plan.connection, classifier=classifier, metrics=metrics) as svc:
            timing = Timing(svc.source)

            def start_pacing() -> None:
                # Offered load starts once the loop is consuming, not while the group forms.
                kafka_io.wait_for(ready, plan.timeout_s, "first fetch from every partition")
                request(PaceRequest(topics, rate, plan.paced_count))

            threading.Thread(target=start_pacing, name="bench-pace", daemon=True).start()
            report = run_until(svc.runner, plan.paced_count, plan.timeout_s,
                               f"attnwatch at {load:.0%} load", plan.progress)
            stored = svc.store.count()
    count = metrics.registry.get_sample_value("attnwatch_end_to_end_latency_seconds_count")
    handled = report.enriched + report.dead_letters
    return PacedRun(
        load=load,
        batch_size=batch_size,
        offered_msg_per_s=rate,
        handled=handled,
        stored=stored,
        observations=int(count or 0),
        handled_msg_per_s=handled / timing.seconds if timing.seconds > 0 else 0.0,
        latency_s=latency_summary(recorder.values),
        load_avg=os.getloadavg()[0],
    )


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, p50, p90, p95, p99 and max in seconds (nearest rank); empty without values."""
    ordered = sorted(values)
    if not ordered:
        return {}
    summary = {"mean": round(statistics.fmean(ordered), 4)}
    summary.update({f"p{q}": percentile(ordered, q) for q in (50, 90, 95, 99)})
    summary["max"] = ordered[-1]
    return summary


def pipeline_side(plan: PipelinePlan, request: Callable[[PaceRequest], None]) -> PipelineSide:
    """Every backlog and paced run of ``plan`` in this process, the model loaded once.

    With ``plan.profile``, one more backlog run at the best batch size is profiled; it is
    not one of the measured runs (cProfile slows the Python parts).
    """
    settings = load_settings(
        model_dir=plan.model_dir, device=plan.device, torch_threads=plan.torch_threads
    )
    classifier: TextClassifier = (
        NullClassifier(read_info(plan.model_dir)) if plan.null_model else load_classifier(settings)
    )
    classifier.predict(["warm-up: the first forward allocates", "and is not measured."])
    loaded = current_rss_bytes()
    runs = [backlog_run(plan, classifier, size) for size in plan.batch_sizes]
    best = max(runs, key=lambda r: r.msg_per_s)
    paced = [
        paced_run(plan, classifier, best.batch_size, load, load * best.msg_per_s, request)
        for load in plan.loads
    ]
    profile_text = ""
    if plan.profile:
        profile = RunProfile()
        backlog_run(plan, classifier, best.batch_size, profile)
        profile_text = profile.report()
    table, error, raw = None, "", ""
    if plan.stages:
        title = "zero-cost model" if plan.null_model else "default model"
        if plan.model_dir.name != "default" and not plan.null_model:
            title = f"model {plan.model_dir.name}"
        try:
            staged = StageRun(f"{title}, batch_max_size {best.batch_size}",
                              native=plan.stages_native)
            run = backlog_run(plan, classifier, best.batch_size, stages=staged)
            table = replace(staged.table, measured_msg_per_s=round(best.msg_per_s, 1),
                            notes=[f"profiled run {run.msg_per_s:.1f} msg/s"]) \
                if staged.table is not None else None
            raw = staged.spy.text
        except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
            # The stage table is a diagnosis: without py-spy (or ptrace) the runs still count.
            error = f"{type(exc).__name__}: {exc}"[:500]
    return PipelineSide(runs, paced, loaded, peak_rss_bytes(), torch.get_num_threads(),
                        profile_text, table, error, raw)
