"""Per-stage cost of the run loop from py-spy's collapsed stacks: which stage each sample was in.

A sample is one thread's stack at one tick of the sampling profiler (py-spy ``record --format
raw --threads --idle [--native]``: one line per distinct stack, ``thread (tid): name;outer;
...;inner count``).  Its **stage** is decided by the innermost frame that one of
:data:`RULES` matches (so a store write called from the run loop counts as the store, not the
loop), its **lane** by the thread's name (:data:`LANES`).  Frames no rule matches fall through
to ``other``, which lists its most frequent innermost frames, so nothing is hidden.

Waiting is split in two.  With native frames a thread blocked on a condition variable with no
native library of its own below the Python frame (``take_gil``'s ``pthread_cond_timedwait``)
is waiting for the GIL; a thread in ``epoll_wait``, ``poll``, a semaphore or a sleep is idle.
Without native frames the GIL cannot be told apart from work: the Python frame of a thread
waiting for it is the one it will run next.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Stages in the order the table shows them (the issue's list, then what else was found).
FETCH = "fetch and record parsing"
DECODE = "decode and validation"
REDACT = "redaction"
SPLIT = "sentence split"
TOKENISE = "tokenisation"
FORWARD = "forward"
WORDS = "word merging and weights"
ENRICH = "enrichment and serialisation"
PRODUCE = "produce (enriched, dead letters)"
STORE = "store write"
COMMIT = "commit"
GROUP = "group membership (heartbeat, join)"
LOOP = "run loop itself (batching, bookkeeping)"
METRICS = "metrics and logs"
HARNESS = "harness probes"
OTHER = "other"
GIL = "waiting: GIL"
IDLE = "waiting: I/O, locks, sleep (idle)"
NO_BATCH = "waiting: no batch in flight"
STAGES = (
    FETCH,
    DECODE,
    REDACT,
    SPLIT,
    TOKENISE,
    FORWARD,
    WORDS,
    ENRICH,
    PRODUCE,
    STORE,
    COMMIT,
    GROUP,
    LOOP,
    METRICS,
    HARNESS,
    OTHER,
    GIL,
    IDLE,
    NO_BATCH,
)
WAITING = (GIL, IDLE, NO_BATCH)

#: Lanes: thread-name pattern -> lane (first match; the polling thread is the child's main).
POLLING, CLASSIFY, PRODUCER, HEARTBEAT = "polling", "classify", "producer I/O", "heartbeat"
#: models.torch_thread: every forward pass (decision 0024).
TORCH = "torch"
HARNESS_LANE, OTHER_LANE = "harness", "other threads"
LANES: tuple[tuple[str, str], ...] = (
    (r"^MainThread$", POLLING),
    (r"^classify", CLASSIFY),
    (r"^torch$", TORCH),
    (r"producer|network-thread", PRODUCER),
    (r"heartbeat", HEARTBEAT),
    (r"^bench-", HARNESS_LANE),
)
LANE_ORDER = (POLLING, CLASSIFY, TORCH, PRODUCER, HEARTBEAT, HARNESS_LANE, OTHER_LANE)


@dataclass(frozen=True)
class Frame:
    """One frame of a collapsed stack: ``function (location)``."""

    function: str
    location: str

    @property
    def python(self) -> bool:
        """A Python frame (``file.py:line``), not a native one (``lib.so``, ``file.c:line``)."""
        return ".py" in self.location

    def __str__(self) -> str:
        return f"{self.function} ({self.location})"


@dataclass(frozen=True)
class Rule:
    """Frames whose location matches ``path`` and function matches ``function`` are ``stage``.

    ``native``: the rule applies to native frames only (``None``: to Python frames only).
    """

    stage: str
    path: str
    function: str = ""
    native: bool = False

    def matches(self, frame: Frame) -> bool:
        if frame.python == self.native:
            return False
        return bool(re.search(self.path, frame.location)) and bool(
            re.search(self.function, frame.function)
        )


#: The one table that maps frames to stages; the innermost matching frame decides.  Paths are
#: py-spy's short file names (``kafka/consumer/fetcher.py``); shared network code
#: (``kafka/conn.py``, ``kafka/client_async.py``) has no rule, so its caller decides.
RULES: tuple[Rule, ...] = (
    # Waiting, from native frames (py-spy --native); the GIL rule is checked separately.
    Rule(
        IDLE,
        r"",
        r"^(epoll_wait|poll|ppoll|select|__select|internal_select|sem_clockwait|"
        r"sem_timedwait|sem_wait|PyThread_acquire_lock_timed|lock_PyThread_acquire_lock|"
        r"clock_nanosleep|nanosleep|pysleep|__libc_recv|recv|accept4?)$",
        native=True,
    ),
    Rule(SPLIT, r"", r"pysbd", native=True),
    Rule(STORE, r"sqlite", native=True),
    # Waiting, from Python frames (enough without --native, except for the GIL).
    Rule(IDLE, r"threading\.py", r"wait|_wait_for_tstate_lock|join"),
    Rule(IDLE, r"selectors\.py", r"select"),
    Rule(IDLE, r"queue\.py", r"^(Queue\.)?get$"),
    # The torch thread between calls (blocked in SimpleQueue.get, a C function).
    Rule(IDLE, r"models/torch_thread\.py", r"_serve$"),
    Rule(IDLE, r"harness/stage_probe\.py", r"_drain"),
    # Kafka: the consumer's fetches and record parsing, the coordinator, the producer.
    Rule(COMMIT, r"kafka/coordinator/consumer\.py", r"commit"),
    Rule(GROUP, r"kafka/coordinator/"),
    Rule(FETCH, r"kafka/consumer/|kafka/record/"),
    Rule(PRODUCE, r"kafka/producer/"),
    # The run loop's own modules.
    Rule(COMMIT, r"consumers/source\.py|pipeline/stream/checkpoint\.py", r"commit"),
    Rule(FETCH, r"consumers/source\.py|pipeline/stream/batching\.py"),
    Rule(DECODE, r"pipeline/schema\.py"),
    Rule(ENRICH, r"pydantic", r"dump|serializ|to_json"),
    Rule(DECODE, r"pydantic|json/decoder\.py|json/__init__\.py"),
    Rule(REDACT, r"pipeline/privacy/"),
    Rule(SPLIT, r"pysbd/|models/long_text\.py", r"split|sentence|_windows|Segmenter|segment"),
    Rule(SPLIT, r"pipeline/stream/enrich\.py", r"^units$"),
    Rule(WORDS, r"models/long_text\.py", r"locate|combine|move|_in_text"),
    Rule(TOKENISE, r"tokenizers/|transformers/tokenization|models/encoding\.py"),
    Rule(TOKENISE, r"models/inference\.py", r"tokeni[sz]e|pad|length_buckets"),
    Rule(WORDS, r"models/words\.py|models/explain/"),
    Rule(WORDS, r"models/inference\.py", r"piece|word|softmax|answer"),
    Rule(
        FORWARD,
        r"torch/|onnxruntime/|models/modeling\.py|models/attention\.py|"
        r"models/fast/|models/inference\.py|models/classifier\.py",
    ),
    Rule(ENRICH, r"pipeline/stream/enrich\.py|pipeline/stream/sizing\.py"),
    Rule(ENRICH, r"pipeline/sinks/topics\.py", r"take|serial|encode|dump"),
    Rule(PRODUCE, r"pipeline/sinks/topics\.py|consumers/producer\.py"),
    Rule(
        STORE,
        r"pipeline/store/|pipeline/sinks/store\.py|pipeline/sinks/raw\.py|"
        r"sqlalchemy/|sqlite3/|alembic/",
    ),
    Rule(METRICS, r"prometheus_client/|logging/|pipeline/logs\.py|structlog/"),
    Rule(HARNESS, r"(^|/)(bench/)?harness/"),
    Rule(LOOP, r"pipeline/stream/|models/long_text\.py|pipeline/sinks/"),
)

#: Native frames below the innermost Python frame that are a library's own, not the GIL's.
_LIBRARY = re.compile(r"torch|gomp|omp|mkl|onnx|sqlite|blas|tokenizers", re.IGNORECASE)
_CONDVAR = re.compile(
    r"^(take_gil|pthread_cond_timedwait|pthread_cond_wait|"
    r"pthread_cond_clockwait)$"
)
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<location>[^()]*)\)$")
_HEAD = re.compile(r"^thread \((?P<tid>[^)]*)\): ?(?P<name>.*)$")


def parse_frame(text: str) -> Frame:
    """``func (file.py:12)`` -> Frame; a bare address or name keeps an empty location."""
    found = _FRAME.match(text.strip())
    if found is None:
        return Frame(text.strip(), "")
    return Frame(found["function"], found["location"])


@dataclass(frozen=True)
class Stack:
    """One line of py-spy's raw output: a thread, its frames (outermost first), a count."""

    tid: str
    thread: str
    frames: tuple[Frame, ...]
    count: int


