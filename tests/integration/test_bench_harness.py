"""The throughput harness (issue 14) end to end on the tiny model: it runs and its counts agree.

No timing assertion: the machine is shared; only that every side handled exactly what was
produced and that the ratios and percentiles are numbers.
"""

from __future__ import annotations

import json
import math

import pytest

from bench.harness.__main__ import main
from bench.harness.report import markdown, ratios, table, write
from bench.harness.run import HarnessOptions, run_harness

# slow: starts `attnwatch run` processes or runs a minute or more (issue 26 timings).
pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNT = 200
PACED = 60
#: One paced load: each paced run is a group join of its own (~5 s on Tansu).
LOADS = (0.5,)


def finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_harness_runs_every_side_and_the_counts_agree(broker, tiny_model, tmp_path):
    from models.fast.onnx_export import export_onnx

    tier = export_onnx(tiny_model, tmp_path / "tiny-onnx-int8", int8=True)
    options = HarnessOptions(
        model_dir=tiny_model,
        count=COUNT,
        batch_sizes=(8, 32),
        loads=LOADS,
        paced_count=PACED,
        batch_wait_ms=50,
        limit_batch_sizes=(16, 64),
        timeout_s=120,
        progress=False,
        tiers=(tier,),
    )
    result = run_harness(options, broker.connection)

    assert result.produced == COUNT
    assert sum(result.mix.by_shape.values()) == COUNT
    assert set(result.mix.by_shape) == {"chat/agent", "chat/customer", "news/body", "news/headline"}
    # The limit reads every unit of every message; news bodies make more units than messages.
    assert result.limit.messages == COUNT
    assert result.limit.units == result.mix.units > COUNT
    assert (result.naive.messages, result.naive.rows) == (COUNT, COUNT)
    assert [run.batch_size for run in result.pipeline.runs] == [8, 32]
    for run in result.pipeline.runs:
        assert (run.handled, run.enriched, run.dead_letters) == (COUNT, COUNT, 0)
        assert run.stored == run.enriched_topic == COUNT
        assert run.batches >= COUNT // run.batch_size
    assert len(result.pipeline.paced) == len(LOADS)
    for paced, load in zip(result.pipeline.paced, LOADS):
        assert paced.load == load
        assert paced.batch_size == result.pipeline.best.batch_size
        assert paced.handled == paced.stored == paced.observations == PACED
        assert paced.offered_msg_per_s == pytest.approx(load * result.pipeline.best.msg_per_s)
        assert finite_positive(paced.sent_msg_per_s)
        for q in ("p50", "p95", "p99"):
            assert finite_positive(paced.latency_s[q])
        assert paced.latency_s["p50"] <= paced.latency_s["p95"] <= paced.latency_s["p99"]

    # The zero-cost model and the ONNX tier handle the same backlog in full.
    best = result.pipeline.best.batch_size
    assert result.null_model is not None and result.null_model.batch_size == best
    assert (result.null_model.handled, result.null_model.stored) == (COUNT, COUNT)
    [onnx] = result.tiers
    assert "-onnx-int8@" in onnx.model
    assert (onnx.run.batch_size, onnx.run.handled, onnx.run.stored) == (best, COUNT, COUNT)
    assert onnx.over_default == pytest.approx(
        onnx.run.msg_per_s / result.pipeline.best.msg_per_s, abs=1e-3)
    assert 0 < ratios(result)["bound: 1/(1+limit/null)"] < 1

    for name, value in ratios(result).items():
        assert finite_positive(value), name
    for value in (result.limit.msg_per_s, result.naive.msg_per_s,
                  *(run.msg_per_s for run in result.pipeline.runs)):
        assert finite_positive(value)
    assert result.pipeline.peak_rss_bytes >= result.pipeline.rss_model_loaded_bytes > 0
    assert {"cpu", "cores", "torch threads", "torch"} <= set(result.machine)

    paths = write(result, tmp_path / "results")
    assert paths["plot"].read_bytes().startswith(b"\x89PNG")
    text = paths["markdown"].read_text(encoding="utf-8")
    assert text == markdown(result, "results/throughput.png")
    assert "| naive: kafka-python loop" in text and "p99 ms" in text
    assert "zero-cost model" in text and "-onnx-int8@" in text
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["produced"] == COUNT and "attnwatch/limit" in data["ratios"]
    assert "attnwatch/naive" in table(result)


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--model-dir", "--count", "--batch-sizes", "--device", "--out", "--loads"):
        assert option in out
