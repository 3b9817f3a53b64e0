"""The harness's per-stage table (issue 27): py-spy stacks mapped to stages, and its report."""

from __future__ import annotations

import pytest

from bench.harness import stages as st
from bench.harness.stage_report import LIMITS, stage_markdown, stage_text, stages_section

BOOT = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"


def stack(frames: str) -> tuple[st.Frame, ...]:
    return tuple(st.parse_frame(f) for f in frames.split(";"))


# Innermost matching frame decides: each case has an outer frame of another stage.
CASES = [
    (
        "poll (kafka/consumer/group.py:700);_parse_record (kafka/record/default_records.py:200)",
        st.FETCH,
    ),
    ("process (pipeline/stream/processing.py:190);decode (pipeline/schema.py:300)", st.DECODE),
    ("decode (pipeline/schema.py:300);model_validate_json (pydantic/main.py:650)", st.DECODE),
    (
        "process (pipeline/stream/processing.py:190);redact_event (pipeline/privacy/policy.py:40)",
        st.REDACT,
    ),
    ("units (pipeline/stream/enrich.py:55);split_sentences (models/long_text.py:70)", st.SPLIT),
    ("predict (models/classifier.py:120);tokenize (models/inference.py:60)", st.TOKENISE),
    (
        "predict (models/classifier.py:120);encode (tokenizers/implementations/base.py:9)",
        st.TOKENISE,
    ),
    (
        "run_batched (models/inference.py:240);_call_impl (torch/nn/modules/module.py:1500)",
        st.FORWARD,
    ),
    ("run_batched (models/inference.py:240);_word_weights (models/inference.py:210)", st.WORDS),
    ("combine (models/long_text.py:180);merge_word_pieces (models/words.py:150)", st.WORDS),
    ("enrich (pipeline/stream/enrich.py:80);model_dump_json (pydantic/main.py:400)", st.ENRICH),
    ("flush (pipeline/sinks/topics.py:80);send (kafka/producer/kafka.py:700)", st.PRODUCE),
    ("flush (pipeline/sinks/store.py:30);execute (sqlalchemy/engine/base.py:1400)", st.STORE),
    (
        "_commit (pipeline/stream/runner.py:300);commit_offsets_sync "
        "(kafka/coordinator/consumer.py:500)",
        st.COMMIT,
    ),
    ("run (kafka/coordinator/base.py:1075);_run_once (kafka/coordinator/base.py:1151)", st.GROUP),
    (
        "observe (pipeline/stream/processing.py:300);inc (prometheus_client/metrics.py:300)",
        st.METRICS,
    ),
    ("poll (kafka/consumer/group.py:700);select (selectors.py:468)", st.IDLE),
    ("run (pipeline/stream/runner.py:200);wait (threading.py:331)", st.IDLE),
    ("_bootstrap (threading.py:1002);_serve (models/torch_thread.py:90)", st.IDLE),
    (
        "_serve (models/torch_thread.py:90);run (models/torch_thread.py:50);"
        "_compute (models/classifier.py:190);_call_impl (torch/nn/modules/module.py:1500)",
        st.FORWARD,
    ),
    ("process (pipeline/stream/processing.py:190);timed (harness/stage_probe.py:150)", st.HARNESS),
    ("process (pipeline/stream/processing.py:190)", st.LOOP),
    ("mystery (somewhere/else.py:1)", st.OTHER),
]


@pytest.mark.parametrize(("frames", "stage"), CASES)
def test_each_rule_decides_by_the_innermost_frame(frames, stage):
    assert st.stage_of(stack(f"{BOOT};{frames}"))[0] == stage


def test_native_frames_tell_the_gil_from_io_and_from_a_library_wait():
    gil = "spin (t.py:7);pthread_cond_timedwait (libc.so.6);0x7f05c363ff16 (libc.so.6)"
    io = "recv (t.py:13);sock_recv (socketmodule.c:3567);internal_select (socketmodule.c:780)"
    torch_pool = (
        "forward (torch/nn/modules/module.py:1);at::parallel_for (libtorch_cpu.so);"
        "pthread_cond_wait (libc.so.6)"
    )
    assert st.stage_of(stack(gil))[0] == st.GIL
    assert st.stage_of(stack(io))[0] == st.IDLE
    assert st.stage_of(stack(torch_pool))[0] == st.FORWARD


