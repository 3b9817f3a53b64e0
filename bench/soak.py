"""Soak run: the real pipeline under a sustained stream with bad input and SIGKILL restarts.

    python bench/soak.py [--count 100000] [--bad-rate 0.01] [--rate R] [--kills 3] [--seed 0]
                         [--model-dir DIR] [--store-url URL] [--deadline-s 1500]
                         [--out var/bench/soak]

An embedded Tansu broker, a replay thread producing ``pipeline.demo.scenario`` events at
``--rate`` (default: 70% of what the loop sustains here, measured first on a backlog), and the
run loop as ``attnwatch run`` subprocesses, killed with SIGKILL ``--kills`` times at random
points and restarted.  VmRSS of the loop is sampled every second.  At the end the store is read
back (``read_events``, ``read_dead_letters``) and compared with what the producer knows it
sent: every valid input id and every record's (topic, partition, offset).

Reports processed, dead-lettered by reason, duplicates and lost (both 0 expected), peak RSS
(``rss.png`` and the numbers) and the restarts survived; ``summary.json`` holds it all.  Exits
1 if anything was lost or duplicated, or the deadline passed first (reporting what it has).

Without ``--model-dir`` a tiny BERT is trained first (as ``tests/conftest.py``): the soak
measures the pipeline (Kafka, validation, store, commits, restarts), not the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition
from kafka.producer.future import RecordMetadata
from sqlalchemy.engine import Engine
from tqdm import tqdm

from attnwatch.settings import Settings, load_settings
from consumers.broker import EmbeddedBroker
from consumers.connection import KafkaConnection
from consumers.producer import make_producer
from consumers.replay import ReplayItem
from consumers.topics import ensure_topics
from pipeline.demo.scenario import ScenarioOptions, scenario
from pipeline.store import open_store, read_dead_letters, read_events
from pipeline.store.attempts import attempts_table
from pipeline.store.tables import dead_letters_table, events_table

Coord = tuple[str, int, int]

#: The tiny BERT of tests/conftest.py (the bench cannot import the tests package).
TINY_BERT = {
    "hidden_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "max_position_embeddings": 128,
}
#: kafka-python's default fetch_max_bytes (50 MiB).
FETCH_MAX_BYTES = 52_428_800
NOTE = "tiny model: the soak measures the pipeline (Kafka, store, commits, restarts), not the model"


def train_tiny(directory: Path) -> Path:
    from models.data.loading import seed_examples
    from models.training.trainer import Trainer
    from models.training.training_args import TrainingArgs

    train, test, digest = seed_examples()
    args = TrainingArgs(
        output_dir=directory,
        random_encoder_config=TINY_BERT,
        epochs=3,
        batch_size=32,
        learning_rate=5e-3,
        head_learning_rate=5e-3,
        max_length=48,
        device="cpu",
        progress=False,
        name="soak-tiny",
    )
    Trainer(args).train(train[::3], test[::4], digest)
    return directory


@dataclass
class Producer:
    """Sends scenario items at a steady rate and records where every one of them landed."""

    connection: KafkaConnection
    settings: Settings
    items: Iterator[ReplayItem]
    rate: float
    stop: threading.Event
    total: int
    sent: int = 0
    failed: int = 0
    good: dict[str, Coord] = field(default_factory=dict)  # input id -> coordinates
    bad: set[Coord] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def acked(self) -> int:
        return len(self.good) + len(self.bad)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="soak-producer", daemon=True)
        thread.start()
        return thread

    def _input_id(self, item: ReplayItem) -> str | None:
        # The scenario's valid events always carry schema_version; its bad ones never do
        # (raw bytes, or a payload with a field missing or broken).
        payload = item.payload
        if item.raw is not None or payload is None or "schema_version" not in payload:
            return None
        if item.topic == self.settings.topic_chat:
            return f"chat:{payload['message_id']}"
        return f"news:{payload['article_id']}"

    def _landed(self, input_id: str | None, meta: RecordMetadata) -> None:
        coord = (meta.topic, meta.partition, meta.offset)
        if input_id is None:
            self.bad.add(coord)
        else:
            self.good[input_id] = coord

    def _lost(self, _exc: Exception) -> None:
        self.failed += 1

    def _run(self) -> None:
        producer = make_producer(self.connection)
        started = time.monotonic()
        try:
            for item in self.items:
                delay = started + self.sent / self.rate - time.monotonic() if self.rate else 0
                if self.stop.wait(max(0.0, delay)):
                    break
                future = producer.send(item.topic, key=item.key.encode(), value=item.value())
                future.add_callback(self._landed, self._input_id(item))
                future.add_errback(self._lost)
                self.sent += 1
            producer.flush()
        finally:
            producer.close()
            self.done.set()


class Loop:
    """``attnwatch run`` as a subprocess: started, sampled, killed and restarted."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "loop") -> None:
        self._env = env
        self._log_dir = log_dir
        self._name = name
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.lives = 0

    def start(self) -> None:
        self.lives += 1
        self._log = (self._log_dir / f"{self._name}-{self.lives}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "attnwatch", "run"],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def rss_mib(self) -> float | None:
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM (drain and commit); SIGKILL if it is still there after ``timeout_s``."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def handled_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        count = sa.select(sa.func.count())
        events = conn.execute(count.select_from(events_table)).scalar_one()
        letters = conn.execute(count.select_from(dead_letters_table)).scalar_one()
    return int(events) + int(letters)


def loop_env(settings: Settings, connection: KafkaConnection, model_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ATTNWATCH_BOOTSTRAP_SERVERS": connection.bootstrap_servers,
            "ATTNWATCH_STORE_URL": settings.store_url,
            "ATTNWATCH_MODEL_DIR": str(model_dir),
            "ATTNWATCH_TOPIC_CHAT": settings.topic_chat,
            "ATTNWATCH_TOPIC_NEWS": settings.topic_news,
            "ATTNWATCH_TOPIC_ENRICHED": settings.topic_enriched,
            "ATTNWATCH_TOPIC_DEADLETTER": settings.topic_deadletter,
            "ATTNWATCH_GROUP_ID": settings.group_id,
            "ATTNWATCH_METRICS_PORT": "0",
            "ATTNWATCH_DEVICE": "cpu",
            "ATTNWATCH_LOG_LEVEL": "WARNING",
        }
    )
    return env


