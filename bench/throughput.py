"""Throughput of the whole pipeline against the model's raw forward speed, in one run.

    python bench/throughput.py [--model-dir var/models/default] [--count 2000]

Measures, on the same texts and the same machine, back to back:
  1. raw model: ``classifier.predict`` on batches of ``--batch-size`` (the ceiling);
  2. naive loop: one ``predict`` call per message (what batching saves);
  3. pipeline: the run loop through a real embedded Tansu broker, SQLite store,
     enriched and dead-letter topics, offsets committed after every batch.
Reports messages per second and the ratios to (1); ratios are what to compare
across machines, not absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from pathlib import Path

import torch
from tqdm import tqdm

from consumers.broker import EmbeddedBroker
from consumers.replay import replay
from consumers.topics import ensure_topics
from models.classifier import AttentionTextClassifier
from pipeline.config import load_settings
from pipeline.demo.scenario import ScenarioOptions, scenario
from pipeline.stream.service import service


def raw_model(classifier, texts, batch_size):
    started = time.perf_counter()
    for start in tqdm(range(0, len(texts), batch_size), desc="raw model", unit="batch"):
        classifier.predict(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def naive_loop(classifier, texts):
    started = time.perf_counter()
    for text in tqdm(texts, desc="naive loop", unit="msg"):
        classifier.predict([text])
    return len(texts) / (time.perf_counter() - started)


def pipeline(model_dir, items, batch_size):
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        settings = load_settings(
            store_url=f"sqlite:///{tmp}/bench.db",
            model_dir=model_dir,
            metrics_port=0,
            batch_max_size=batch_size,
            batch_max_wait_ms=50,
            log_level="WARNING",
        )
        ensure_topics(broker.connection, settings.topics(), settings.partitions)
        replay(broker.connection, items, rate=0, total=len(items), progress=True)
        with service(settings, broker.connection) as svc:
            times: list[float] = []
            poll, commit = svc.source.poll, svc.source.commit

            def timed_poll(timeout_s, max_records):
                records = poll(timeout_s, max_records)
                if records and not times:
                    times.append(time.perf_counter())
                return records

            def timed_commit(offsets):
                ok = commit(offsets)
                times[1:] = [time.perf_counter()]
                return ok

            svc.source.poll, svc.source.commit = timed_poll, timed_commit  # type: ignore[method-assign]
            report = svc.runner.run(threading.Event(), idle_exit_s=15)
        return report.enriched + report.dead_letters, report.enriched / (times[1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/default"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--naive-count", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    items = list(scenario("chat", "news", ScenarioOptions(count=args.count, bad_rate=0.0)))
    texts = []
    for item in items:
        payload = item.payload or {}
        text = payload.get("text") or payload.get("headline")
        if payload.get("body"):
            text = f"{text}\n{payload['body']}"
        texts.append(str(text))
    classifier = AttentionTextClassifier(args.model_dir, "cpu")
    classifier.predict(texts[:8])  # warm-up

    raw = raw_model(classifier, texts, args.batch_size)
    naive = naive_loop(classifier, texts[: args.naive_count])
    handled, piped = pipeline(args.model_dir, items, args.batch_size)
    result = {
        "machine": f"{platform.machine()} {torch.get_num_threads()} torch threads",
        "model": f"{classifier.info.name}@{classifier.info.version}",
        "messages": handled,
        "raw_model_msg_s": round(raw, 1),
        "naive_loop_msg_s": round(naive, 1),
        "pipeline_msg_s": round(piped, 1),
        "pipeline_over_raw": round(piped / raw, 3),
        "naive_over_raw": round(naive / raw, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