def test_lanes_by_thread_name():
    assert st.lane_of("MainThread") == st.POLLING
    assert st.lane_of("classify") == st.CLASSIFY
    assert st.lane_of("torch") == st.TORCH
    assert st.lane_of("attnwatch-network-thread") == st.PRODUCER
    assert st.lane_of("bench-b64-5d3120be-heartbeat") == st.HEARTBEAT
    assert st.lane_of("bench-watch") == st.HARNESS_LANE
    assert st.lane_of("retention") == st.OTHER_LANE


def test_parse_rejects_lines_without_a_thread_or_a_count():
    with pytest.raises(ValueError, match="thread"):
        st.parse_collapsed(["<module> (t.py:1) 3"])
    with pytest.raises(ValueError, match="collapsed"):
        st.parse_collapsed(["thread (1): MainThread;<module> (t.py:1)"])


RAW = [
    "thread (1): MainThread;run (pipeline/stream/runner.py:1);"
    "poll (kafka/consumer/group.py:700);_parse (kafka/record/default_records.py:2) 30",
    "thread (1): MainThread;run (pipeline/stream/runner.py:1);wait (threading.py:331) 70",
    "thread (2): classify;process (pipeline/stream/processing.py:1);"
    "flush (pipeline/sinks/store.py:30) 40",
    "thread (3): classify;process (pipeline/stream/processing.py:1);"
    "redact_event (pipeline/privacy/policy.py:40) 20",
    "thread (4): classify;odd (x/y.py:1) 10",
]


def table() -> st.StageTable:
    samples = st.classify_stacks(st.parse_collapsed(RAW))
    return st.stage_table(
        samples,
        title="zero-cost model, batch_max_size 64",
        batch_size=64,
        handled=1000,
        wall_s=1.0,
        profiled_s=1.0,
        rate_hz=100,
        native=False,
        os_cpu_s=0.5,
        counters={st.STORE: (0.3, "StoreSink.flush")},
        spans=[("BatchProcessor.process", 0.8)],
    )


def test_lanes_add_up_to_the_profiled_wall_and_missing_classify_ticks_are_no_batch():
    t = table()
    rows = {r.stage: r for r in t.rows}
    # 100 polling ticks over 1 s: 10 ms a tick, 1000 messages: 10 µs/msg per sample.
    assert rows[st.FETCH].us_per_msg[st.POLLING] == 300.0
    assert rows[st.STORE].us_per_msg[st.CLASSIFY] == 400.0
    assert rows[st.STORE].counter_us_per_msg == 300.0
    assert rows[st.REDACT].us_per_msg[st.CLASSIFY] == 200.0
    assert rows[st.OTHER].us_per_msg[st.CLASSIFY] == 100.0
    assert rows[st.NO_BATCH].us_per_msg[st.CLASSIFY] == 300.0
    assert t.lane_sums == {st.POLLING: 1000.0, st.CLASSIFY: 1000.0}
    assert t.wall_us_per_msg == 1000.0
    assert t.active_us_per_msg == 300.0 + 400.0 + 200.0 + 100.0
    assert t.other_top == [("odd (x/y.py:1)", 100.0)]


def test_the_report_section_shows_both_runs_sums_wall_and_what_is_missing():
    text = "\n".join(stages_section({"zero-cost": table()}, {"real": "py-spy missing"}, True))
    assert "| store write | 0.0 | 400.0 | 400.0 | 300.0 | StoreSink.flush |" in text
    assert "| **sum** | 1000.0 | 1000.0 | 1000.0 | | |" in text
    assert "| **wall, first record to last commit** | 1000.0 | 1000.0 | OS CPU 500.0" in text
    assert "BatchProcessor.process 800.0 µs/msg" in text
    assert "**real**: no stage table (py-spy missing)." in text
    assert LIMITS in text
    assert stages_section({}, {}, asked=False) == []
    assert "`odd (x/y.py:1)` 100.0" in "\n".join(stage_markdown(table()))
    assert stage_text(table())[-1].startswith("wall per message 1000.0 µs")