def measure_rate(
    connection: KafkaConnection,
    model_dir: Path,
    work: Path,
    out: Path,
    count: int,
    seed: int,
    deadline: float,
) -> float:
    """Messages/s the loop sustains on a backlog of ``count`` events (its own topics and store)."""
    settings = load_settings(
        store_url=f"sqlite:///{work}/calibrate.db",
        topic_chat="calib-chat",
        topic_news="calib-news",
        topic_enriched="calib-enriched",
        topic_deadletter="calib-deadletter",
        group_id="calib",
        metrics_port=0,
    )
    ensure_topics(connection, settings.topics(), settings.partitions)
    items = scenario(
        settings.topic_chat, settings.topic_news, ScenarioOptions(count=count, seed=seed + 1)
    )
    producer = Producer(connection, settings, items, 0.0, threading.Event(), count)
    producer.start().join()
    engine = open_store(settings.store_url).engine
    loop = Loop(loop_env(settings, connection, model_dir), out, "calibrate")
    loop.start()
    first: tuple[float, int] | None = None
    handled, ended = 0, 0.0
    try:
        with tqdm(total=producer.acked, desc="calibrate", unit="msg") as bar:
            while handled < producer.acked and time.monotonic() < deadline:
                time.sleep(0.5)
                handled, ended = handled_rows(engine), time.monotonic()
                bar.update(handled - bar.n)
                if first is None and handled:
                    first = (ended, handled)
    finally:
        loop.stop(30)
        engine.dispose()
    if first is None or handled <= first[1]:
        msg = f"calibration run processed nothing: see {out}/calibrate-1.log"
        raise SystemExit(msg)
    return (handled - first[1]) / (ended - first[0])