def parse_collapsed(lines: Iterable[str]) -> list[Stack]:
    """py-spy's ``--format raw --threads`` lines; a malformed line is a ``ValueError``."""
    out: list[Stack] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            msg = f"not a collapsed stack line: {line[:120]!r}"
            raise ValueError(msg)
        head, *frames = stack.split(";")
        found = _HEAD.match(head)
        if found is None:
            msg = f"no 'thread (id): name' first frame (record with --threads): {head[:80]!r}"
            raise ValueError(msg)
        out.append(Stack(found["tid"], found["name"], tuple(map(parse_frame, frames)), int(count)))
    return out


def lane_of(thread: str) -> str:
    """The lane of a thread by its name."""
    for pattern, lane in LANES:
        if re.search(pattern, thread):
            return lane
    return OTHER_LANE


def _waits_for_gil(frames: tuple[Frame, ...]) -> bool:
    """A condition-variable wait with only libc/CPython frames below the last Python frame."""
    tail: list[Frame] = []
    for frame in reversed(frames):
        if frame.python:
            break
        tail.append(frame)
    named = [f for f in tail if not f.function.startswith("0x")]
    if not named or not _CONDVAR.match(named[0].function):
        return False
    return not any(_LIBRARY.search(f.location) or _LIBRARY.search(f.function) for f in tail)


