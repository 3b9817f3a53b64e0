"""``python -m bench.harness``: the throughput harness of issue 14 in one command, one run.

Back to back on one stated message mix, through a real broker (an embedded Tansu broker
unless ``--bootstrap-servers`` is given):

  limit      the encoder + heads forward alone on the run loop's own units, tokenised in
             advance, sorted by length, already on the device (what the model could do);
  naive      a kafka-python loop calling ``predict`` per message and inserting each row;
  attnwatch  the real run loop (consume, decode, classify, store, enriched topic, metrics,
             commit) at each ``--batch-sizes`` on the whole backlog, then paced at each
             ``--loads`` fraction of its best rate for end-to-end latency percentiles.

With ``--stages``, one more backlog run each of the zero-cost model and the real one under
py-spy (every thread) and harness-side counters gives the per-stage cost in µs per message;
``--only null`` runs just the zero-cost model (and its stage table) for a quick rerun.
``--device cuda`` without a CUDA device says so, runs on the CPU and leaves the GPU rows empty.

Prints msg/s, the ratios attnwatch/limit and attnwatch/naive, latency p50/p95/p99 and peak
RSS; writes results.json, results.md (for bench/RESULTS.md) and throughput.png to ``--out``.
Ratios measured within one run are what compare across machines, not absolute numbers.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from consumers.broker import EmbeddedBroker
from consumers.connection import KafkaConnection

from .gpu import GPU_BATCH_SIZES, GPU_LIMIT_BATCH_SIZES, cuda_missing, wants_gpu
from .report import table, write
from .run import HarnessOptions, run_harness
from .stage_report import stage_text, write_zero_cost
from .zero_cost import run_zero_cost

T = TypeVar("T")


def _list_of(kind: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    def parse(text: str) -> tuple[T, ...]:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError as exc:
            msg = f"not a comma-separated list: {text!r}"
            raise argparse.ArgumentTypeError(msg) from exc
        if not values:
            msg = "an empty list"
            raise argparse.ArgumentTypeError(msg)
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    """The command line (see ``--help``)."""
    defaults = HarnessOptions()
    p = argparse.ArgumentParser(
        prog="python -m bench.harness",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model-dir", type=Path, default=defaults.model_dir,
                   help="saved model directory (default: %(default)s)")
    p.add_argument("--count", type=int, default=defaults.count,
                   help="messages in the mix; every side handles them all (default: %(default)s)")
    p.add_argument("--batch-sizes", type=_list_of(int), default=None,
                   help="run-loop batch_max_size settings, comma-separated (default: 32,64,128; "
                   "on a GPU 64,128,256,512)")
    p.add_argument("--device", default=defaults.device,
                   help="torch device for every side: cpu, cuda, cuda:N (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("bench/results"),
                   help="folder for results.json, results.md and the PNG (default: %(default)s)")
    p.add_argument("--loads", type=_list_of(float), default=defaults.loads,
                   help="paced runs' offered load as fractions of the best backlog rate "
                   "(default: 0.5,0.9)")
    p.add_argument("--paced-count", type=int, default=defaults.paced_count,
                   help="messages sent in each paced run (default: %(default)s)")
    p.add_argument("--batch-wait-ms", type=int, default=defaults.batch_wait_ms,
                   help="run-loop batch_max_wait_ms (default: %(default)s, the setting's default)")
    p.add_argument("--limit-batch-sizes", type=_list_of(int), default=None,
                   help="batch sizes tried for the limit; the best counts (default: 16,64,128; "
                   "on a GPU 64,128,256,512)")
    p.add_argument("--limit-repeats", type=int, default=defaults.limit_repeats,
                   help="passes per limit batch size; the fastest counts (default: %(default)s)")
    p.add_argument("--torch-threads", type=int, default=defaults.torch_threads,
                   help="torch intra-op threads on every side; 0 = torch's default")
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the message mix")
    p.add_argument("--bootstrap-servers", default=None,
                   help="use this Kafka cluster instead of starting an embedded Tansu broker")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile one run-loop backlog run (both threads) into profile.txt")
    p.add_argument("--tier", type=Path, action="append", default=[], dest="tiers",
                   help="another model directory (an ONNX export, a distilled student) run "
                   "through the run loop at the best batch size, for its ratio to the default; "
                   "repeatable")
    p.add_argument("--stages", action="store_true",
                   help="per-stage cost table: one more backlog run each of the zero-cost and "
                   "the real model under py-spy (every thread) plus counters; never a measured run")
    p.add_argument("--stages-native", action="store_true",
                   help="py-spy --native in the stage runs: GIL waits apart from work, but the "
                   "profiled run is 2-6x slower")
    p.add_argument("--only", choices=("all", "null"), default="all",
                   help="null: only the zero-cost run at each batch size, with its stage table "
                   "(--stages implied), for a quick rerun (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness, print the table, write the results; returns the exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    missing = cuda_missing(args.device)
    if missing:
        print(f"no GPU run: {missing}; the sides run on the CPU and the report's GPU rows stay "
              "empty.", flush=True)
    gpu = wants_gpu(args.device) and not missing
    defaults = HarnessOptions()
    try:
        options = HarnessOptions(
            model_dir=args.model_dir,
            count=args.count,
            batch_sizes=args.batch_sizes or (GPU_BATCH_SIZES if gpu else defaults.batch_sizes),
            device="cpu" if missing else args.device,
            requested_device=args.device,
            gpu_missing=missing,
            stages=args.stages or args.only == "null",
            stages_native=args.stages_native,
            only=args.only,
            loads=args.loads,
            paced_count=args.paced_count,
            batch_wait_ms=args.batch_wait_ms,
            limit_batch_sizes=args.limit_batch_sizes
            or (GPU_LIMIT_BATCH_SIZES if gpu else defaults.limit_batch_sizes),
            limit_repeats=args.limit_repeats,
            torch_threads=args.torch_threads,
            seed=args.seed,
            progress=not args.no_progress,
            profile=args.profile,
            tiers=tuple(args.tiers),
        )
    except ValueError as exc:
        parser().error(str(exc))
    if args.only == "null":
        return _zero_cost(options, args.bootstrap_servers, args.out)
    if args.bootstrap_servers:
        result = run_harness(options, KafkaConnection(args.bootstrap_servers))
    else:
        with EmbeddedBroker() as broker:
            result = run_harness(options, broker.connection)
    paths = write(result, args.out)
    print(table(result))
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _zero_cost(options: HarnessOptions, bootstrap_servers: str | None, out: Path) -> int:
    if bootstrap_servers:
        result = run_zero_cost(options, KafkaConnection(bootstrap_servers))
    else:
        with EmbeddedBroker() as broker:
            result = run_zero_cost(options, broker.connection)
    paths = write_zero_cost(result, out)
    for run in result.runs:
        print(f"zero-cost run loop, batch_max_size {run.batch_size}: {run.msg_per_s:.1f} msg/s "
              f"({run.handled} handled, {run.stored} stored, load {run.load_avg:.1f})")
    if result.stages is not None:
        print("\n".join(["", *stage_text(result.stages)]))
    else:
        print(f"no stage table: {result.stages_error}")
    if options.gpu_missing:
        print(f"GPU: no GPU run ({options.gpu_missing}); the GPU rows are empty.")
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
