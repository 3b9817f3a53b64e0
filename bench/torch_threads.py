"""Does it matter which OS thread computes with torch?  (decision 0024)

Classifies the harness mix (``predict`` in chunks of 64 messages, the run loop's shape) in
three layouts, each in a fresh process, alternated ``--rounds`` times:

- ``one``: the model loaded and run in one non-main thread (the torch thread's layout);
- ``main-then-other``: one matmul in the main thread first, then load and forwards in another;
- ``load-main``: the model loaded in the main thread, forwards in another (the run loop's
  layout before the torch thread: load in the main thread, classify in the classify thread).

The loader and forwards bypass :mod:`models.torch_thread` (``load_model`` and the network
directly) so the layouts are what they say.  Prints msg/s per layout and the ratios.

    python -m bench.torch_threads --model-dir var/models/default --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

LAYOUTS = ("one", "main-then-other", "load-main")


def _classify(model_dir: Path, count: int, threads: int, layout: str) -> float:
    import torch

    from bench.harness.limit import batches, tokenise
    from bench.harness.mix import MixOptions, build, unit_texts
    from models.saving import load_model

    torch.set_num_threads(threads)
    per_message = unit_texts(build(MixOptions(count=count)))
    result: list[float] = []

    def load() -> Callable[[], None]:
        loaded = load_model(model_dir, "cpu")
        pad_id = int(loaded.tokenizer.pad_token_id or 0)
        chunks = []
        for first in range(0, len(per_message), 64):
            texts = [t for units in per_message[first : first + 64] for t in units]
            rows = tokenise(loaded.tokenizer, texts, loaded.info.max_length)
            chunks.append(
                batches(sorted(rows, key=lambda r: len(r[0])), 64, pad_id, torch.device("cpu"))
            )
        tasks = [t.name for t in loaded.info.tasks]

        def run() -> None:
            with torch.inference_mode():
                for chunk in chunks:
                    for batch in chunk:
                        loaded.model(batch.input_ids, batch.attention_mask, batch.pool_mask, tasks)

        return run

    def timed(run: Callable[[], None]) -> None:
        run()  # warm-up pass: first shapes allocate
        started = time.perf_counter()
        run()
        result.append(count / (time.perf_counter() - started))

    if layout == "main-then-other":
        torch.ones(1000, 1000) @ torch.ones(1000, 1000)
    if layout == "load-main":
        run = load()
        worker = threading.Thread(target=timed, args=(run,))
    else:
        worker = threading.Thread(target=lambda: timed(load()))
    worker.start()
    worker.join()
    return result[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/default"))
    parser.add_argument("--count", type=int, default=2000, help="messages in the mix")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds")
    parser.add_argument("--layout", choices=LAYOUTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layout:
        print(_classify(args.model_dir, args.count, args.threads, args.layout))
        return
    rates: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for _ in range(args.rounds):
        for layout in LAYOUTS:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.torch_threads",
                    "--model-dir",
                    str(args.model_dir),
                    "--count",
                    str(args.count),
                    "--threads",
                    str(args.threads),
                    "--layout",
                    layout,
                ],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
            )
            rates[layout].append(float(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(rates["one"])
    print("| layout | msg/s (each round) | median / one thread |")
    print("|---|---|---|")
    for layout, values in rates.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {layout} | {shown} | {statistics.median(values) / base:.2f} |")


if __name__ == "__main__":
    main()