def stage_of(
    frames: tuple[Frame, ...], rules: tuple[Rule, ...] = RULES
) -> tuple[str, Frame | None]:
    """The stage of a stack and the frame that decided it (``None``: GIL, or nothing matched)."""
    if _waits_for_gil(frames):
        return GIL, None
    for frame in reversed(frames):
        for rule in rules:
            if rule.matches(frame):
                return rule.stage, frame
    return OTHER, None


@dataclass
class StageSamples:
    """Samples per (lane, stage), the ticks of the polling thread, what ``other`` was."""

    by_lane: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    other_frames: Counter[str] = field(default_factory=Counter)
    threads: dict[str, str] = field(default_factory=dict)

    @property
    def ticks(self) -> int:
        """Samples of the polling thread: with ``--idle`` it is sampled at every tick."""
        return sum(self.by_lane[POLLING].values())


def classify_stacks(stacks: Iterable[Stack], rules: tuple[Rule, ...] = RULES) -> StageSamples:
    """Count every stack's samples under its lane and stage."""
    out = StageSamples()
    for stack in stacks:
        lane = lane_of(stack.thread)
        stage, _ = stage_of(stack.frames, rules)
        out.by_lane[lane][stage] += stack.count
        out.threads[stack.tid] = stack.thread
        if stage == OTHER:
            inner = next(
                (str(f) for f in reversed(stack.frames) if f.python),
                str(stack.frames[-1]) if stack.frames else "(no frames)",
            )
            out.other_frames[inner] += stack.count
    return out


