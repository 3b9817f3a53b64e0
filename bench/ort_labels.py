"""Arg-max labels of int8 ONNX graphs on saved batches: the child of ``bench/int8_cpus.py``.

    python bench/ort_labels.py BATCHES.npz TASKS OUT.json GRAPH.onnx [GRAPH.onnx ...]

Writes OUT.json (labels, seconds, CPU features) and OUT.npz (logits, ``<graph#>/<task>``).

Imports only numpy and onnxruntime, so ``bench/int8_cpus.py`` can run it under
``qemu-x86_64 -cpu Haswell`` (an AVX2-only CPU): only ONNX Runtime's inference is emulated.
It reports the SIMD features numpy detected through CPUID, which is what ONNX Runtime's
kernel dispatch sees too, so the table shows which CPU the labels came from.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

INPUTS = ("input_ids", "attention_mask", "pool_mask")
SHOWN = ("AVX2", "FMA3", "AVX512F", "AVX512BW", "AVX512VNNI", "AVXVNNI")


def cpu_seen() -> dict[str, bool]:
    """The CPUID features numpy's runtime dispatch detected (emulated ones under QEMU)."""
    # numpy has no public API for it; the private table is what its dispatch uses.
    from numpy._core._multiarray_umath import __cpu_features__  # type: ignore[import-not-found]

    return {name: bool(__cpu_features__.get(name, False)) for name in SHOWN}


def main(argv: list[str]) -> None:
    batches_file, tasks_arg, out, *graphs = argv
    tasks = tasks_arg.split(",")
    with np.load(batches_file) as data:
        count = len({key.split("/")[0] for key in data.files})
        batches = [[data[f"{i}/{name}"] for name in INPUTS] for i in range(count)]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    result: dict[str, object] = {"cpu_seen": cpu_seen(), "labels": {}, "seconds": {}}
    logits_out: dict[str, np.ndarray] = {}
    for number, graph in enumerate(graphs):
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        names = [f"{task}.logits" for task in tasks]
        labels: dict[str, list[int]] = {task: [] for task in tasks}
        rows: dict[str, list[np.ndarray]] = {task: [] for task in tasks}
        started = time.perf_counter()
        for arrays in batches:
            got = session.run(names, dict(zip(INPUTS, arrays, strict=True)))
            for task, logits in zip(tasks, got, strict=True):
                labels[task] += np.asarray(logits).argmax(-1).tolist()
                rows[task].append(np.asarray(logits, dtype=np.float32))
        result["seconds"][graph] = round(time.perf_counter() - started, 2)  # type: ignore[index]
        result["labels"][graph] = labels  # type: ignore[index]
        for task in tasks:
            logits_out[f"{number}/{task}"] = np.concatenate(rows[task])
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    np.savez(Path(out).with_suffix(".npz"), **logits_out)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
