"""What a harness run prints and writes: the table, ratios, machine details, markdown, a plot.

``write`` puts ``results.json`` (everything), ``results.md`` (the block for
``bench/RESULTS.md``), ``throughput.png`` (msg/s vs batch size; latency vs offered load) and,
when profiled, ``profile.txt`` into the output folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from .rss import mib
from .stage_report import stage_text, stages_section

if TYPE_CHECKING:
    from .run import HarnessResult

def ratios(result: HarnessResult) -> dict[str, float]:
    """attnwatch (best batch size, and each) over the limit and over the naive loop."""
    best = result.pipeline.best.msg_per_s
    out = {
        "attnwatch/limit": best / result.limit.msg_per_s,
        "attnwatch/naive": best / result.naive.msg_per_s,
        "naive/limit": result.naive.msg_per_s / result.limit.msg_per_s,
    }
    if result.null_model is not None:
        # Forward and loop work share the cores: seconds per message add up.
        null = result.null_model.msg_per_s
        out["bound: 1/(1+limit/null)"] = 1 / (1 + result.limit.msg_per_s / null)
    for run in result.pipeline.runs:
        out[f"attnwatch@{run.batch_size}/limit"] = run.msg_per_s / result.limit.msg_per_s
        out[f"attnwatch@{run.batch_size}/naive"] = run.msg_per_s / result.naive.msg_per_s
    return {k: round(v, 3) if math.isfinite(v) else v for k, v in out.items()}


def _rows(result: HarnessResult) -> list[tuple[str, float, float, float, float]]:
    """(side, msg/s, / limit, / naive, load average) per row of the table."""
    limit, naive = result.limit.msg_per_s, result.naive.msg_per_s
    rows = [
        (f"limit: encoder + heads alone, sorted batches of {result.limit.batch_size}",
         limit, 1.0, limit / naive, result.limit.load_avg),
        ("naive: kafka-python loop, predict + INSERT per message", naive, naive / limit, 1.0,
         result.naive.load_avg),
    ]
    for run in result.pipeline.runs:
        rows.append((f"attnwatch run loop, batch_max_size {run.batch_size}",
                     run.msg_per_s, run.msg_per_s / limit, run.msg_per_s / naive, run.load_avg))
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def table(result: HarnessResult) -> str:
    """The plain-text summary printed at the end of a run."""
    lines = [
        f"attnwatch throughput harness: {result.model}, {result.produced} messages "
        f"({result.mix.units} units), device {result.options.device}",
        "",
        f"{'side':<64} {'msg/s':>8} {'/limit':>7} {'/naive':>7} {'load':>5}",
    ]
    lines += [f"{name:<64} {v:>8.1f} {a:>7.3f} {b:>7.3f} {load:>5.1f}"
              for name, v, a, b, load in _rows(result)]
    r = ratios(result)
    best = result.pipeline.best
    lines += [
        "(load: the machine's 1-minute load average after each side; well above the harness's "
        "own torch threads means neighbours ran too)",
        "",
        f"best attnwatch (batch {best.batch_size}): attnwatch/limit {r['attnwatch/limit']:.3f}, "
        f"attnwatch/naive {r['attnwatch/naive']:.3f}",
        "",
        f"end-to-end latency (event time -> durably written), batch {best.batch_size}, "
        f"wait {result.options.batch_wait_ms} ms:",
        f"{'load':>6} {'offered':>8} {'sent':>8} {'handled':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for p in result.pipeline.paced:
        lat = p.latency_s
        lines.append(
            f"{p.load:>6.0%} {p.offered_msg_per_s:>8.1f} {p.sent_msg_per_s:>8.1f} "
            f"{p.handled_msg_per_s:>8.1f} {_ms(lat['p50']):>8} {_ms(lat['p95']):>8} "
            f"{_ms(lat['p99']):>8} {_ms(lat['max']):>8}"
        )
    side = result.pipeline
    lines += [
        "",
        f"peak RSS: run-loop process {mib(side.peak_rss_bytes)} MiB "
        f"({mib(side.rss_model_loaded_bytes)} MiB with the model loaded, before the runs); "
        f"harness process (limit + naive) {mib(result.harness_peak_rss_bytes)} MiB",
        "counts: " + _counts(result),
        *_null_lines(result),
    ]
    for name in ("zero-cost", "real"):
        if name in result.stages:
            lines += ["", *stage_text(result.stages[name])]
        elif result.options.stages:
            lines += ["", f"no {name} stage table: {result.stages_errors.get(name, 'not run')}"]
    if result.gpu is not None:
        lines += ["", *result.gpu.lines()]
    for tier in result.tiers:
        lines.append(
            f"tier {tier.model} ({tier.model_dir}): {tier.run.msg_per_s:.1f} msg/s, "
            f"{tier.over_default:.2f} x the default's run loop, {tier.run.stored} stored, "
            f"peak RSS {mib(tier.peak_rss_bytes)} MiB"
        )
    return "\n".join(lines)


def _counts(result: HarnessResult) -> str:
    runs = ", ".join(
        f"batch {r.batch_size}: {r.handled} handled / {r.stored} stored / {r.enriched_topic} "
        "on the enriched topic"
        for r in result.pipeline.runs
    )
    return (f"produced {result.produced}; limit {result.limit.messages}; naive "
            f"{result.naive.messages} ({result.naive.rows} rows); {runs}")


def markdown(result: HarnessResult, plot_link: str = "results/throughput.png") -> str:
    """The block to paste into ``bench/RESULTS.md`` (``plot_link``: the PNG, relative to it)."""
    o, mix = result.options, result.mix
    out = [
        "## Throughput: attnwatch vs. the model's limit vs. a naive loop (issue 14)",
        "",
        "```",
        f"python -m bench.harness --model-dir {o.model_dir} --count {o.count} "
        f"--batch-sizes {','.join(map(str, o.batch_sizes))} --device {o.device} "
        f"--batch-wait-ms {o.batch_wait_ms}" + "".join(f" --tier {t}" for t in o.tiers)
        + (" --stages" if o.stages else "") + (" --stages-native" if o.stages_native else ""),
        "```",
        "",
        f"Model `{result.model}`; {result.produced} messages, {mix.units} classified units "
        f"(run {result.started_at}, {result.seconds:.0f} s in all). Mix (seed {mix.options.seed}): "
        f"news {mix.options.news_share:.0%} of messages, {mix.options.body_share:.0%} of them "
        f"with a body of 1-{mix.options.max_paragraphs} seed paragraphs (log-normal, median "
        f"{mix.options.body_median_paragraphs:g}), the rest chat conversations; "
        + ", ".join(f"{shape} {n}" for shape, n in mix.by_shape.items())
        + "; characters per message "
        + ", ".join(f"{s} p50 {d['p50']:.0f} / p90 {d['p90']:.0f} / max {d['max']:.0f}"
                    for s, d in mix.chars.items())
        + f"; units per message p50 {mix.units_per_message['p50']:.0f}, "
        f"p90 {mix.units_per_message['p90']:.0f}, max {mix.units_per_message['max']:.0f}; "
        f"tokens per unit p50 {result.limit.tokens_per_unit['p50']:.0f}, "
        f"p90 {result.limit.tokens_per_unit['p90']:.0f}.",
        "",
        "| side | msg/s | / limit | / naive | load avg |",
        "|---|---|---|---|---|",
    ]
    for name, value, over_limit, over_naive, load in _rows(result):
        out.append(
            f"| {name} | {value:.1f} | {over_limit:.3f} | {over_naive:.3f} | {load:.1f} |"
        )
    r = ratios(result)
    out += [
        "",
        f"Best attnwatch (batch_max_size {result.pipeline.best.batch_size}): "
        f"**attnwatch/limit {r['attnwatch/limit']:.3f}, attnwatch/naive "
        f"{r['attnwatch/naive']:.3f}**. Load avg: the machine's 1-minute load average after each "
        "side; the harness alone accounts for about its torch threads, more means neighbours.",
        "",
        f"End-to-end latency (event time stamped at send -> result durably written), "
        f"batch_max_size {result.pipeline.best.batch_size}, batch_max_wait_ms {o.batch_wait_ms}, "
        f"{o.paced_count} messages per load:",
        "",
        "| load | offered msg/s | sent msg/s | handled msg/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in result.pipeline.paced:
        lat = p.latency_s
        out.append(
            f"| {p.load:.0%} | {p.offered_msg_per_s:.1f} | {p.sent_msg_per_s:.1f} | "
            f"{p.handled_msg_per_s:.1f} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | "
            f"{_ms(lat['p99'])} | {_ms(lat['max'])} |"
        )
    side = result.pipeline
    out += [
        "",
        f"Peak RSS of the run-loop process: {mib(side.peak_rss_bytes)} MiB "
        f"({mib(side.rss_model_loaded_bytes)} MiB once the model is loaded). Counts: "
        f"{_counts(result)}.",
        "",
        *_null_lines(result),
        "",
        *_tier_rows(result),
        *stages_section(result.stages, result.stages_errors, result.options.stages),
        *([*result.gpu.lines(), ""] if result.gpu is not None else []),
        "Machine: " + "; ".join(f"{k} {v}" for k, v in result.machine.items()) + ".",
        "",
        f"![throughput and latency]({plot_link})",
        "",
    ]
    return "\n".join(out)


def _null_lines(result: HarnessResult) -> list[str]:
    null = result.null_model
    if null is None:
        return []
    bound = ratios(result)["bound: 1/(1+limit/null)"]
    cached = result.cached
    cache_line = (
        []
        if cached is None
        else [
            "",
            f"Run loop with the prediction cache on (64 MiB, batch_max_size {cached.batch_size}):"
            f" {cached.msg_per_s:.1f} msg/s, "
            f"{cached.msg_per_s / result.pipeline.best.msg_per_s:.2f} x the run loop without it"
            " (every other run has it off: the mix draws its texts from the seed pools, so two"
            " thirds of its units repeat; bench/prediction_cache.py has hit rates per stream).",
        ]
    )
    return [
        f"Run loop with a zero-cost model (no forward pass; batch_max_size {null.batch_size}): "
        f"{null.msg_per_s:.1f} msg/s ({null.handled} handled, {null.stored} stored). With the "
        "forward pass filling the cores, the two costs add up: the run loop can reach at most "
        f"1 / (1 + limit / zero-cost) = **{bound:.3f} x limit** on this machine.",
        *cache_line,
    ]


def _tier_rows(result: HarnessResult) -> list[str]:
    if not result.tiers:
        return []
    rows = [
        f"Fast tiers, run loop at batch_max_size {result.pipeline.best.batch_size} on the same "
        "backlog, each in a fresh process:",
        "",
        "| model | directory | msg/s | / default run loop | stored | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    rows += [
        f"| `{t.model}` | {t.model_dir} | {t.run.msg_per_s:.1f} | {t.over_default:.2f} | "
        f"{t.run.stored} | {mib(t.peak_rss_bytes)} |"
        for t in result.tiers
    ]
    return [*rows, ""]


def plot(result: HarnessResult, path: Path) -> Path:
    """Two panels: msg/s vs batch size (limit and naive as lines), latency vs offered load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    runs = result.pipeline.runs
    sizes = [r.batch_size for r in runs]
    left.plot(sizes, [r.msg_per_s for r in runs], "o-", label="attnwatch run loop")
    left.axhline(result.limit.msg_per_s, color="tab:green", linestyle="--",
                 label=f"limit (forward alone, batch {result.limit.batch_size})")
    left.axhline(result.naive.msg_per_s, color="tab:red", linestyle=":", label="naive loop")
    left.set_xscale("log", base=2)
    left.set_xticks(sizes, [str(s) for s in sizes])
    left.set_xlabel("batch_max_size")
    left.set_ylabel("messages / s")
    left.set_ylim(bottom=0)
    left.set_title("Throughput")
    left.legend(fontsize=8)
    paced = result.pipeline.paced
    offered = [p.offered_msg_per_s for p in paced]
    for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        right.plot(offered, [p.latency_s[q] * 1000 for p in paced], style, label=q)
    for p in paced:
        right.annotate(f"{p.load:.0%}", (p.offered_msg_per_s, p.latency_s["p50"] * 1000),
                       textcoords="offset points", xytext=(4, -12), fontsize=8)
    right.set_xlabel("offered load (messages / s)")
    right.set_ylabel("end-to-end latency (ms)")
    right.set_ylim(bottom=0)
    right.set_title(f"Latency, batch_max_size {result.pipeline.best.batch_size}")
    right.legend(fontsize=8)
    fig.suptitle(f"{result.model}, {result.produced} messages, {result.options.device}",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(result: HarnessResult, out_dir: Path) -> dict[str, Path]:
    """Write JSON, markdown, the PNG and the profile (if any) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "results.md",
        "plot": out_dir / "throughput.png",
    }
    data = result.as_dict()
    data["ratios"] = ratios(result)
    data.pop("stages_raw", None)
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(markdown(result, f"{out_dir.name}/throughput.png"),
                                 encoding="utf-8")
    plot(result, paths["plot"])
    for name, text in result.stages_raw.items():
        paths[f"stacks {name}"] = out_dir / f"stages-{name}.txt"
        paths[f"stacks {name}"].write_text(text, encoding="utf-8")
    if result.pipeline.profile:
        paths["profile"] = out_dir / "profile.txt"
        paths["profile"].write_text(result.pipeline.profile, encoding="utf-8")
    return paths