@dataclass(frozen=True)
class StageRow:
    """One stage: µs per message in each lane (profiler) and from a counter where one exists."""

    stage: str
    us_per_msg: dict[str, float]
    active_us_per_msg: float
    counter_us_per_msg: float | None = None
    counter: str = ""


@dataclass(frozen=True)
class StageTable:
    """The per-stage cost of one profiled backlog run (see :func:`stage_table`)."""

    title: str
    batch_size: int
    handled: int
    wall_s: float
    profiled_s: float
    ticks: int
    rate_hz: int
    native: bool
    lanes: list[str]
    rows: list[StageRow]
    lane_sums: dict[str, float]
    wall_us_per_msg: float
    active_us_per_msg: float
    os_cpu_us_per_msg: float
    other_top: list[tuple[str, float]]
    threads: int
    #: Counters that span several stages (the whole batch, the classifier call): µs/msg.
    spans: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The unprofiled run's msg/s at the same batch size (the profiler's overhead).
    measured_msg_per_s: float = 0.0


def stage_table(
    samples: StageSamples,
    *,
    title: str,
    batch_size: int,
    handled: int,
    wall_s: float,
    profiled_s: float,
    rate_hz: int,
    native: bool,
    os_cpu_s: float,
    counters: Mapping[str, tuple[float, str]],
    spans: Iterable[tuple[str, float]] = (),
    notes: Iterable[str] = (),
) -> StageTable:
    """µs per message per stage and lane: samples x tick / handled.

    A tick is the profiled span over the polling thread's samples (py-spy falls behind its
    nominal rate when a sample takes long), so each always-sampled lane sums to the profiled
    span per message.  The classify thread exists only while a batch is in flight: its
    missing ticks are ``waiting: no batch in flight``.  ``counters``: stage -> (seconds, what);
    ``spans``: (what, seconds) of counters over several stages.
    """
    ticks = samples.ticks
    if ticks == 0 or handled == 0:
        msg = f"no samples of the polling thread ({ticks}) or no messages ({handled})"
        raise ValueError(msg)
    tick_us = profiled_s / ticks * 1e6
    by_lane = {lane: Counter(c) for lane, c in samples.by_lane.items()}
    classify = by_lane.setdefault(CLASSIFY, Counter())
    classify[NO_BATCH] += max(0, ticks - sum(classify.values()))
    lanes = [lane for lane in LANE_ORDER if lane in by_lane]

    def per_msg(n: float) -> float:
        return round(n * tick_us / handled, 1)

    rows = []
    for stage in STAGES:
        cells = {lane: per_msg(by_lane[lane][stage]) for lane in lanes}
        if not any(cells.values()) and stage not in counters:
            continue
        active = 0.0 if stage in WAITING else sum(cells.values())
        seconds, what = counters.get(stage, (None, ""))
        rows.append(
            StageRow(
                stage,
                cells,
                round(active, 1),
                None if seconds is None else round(seconds / handled * 1e6, 1),
                what,
            )
        )
    return StageTable(
        title=title,
        batch_size=batch_size,
        handled=handled,
        wall_s=round(wall_s, 3),
        profiled_s=round(profiled_s, 3),
        ticks=ticks,
        rate_hz=rate_hz,
        native=native,
        lanes=lanes,
        rows=rows,
        lane_sums={lane: per_msg(sum(by_lane[lane].values())) for lane in lanes},
        wall_us_per_msg=round(wall_s / handled * 1e6, 1),
        active_us_per_msg=round(sum(r.active_us_per_msg for r in rows), 1),
        os_cpu_us_per_msg=round(os_cpu_s / handled * 1e6, 1),
        other_top=[(frame, per_msg(n)) for frame, n in samples.other_frames.most_common(8)],
        threads=len(samples.threads),
        spans=[(what, round(seconds / handled * 1e6, 1)) for what, seconds in spans],
        notes=list(notes),
    )