def enriched_keys(
    connection: KafkaConnection, topic: str, expected: int, timeout_s: float
) -> Counter[bytes]:
    """Keys of every record on the enriched topic (stops 5 s after the last new one)."""
    # kafka-python 2.2 caps a response frame at 1,000,000 bytes by default, below one
    # partition's fetch (1 MiB): a backlog of enriched records fails the fetch, closes the
    # connection and retries (dpkp/kafka-python#3074).  Allow the whole fetch_max_bytes.
    consumer = KafkaConsumer(
        **connection.client_kwargs(),
        enable_auto_commit=False,
        fetch_max_bytes=FETCH_MAX_BYTES,
        receive_message_max_bytes=FETCH_MAX_BYTES + 1024 * 1024,
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    keys: Counter[bytes] = Counter()
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 5:
        for batch in consumer.poll(500).values():
            keys.update(record.key for record in batch)
            quiet_since = time.monotonic()
        if len(keys) >= expected and time.monotonic() - quiet_since > 1:
            break
    consumer.close()
    return keys


def compare(url: str, producer: Producer) -> dict[str, Any]:
    """What the store holds against what the producer sent."""
    events = read_events(url)
    letters = read_dead_letters(url)
    ids = events["input_id"].tolist()
    coords = list(
        zip(
            letters["source_topic"],
            letters["source_partition"].astype(int),
            letters["source_offset"].astype(int),
            strict=True,
        )
    )
    reason_of = dict(zip(coords, letters["reason"], strict=True))
    good_letters = [reason_of[c] for c in producer.good.values() if c in reason_of]
    bad_letters = [reason_of[c] for c in producer.bad if c in reason_of]
    stored = set(ids)
    both = [i for i, c in producer.good.items() if i in stored and c in reason_of]
    lost_good = [i for i, c in producer.good.items() if i not in stored and c not in reason_of]
    event_coords = set(
        zip(
            events["source_topic"],
            events["source_partition"].astype(int),
            events["source_offset"].astype(int),
            strict=True,
        )
    )
    return {
        "events_rows": len(ids),
        "dead_letter_rows": len(coords),
        "processed": sum(1 for i in producer.good if i in stored),
        "dead_lettered_by_reason": dict(Counter(reason_of.values()).most_common()),
        "valid_inputs_dead_lettered": dict(Counter(good_letters)),
        "bad_inputs_dead_lettered": len(bad_letters),
        "bad_inputs_stored_as_events": len(producer.bad & event_coords),
        "duplicates": {
            "events_same_input_id": len(ids) - len(stored),
            "dead_letters_same_coordinates": len(coords) - len(set(coords)),
            "both_event_and_dead_letter": len(both),
        },
        "lost": {
            "valid": len(lost_good),
            "bad": sum(1 for c in producer.bad if c not in reason_of and c not in event_coords),
            "examples": lost_good[:5],
        },
        "unexpected_rows": len(stored - producer.good.keys())
        + len(set(coords) - producer.bad - set(producer.good.values())),
    }


def plot(samples: list[dict[str, Any]], kills: list[float], count: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    lives = sorted({s["life"] for s in samples})
    for life in lives:
        part = [s for s in samples if s["life"] == life and s["rss_mib"] is not None]
        ax.plot(
            [s["t"] for s in part],
            [s["rss_mib"] for s in part],
            color="tab:blue",
            lw=1.2,
            label="loop VmRSS (MiB)" if life == lives[0] else None,
        )
    for i, t in enumerate(kills):
        ax.axvline(t, color="tab:red", ls="--", lw=1, label="SIGKILL + restart" if i == 0 else None)
    ax.set_xlabel("seconds since the first loop started")
    ax.set_ylabel("VmRSS (MiB)")
    ax.set_ylim(bottom=0)
    other = ax.twinx()
    other.plot(
        [s["t"] for s in samples],
        [s["handled"] for s in samples],
        color="tab:gray",
        lw=1,
        alpha=0.7,
        label="handled (events + dead letters)",
    )
    other.set_ylabel("records handled")
    other.set_ylim(0, count * 1.05)
    lines = ax.get_legend_handles_labels()
    more = other.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    ax.set_title(f"soak: {count:,} events, run loop RSS over time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def rss_at(samples: list[dict[str, Any]], handled: int) -> dict[str, Any] | None:
    """The first RSS sample taken once ``handled`` records were in the store."""
    for s in samples:
        if s["handled"] >= handled and s["rss_mib"] is not None:
            return {"t": s["t"], "life": s["life"], "rss_mib": round(s["rss_mib"], 1)}
    return None


def lives(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per process life: records handled, RSS after its first 1,000 records, at its end, peak.

    A leak shows as RSS growing between the first two within one life, more in longer lives.
    """
    summary = []
    for life in sorted({s["life"] for s in samples}):
        part = [s for s in samples if s["life"] == life and s["rss_mib"] is not None]
        if not part:
            continue
        first, last = part[0]["handled"], part[-1]["handled"]
        warm = next((s for s in part if s["handled"] >= first + 1000), None)
        summary.append(
            {
                "life": life,
                "handled": last - first,
                "rss_after_1000_mib": None if warm is None else round(warm["rss_mib"], 1),
                "rss_end_mib": round(part[-1]["rss_mib"], 1),
                "rss_peak_mib": round(max(s["rss_mib"] for s in part), 1),
            }
        )
    return summary


@dataclass
class Run:
    """What happened while the loop ran; filled in by :func:`drive`."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    unexpected_exits: list[int] = field(default_factory=list)
    handled: int = 0
    complete: bool = False
    final_exit_code: int | None = None
    wall_s: float = 0.0


def drive(
    loop: Loop,
    producer: Producer,
    engine: Engine,
    kill_at: list[int],
    deadline: float,
    rng: random.Random,
    shutdown_timeout_s: float,
) -> Run:
    """Sample every second, kill and restart at ``kill_at`` handled counts, stop when done."""
    run = Run()
    loop.start()
    t0 = time.monotonic()
    sender = producer.start()
    total = producer.total
    bars = (
        tqdm(total=total, desc="produced", unit="msg", position=0),
        tqdm(total=total, desc="handled ", unit="msg", position=1),
    )
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            run.handled = handled = handled_rows(engine)
            now = time.monotonic() - t0
            run.samples.append(
                {
                    "t": round(now, 1),
                    "life": loop.lives,
                    "rss_mib": loop.rss_mib(),
                    "handled": handled,
                    "produced": producer.sent,
                }
            )
            bars[0].update(producer.sent - bars[0].n)
            bars[1].update(handled - bars[1].n)
            last = run.kills[-1] if run.kills else None
            recovered = last is None or handled > last["handled"]
            if last is not None and recovered and "recovered_s" not in last:
                last["recovered_s"] = round(now - last["t"], 1)
            if producer.done.is_set() and handled >= producer.acked:
                run.complete = True
                break
            # Only once the restarted loop is handling again: a kill during start-up
            # would test start-up, not a batch in flight.
            if kill_at and handled >= kill_at[0] and recovered:
                kill_at.pop(0)
                time.sleep(rng.uniform(0, 1))  # land anywhere within a batch
                loop.kill()
                run.kills.append(
                    {"t": round(time.monotonic() - t0, 1), "handled": handled_rows(engine)}
                )
                loop.start()
            elif (code := loop.exited()) is not None:
                run.unexpected_exits.append(code)
                if len(run.unexpected_exits) > 5:
                    break
                loop.start()
    finally:
        for bar in bars:
            bar.close()
        producer.stop.set()
        run.final_exit_code = loop.stop(shutdown_timeout_s + 10)
        # Its delivery callbacks fill the sets that are compared next.
        sender.join(60)
    run.wall_s = time.monotonic() - t0
    return run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--bad-rate", type=float, default=0.01)
    parser.add_argument("--rate", type=float, help="messages/s; default 70%% of a measured run")
    parser.add_argument("--calibrate-count", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, help="a real model; default: train a tiny one")
    parser.add_argument("--store-url", help="default: SQLite in a temporary folder")
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=1500.0,
        help="from the start, training and calibration included",
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/soak"))
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    deadline = began + args.deadline_s
    note = NOTE if args.model_dir is None else f"model {args.model_dir}"

    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(log_file=args.out / "tansu.log") as broker,
    ):
        work = Path(tmp)
        model_dir = args.model_dir or train_tiny(work / "tiny")
        print(note, flush=True)
        connection = broker.connection
        rate, measured = args.rate, None
        if rate is None:
            measured = measure_rate(
                connection, model_dir, work, args.out, args.calibrate_count, args.seed, deadline
            )
            rate = round(0.7 * measured, 1)
            print(f"loop sustains {measured:.0f} msg/s on a backlog; soak rate {rate} msg/s")
        settings = load_settings(
            store_url=args.store_url or f"sqlite:///{work}/soak.db", metrics_port=0
        )
        ensure_topics(connection, settings.topics(), settings.partitions)
        engine = open_store(settings.store_url).engine
        if handled_rows(engine):
            print(f"store {settings.store_url} is not empty: give an empty one", file=sys.stderr)
            return 2
        options = ScenarioOptions(count=args.count, bad_rate=args.bad_rate, seed=args.seed)
        items = scenario(settings.topic_chat, settings.topic_news, options)
        producer = Producer(connection, settings, items, rate, threading.Event(), args.count)
        loop = Loop(loop_env(settings, connection, model_dir), args.out)
        kill_at = sorted(int(rng.uniform(0.1, 0.9) * args.count) for _ in range(args.kills))
        run = drive(loop, producer, engine, kill_at, deadline, rng, settings.shutdown_timeout_s)
        print("reading the store back ...", flush=True)
        result = compare(settings.store_url, producer)
        with engine.connect() as conn:
            count = sa.select(sa.func.count())
            open_attempts = conn.execute(count.select_from(attempts_table)).scalar_one()
        engine.dispose()
        timeout_s = max(30.0, deadline - time.monotonic())
        keys = enriched_keys(connection, settings.topic_enriched, result["events_rows"], timeout_s)

    plot(run.samples, [k["t"] for k in run.kills], args.count, args.out / "rss.png")
    rss = [s["rss_mib"] for s in run.samples if s["rss_mib"] is not None]
    summary = {
        "note": note,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "count": args.count,
        "bad_rate": args.bad_rate,
        "seed": args.seed,
        "measured_msg_s": None if measured is None else round(measured, 1),
        "rate_msg_s": rate,
        "complete": run.complete,
        "wall_s": round(run.wall_s, 1),
        "effective_msg_s": round(run.handled / run.wall_s, 1) if run.wall_s else None,
        "produced": {
            "sent": producer.sent,
            "acked": producer.acked,
            "failed": producer.failed,
            "valid": len(producer.good),
            "bad": len(producer.bad),
        },
        **result,
        "enriched_topic": {
            "records": sum(keys.values()),
            "distinct_keys": len(keys),
            "redelivered_duplicates": sum(keys.values()) - len(keys),
        },
        "open_attempt_counts": int(open_attempts),
        "restarts": {
            "kills": run.kills,
            "survived": sum("recovered_s" in k for k in run.kills),
            "unexpected_exits": run.unexpected_exits,
            "final_exit_code": run.final_exit_code,
        },
        "rss_mib": {
            "peak": round(max(rss), 1) if rss else None,
            "at_10_percent": rss_at(run.samples, args.count // 10),
            "at_100_percent": rss_at(run.samples, run.handled) if run.complete else None,
            "lives": lives(run.samples),
        },
        "elapsed_s": round(time.monotonic() - began, 1),
        "samples": run.samples,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=2))
    print(f"{note}\nPNG: {args.out / 'rss.png'}; JSON: {args.out / 'summary.json'}")
    if not run.complete:
        print("INCOMPLETE (deadline or repeated crashes): 'lost' includes records not handled yet")
    duplicates = sum(result["duplicates"].values())
    lost = result["lost"]["valid"] + result["lost"]["bad"]
    return 0 if run.complete and duplicates == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
