"""The "Per-stage cost" section of the harness report, and the whole report of ``--only null``.

Each table has one column per thread lane (µs per message from py-spy's samples), the
all-threads active sum, and the counter's µs per message where a harness-side timer covers
the stage; the last rows are each lane's sum against the wall time per message of the
profiled run, so what the table shows adds up to the wall time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .rss import mib
from .stages import CLASSIFY, POLLING, StageTable

if TYPE_CHECKING:
    from .zero_cost import ZeroCostResult

#: What py-spy cannot see, stated under every table.
LIMITS = (
    "What the profiler cannot see: threads without a Python frame (torch's intra-op pool, "
    "librdkafka-style native threads) are not sampled, so the OS CPU time (getrusage, every "
    "thread) is shown beside py-spy's active sum; the forward's worker threads show up only "
    "there. Without --stages-native a thread waiting for the GIL is sampled at the Python line "
    "it will run next, so GIL waits are inside the stage rows, not in a row of their own; with "
    "it, a condition-variable wait below a Python frame counts as the GIL (a heuristic: it "
    "cannot tell the GIL's from another C library's). Sampling pauses the process (py-spy's "
    "blocking mode), so the profiled run is slower than the measured one (both rates shown); "
    "counters are perf_counter pairs around calls and include any waiting inside them."
)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def stage_markdown(table: StageTable) -> list[str]:
    """One stage table as markdown lines."""
    lanes = table.lanes
    out = [
        f"**{table.title}**: {table.handled} messages, profiled at {table.rate_hz} Hz "
        f"({table.ticks} ticks over {table.profiled_s:.2f} s, {table.threads} threads seen; "
        f"native frames {'on' if table.native else 'off'}); unprofiled run "
        f"{table.measured_msg_per_s:.1f} msg/s; " + "; ".join(table.notes) + ".",
        "",
        "| stage | "
        + " | ".join(f"{lane} µs/msg" for lane in lanes)
        + " | active, all threads | counter µs/msg | counter |",
        "|---|" + "---|" * (len(lanes) + 3),
    ]
    for row in table.rows:
        cells = " | ".join(_cell(row.us_per_msg.get(lane)) for lane in lanes)
        out.append(
            f"| {row.stage} | {cells} | {_cell(row.active_us_per_msg)} | "
            f"{_cell(row.counter_us_per_msg)} | {row.counter} |"
        )
    sums = " | ".join(_cell(table.lane_sums.get(lane)) for lane in lanes)
    out += [
        f"| **sum** | {sums} | {_cell(table.active_us_per_msg)} | | |",
        "| **wall, first record to last commit** | "
        + " | ".join(
            _cell(table.wall_us_per_msg) if lane in (POLLING, CLASSIFY) else "" for lane in lanes
        )
        + f" | OS CPU {_cell(table.os_cpu_us_per_msg)} | | |",
        "",
    ]
    if table.spans:
        out.append(
            "Counters over several stages: "
            + "; ".join(f"{what} {us:.1f} µs/msg" for what, us in table.spans)
            + "."
        )
    if table.other_top:
        out.append(
            "`other`, by innermost frame: "
            + "; ".join(f"`{frame}` {us:.1f}" for frame, us in table.other_top)
            + "."
        )
    out.append("")
    return out


def stages_section(
    tables: Mapping[str, StageTable], errors: Mapping[str, str], asked: bool
) -> list[str]:
    """The report's "Per-stage cost" section (zero-cost and real runs), empty if not asked."""
    if not asked:
        return []
    out = ["### Per-stage cost (py-spy, every thread, plus counters)", ""]
    for name in ("zero-cost", "real"):
        if name in tables:
            out += stage_markdown(tables[name])
        else:
            out += [f"**{name}**: no stage table ({errors.get(name, 'not run')}).", ""]
    return [*out, LIMITS, ""]


def stage_text(table: StageTable) -> list[str]:
    """One stage table as plain text (what the harness prints)."""
    lanes = table.lanes
    width = max(len(r.stage) for r in table.rows) + 1
    out = [
        f"per-stage cost, {table.title} (µs/msg; py-spy {table.rate_hz} Hz, "
        f"{table.ticks} ticks; unprofiled {table.measured_msg_per_s:.1f} msg/s):",
        f"{'stage':<{width}}"
        + "".join(f"{lane[:12]:>13}" for lane in lanes)
        + f"{'active':>9}{'counter':>9}",
    ]
    for row in table.rows:
        out.append(
            f"{row.stage:<{width}}"
            + "".join(f"{_cell(row.us_per_msg.get(lane)):>13}" for lane in lanes)
            + f"{_cell(row.active_us_per_msg):>9}{_cell(row.counter_us_per_msg):>9}"
        )
    out.append(
        f"{'sum':<{width}}"
        + "".join(f"{_cell(table.lane_sums.get(lane)):>13}" for lane in lanes)
        + f"{_cell(table.active_us_per_msg):>9}"
    )
    out.append(
        f"wall per message {table.wall_us_per_msg:.1f} µs (profiled run); OS CPU "
        f"{table.os_cpu_us_per_msg:.1f} µs/msg, py-spy active {table.active_us_per_msg:.1f}"
    )
    return out


def zero_cost_markdown(result: ZeroCostResult) -> str:
    """The block of ``--only null``: the zero-cost runs and the stage table."""
    o, best = result.options, result.best
    out = [
        "## The run loop's own cost: zero-cost model, per-stage table (issue 27)",
        "",
        "```",
        f"python -m bench.harness --only null --model-dir {o.model_dir} --count {o.count} "
        f"--batch-sizes {','.join(map(str, o.batch_sizes))} --batch-wait-ms {o.batch_wait_ms}"
        + (" --stages" if o.stages else "")
        + (" --stages-native" if o.stages_native else ""),
        "```",
        "",
        f"Model identity `{result.model}` (no forward); {result.produced} messages, run "
        f"{result.started_at}, {result.seconds:.0f} s in all.",
        "",
        "| batch_max_size | msg/s | handled | stored | load avg |",
        "|---|---|---|---|---|",
        *(
            f"| {r.batch_size} | {r.msg_per_s:.1f} | {r.handled} | {r.stored} | {r.load_avg:.1f} |"
            for r in result.runs
        ),
        "",
        f"Best: batch_max_size {best.batch_size}, **{best.msg_per_s:.1f} msg/s** "
        f"({1e6 / best.msg_per_s:.0f} µs per message); peak RSS of the run-loop process "
        f"{mib(result.peak_rss_bytes)} MiB.",
        "",
        *(
            [*stage_markdown(result.stages), LIMITS, ""]
            if result.stages is not None
            else [f"No stage table: {result.stages_error or 'not asked (--stages)'}.", ""]
        ),
        "Machine: " + "; ".join(f"{k} {v}" for k, v in result.machine.items()) + ".",
        "",
    ]
    return "\n".join(out)


def write_zero_cost(result: ZeroCostResult, out_dir: Path) -> dict[str, Path]:
    """``results.json``, ``results.md`` and the collapsed stacks of ``--only null``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "results.md"}
    data = result.as_dict()
    data.pop("stages_raw", None)
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(zero_cost_markdown(result), encoding="utf-8")
    if result.stages_raw:
        paths["stacks"] = out_dir / "stages-zero-cost.txt"
        paths["stacks"].write_text(result.stages_raw, encoding="utf-8")
    return paths
