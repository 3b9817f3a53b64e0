"""int8 label agreement with torch per quantisation setting, per CPU (issue 23).

    python bench/int8_cpus.py --model-dir DIR --data seed --emulate Haswell
    python bench/int8_cpus.py --model-dir DIR --data banking77 --limit 500 --emulate Haswell

Exports DIR to fp32 ONNX (verified against torch), quantises that graph with every setting
in :data:`CANDIDATES`, and computes torch's arg-max labels here.  ONNX Runtime then labels
the same padded batches in a child process (``bench/ort_labels.py``): once natively, and,
with ``--emulate MODEL``, under ``qemu-x86_64 -cpu MODEL`` (QEMU user-mode emulation; MODEL
Haswell is an AVX2 + FMA CPU without AVX-512 or VNNI, where ORT's U8S8 kernels use the
saturating ``vpmaddubsw``).  Only ORT's inference is emulated; the child reports the
CPUID features it saw.  The table gives, per setting and CPU, the share of texts with
torch's label, the accuracy against the data set's gold labels and the largest logit
difference from the same graph run natively (0 where the int8 arithmetic is exact on both
CPUs).  ``--only A --only B`` measures only the settings whose names contain A or B.

Data: ``seed`` is every seed text (the export's default validation set); ``banking77`` the
test split; ``phrasebank`` the held-out fold 0 of ``bench/fast_tier.py``.  ``--limit N``
takes a seeded sample (QEMU runs ORT some 10-50 x slower).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fast_tier import runs_of, sample

from models.data.examples import Example
from models.fast.int8_settings import Int8Settings, cpu_features, describe_cpu
from models.fast.onnx_export import ExportGraph, export_onnx
from models.fast.quantization import quantize
from models.inference import pad, tokenize
from models.saving import load_model

HERE = Path(__file__).resolve().parent
BATCH = 32
CANDIDATES = {
    "QInt8 per channel (before)": Int8Settings("QInt8", per_channel=True),
    "QInt8 per tensor": Int8Settings("QInt8", per_channel=False),
    "QInt8 per channel, reduce_range": Int8Settings("QInt8", per_channel=True, reduce_range=True),
    "QInt8 per tensor, reduce_range": Int8Settings("QInt8", per_channel=False, reduce_range=True),
    "QUInt8 per channel (U8U8)": Int8Settings("QUInt8", per_channel=True),
    "QUInt8 per tensor (U8U8)": Int8Settings("QUInt8", per_channel=False),
}


def examples_of(name: str, limit: int | None) -> list[Example]:
    """The texts to measure on (see the module docstring)."""
    if name == "seed":
        train, test, _ = runs_of("seed", 1)[0][1:]
        return sample(train + test, limit)
    return sample(runs_of(name, 1)[0][2], limit)


def torch_labels(graph: ExportGraph, batches: list[tuple[np.ndarray, ...]]) -> dict[str, list[int]]:
    """Torch's arg-max label index per task, batch after batch."""
    labels: dict[str, list[int]] = {task: [] for task in graph.tasks}
    for arrays in batches:
        with torch.inference_mode():
            outputs = graph(*(torch.from_numpy(a) for a in arrays))
        for i, task in enumerate(graph.tasks):
            labels[task] += outputs[2 * i].argmax(-1).tolist()
    return labels


