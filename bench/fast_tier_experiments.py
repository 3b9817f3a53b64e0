"""Fast-tier experiments of issue 27 that did not become options: kept so the numbers in
bench/RESULTS.md ("Fast tier (issue 27)") can be reproduced.

    python -m bench.fast_tier_experiments static-int8 FP32_ONNX_DIR OUT --texts FILE
    python -m bench.fast_tier_experiments drop-layers var/models/default 2 OUT   # speed only
    python -m bench.fast_tier_experiments score DIR [DIR ...]                    # Banking77 test

``static-int8``: ONNX Runtime's static quantisation (QDQ, MatMul only, activations calibrated
with MinMax on up to 256 texts, one per line) with decision 0011's weights (QInt8 per
channel, 7-bit).  ``drop-layers``: the model with only its bottom N encoder layers and no
further training, a graph of the right shape for ``bench/fast_tier_speed.py`` (its labels
mean nothing).  ``score``: accuracy, macro-F1 and comp@20 via ``predict`` (as
``bench/fast_tier.py``) of model directories on the Banking77 test split.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from bench.fast_tier import ALL_LABELS, accuracy_by_group, faith_via_predict, runs_of, sample
from models.encoding import load_tokenizer
from models.fast.int8_settings import CHOSEN
from models.fast.layers import keep_layers
from models.fast.loading import open_classifier
from models.fast.onnx_runtime import INPUTS, ONNX_WEIGHTS
from models.inference import pad, tokenize
from models.saving import file_hash, load_model, read_info, save_model, write_json

CALIBRATION_TEXTS = 256
BATCH = 32


class Batches(CalibrationDataReader):  # type: ignore[misc]
    """Padded, length-sorted batches of the calibration texts, as the classifier feeds them."""

    def __init__(self, arrays: Sequence[tuple[np.ndarray, ...]]) -> None:
        self._batches: Iterator[tuple[np.ndarray, ...]] = iter(arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else dict(zip(INPUTS, batch, strict=True))


def static_int8(source: Path, out: Path, texts: list[str]) -> None:
    """``out``: the fp32 ONNX directory ``source`` with a statically quantised graph."""
    info, tokenizer = read_info(source), load_tokenizer(source)
    tokenized = tokenize(tokenizer, texts[:CALIBRATION_TEXTS], info.max_length)
    order = sorted(range(len(tokenized.ids)), key=lambda i: len(tokenized.ids[i]))
    pad_id = int(tokenizer.pad_token_id or 0)
    arrays = [pad(tokenized, order[s : s + BATCH], pad_id) for s in range(0, len(order), BATCH)]
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out)
    quantize_static(
        source / ONNX_WEIGHTS,
        out / ONNX_WEIGHTS,
        Batches(arrays),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=CHOSEN.per_channel,
        reduce_range=CHOSEN.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType[CHOSEN.weight_type],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config.update(
        name=config["name"] + "-static-int8",
        version=file_hash(out / ONNX_WEIGHTS)[:12],
        quantization="static-int8 (QDQ, MinMax)",
    )
    write_json(out / "config.json", config)


def drop_layers(source: Path, layers: int, out: Path) -> None:
    """``source`` with only its bottom ``layers`` encoder layers, saved untrained: speed only."""
    loaded = load_model(source, "cpu")
    keep_layers(loaded.model.encoder, layers)
    save_model(
        loaded.model,
        loaded.tokenizer,
        out,
        name=f"speed-only-l{layers}",
        max_length=loaded.info.max_length,
        encoder_source=f"{source} with {layers} layers, not trained: for speed only",
        created_at=loaded.info.created_at,
        card=f"# speed-only-l{layers}\n\nLayers dropped without training: speed only.\n",
        metrics={},
    )


def score(directories: Sequence[Path]) -> dict[str, Any]:
    """Banking77 test accuracy, macro-F1 and comp@20 (100 texts) of each directory."""
    ((_, _, test, _),) = runs_of("banking77", 1)
    faith = [e.text for e in sample(test, 100, seed=1)]
    out: dict[str, Any] = {}
    for directory in directories:
        classifier = open_classifier(directory, "cpu", top_k=ALL_LABELS)
        scores, _, _ = accuracy_by_group(classifier, test)
        out[str(directory)] = {
            **scores["intent"]["banking77"],
            "comp20_via_predict": faith_via_predict(classifier, faith, "intent"),
        }
        print(directory, out[str(directory)], flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    static = commands.add_parser("static-int8", help="static QDQ int8 of an fp32 ONNX export")
    static.add_argument("source", type=Path)
    static.add_argument("out", type=Path)
    static.add_argument("--texts", type=Path, required=True, help="calibration texts, one a line")
    drop = commands.add_parser("drop-layers", help="bottom N layers, untrained (speed only)")
    drop.add_argument("source", type=Path)
    drop.add_argument("layers", type=int)
    drop.add_argument("out", type=Path)
    scored = commands.add_parser("score", help="Banking77 test scores of model directories")
    scored.add_argument("directories", type=Path, nargs="+")
    scored.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args(argv)
    if opts.command == "static-int8":
        lines = opts.texts.read_text(encoding="utf-8").splitlines()
        static_int8(opts.source, opts.out, [t for t in lines if t.strip()])
    elif opts.command == "drop-layers":
        drop_layers(opts.source, opts.layers, opts.out)
    else:
        results = score(opts.directories)
        if opts.json is not None:
            opts.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