def ort_labels(
    prefix: Sequence[str], batches_file: Path, tasks: list[str], graphs: list[Path], out: Path
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Run ``bench/ort_labels.py`` (under ``prefix``, e.g. QEMU): its answer and logits."""
    command = [*prefix, sys.executable, str(HERE / "ort_labels.py"), str(batches_file)]
    command += [",".join(tasks), str(out), *map(str, graphs)]
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL, timeout=3600)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    with np.load(out.with_suffix(".npz")) as data:
        logits = {key: data[key] for key in data.files}
    return result, logits


def measure(opts: argparse.Namespace) -> dict[str, Any]:
    """Every candidate on every CPU: agreement with torch and accuracy, per task."""
    examples = examples_of(opts.data, opts.limit)
    loaded = load_model(opts.model_dir, "cpu")
    graph = ExportGraph(loaded.model).eval()
    tasks = list(graph.tasks)
    label_names = {t.name: list(t.labels) for t in loaded.info.tasks}
    tokenized = tokenize(loaded.tokenizer, [e.text for e in examples], loaded.info.max_length)
    order = sorted(range(len(examples)), key=lambda i: len(tokenized.ids[i]))
    pad_id = loaded.tokenizer.pad_token_id or 0
    batches: list[tuple[np.ndarray, ...]] = [
        pad(tokenized, order[s : s + BATCH], pad_id) for s in range(0, len(order), BATCH)
    ]
    gold = {t: [examples[i].labels.get(t) for i in order] for t in tasks}
    reference = torch_labels(graph, batches)

    def scores(labels: dict[str, list[int]]) -> dict[str, dict[str, float | int | None]]:
        out: dict[str, dict[str, float | int | None]] = {}
        for task in tasks:
            names = [label_names[task][k] for k in labels[task]]
            rows = [i for i, g in enumerate(gold[task]) if g is not None]
            same = sum(a == b for a, b in zip(labels[task], reference[task], strict=True))
            out[task] = {
                "agreement": round(same / len(order), 4),
                "accuracy": round(sum(names[i] == gold[task][i] for i in rows) / len(rows), 4)
                if rows
                else None,
                "n_gold": len(rows),
            }
        return out

    cpus: dict[str, list[str]] = {"native": []}
    if opts.emulate:
        cpus[f"QEMU -cpu {opts.emulate}"] = ["qemu-x86_64", "-cpu", opts.emulate]
    with tempfile.TemporaryDirectory(prefix="int8_cpus_") as tmp:
        work = Path(tmp)
        fp32 = export_onnx(opts.model_dir, work / "fp32") / "model.onnx"
        graphs = {}
        chosen = {
            k: v for k, v in CANDIDATES.items() if not opts.only or any(o in k for o in opts.only)
        }
        for i, (name, settings) in enumerate(chosen.items()):
            graphs[name] = work / f"int8_{i}.onnx"
            quantize(fp32, graphs[name], settings)
        batches_file = work / "batches.npz"
        arrays = {
            f"{b}/{k}": a for b, arr in enumerate(batches) for k, a in zip(NAMES, arr, strict=True)
        }
        np.savez(batches_file, **arrays)  # type: ignore[arg-type]
        results: dict[str, Any] = {}
        native: dict[str, np.ndarray] = {}
        for cpu, prefix in cpus.items():
            answer, logits = ort_labels(
                prefix, batches_file, tasks, list(graphs.values()), work / f"{len(results)}.json"
            )
            native = native or logits
            results[cpu] = {"cpu_seen": answer["cpu_seen"], "settings": {}}
            for number, (name, path) in enumerate(graphs.items()):
                diff = max(
                    float(np.abs(logits[f"{number}/{t}"] - native[f"{number}/{t}"]).max())
                    for t in tasks
                )
                results[cpu]["settings"][name] = {
                    "scores": scores(answer["labels"][str(path)]),
                    "ort_seconds": answer["seconds"][str(path)],
                    "max_logit_diff_from_native": diff,
                }
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started_at": opts.started.isoformat(timespec="seconds"),
        "host_cpu": cpu_features(),
        "model": f"{loaded.info.name}@{loaded.info.version}",
        "data": opts.data,
        "n": len(examples),
        "torch": scores(reference),
        "candidates": {k: vars(v) for k, v in chosen.items()},
        "cpus": results,
    }


NAMES = ("input_ids", "attention_mask", "pool_mask")


def render(report: dict[str, Any]) -> str:
    """A Markdown table: one row per setting, per CPU agreement / accuracy per task."""
    tasks = list(report["torch"])
    cpus = list(report["cpus"])
    lines = [
        f"`{report['command']}`",
        "",
        f"{report['model']} on {report['data']} ({report['n']} texts); host "
        f"{describe_cpu(report['host_cpu'])}.",
        "",
    ]
    for cpu in cpus:
        seen = ", ".join(k for k, v in report["cpus"][cpu]["cpu_seen"].items() if v)
        lines.append(f"- {cpu}: ORT saw {seen}")
    torch_acc = ", ".join(f"{t} {_pct(report['torch'][t]['accuracy'])}" for t in tasks)
    lines += ["", f"torch accuracy: {torch_acc}", ""]
    head = " | ".join(f"{cpu}: {t} agree / acc" for cpu in cpus for t in tasks)
    head += "".join(f" | {cpu}: max logit diff from native, ORT s" for cpu in cpus)
    columns = len(cpus) * (len(tasks) + 1)
    lines += [f"| setting | {head} |", "|---|" + "---:|" * columns]
    for name in report["candidates"]:
        cells = []
        for cpu in cpus:
            s = report["cpus"][cpu]["settings"][name]["scores"]
            cells += [f"{_pct(s[t]['agreement'])} / {_pct(s[t]['accuracy'])}" for t in tasks]
        for cpu in cpus:
            entry = report["cpus"][cpu]["settings"][name]
            cells.append(f"{entry['max_logit_diff_from_native']:.2g}, {entry['ort_seconds']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="a torch model directory")
    parser.add_argument("--data", default="seed", choices=("seed", "banking77", "phrasebank"))
    parser.add_argument("--limit", type=int, default=None, help="seeded sample of the texts")
    parser.add_argument("--emulate", default=None, help="QEMU CPU model, e.g. Haswell")
    parser.add_argument("--out", type=Path, default=None, help="results stem (.json, .md)")
    parser.add_argument(
        "--only", action="append", default=[], help="part of a setting's name (repeatable)"
    )
    opts = parser.parse_args(argv)
    opts.started = datetime.now(UTC)
    report = measure(opts)
    text = render(report)
    print(text)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        opts.out.with_suffix(".md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
