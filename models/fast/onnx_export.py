"""Export a saved torch model directory to an ONNX model directory, verified against torch.

:func:`export_onnx` traces :class:`~models.modeling.AttentionClassifier` into ``model.onnx``
(dynamic batch and sequence axes; per task ``<task>.logits`` and ``<task>.attention``, the
mean over the pooling heads), runs ONNX Runtime and torch on texts of different lengths and
refuses the export if they differ beyond :data:`ATOL` + :data:`RTOL` x |torch|.  With
``int8`` the verified fp32 graph is then quantised (dynamic, int8 weights, settings in
:mod:`models.fast.quantization`); its labels may differ from torch's, so their agreement
on a validation set is measured on the exporting CPU, written on the card and in
``metrics.json``, and the export is refused below :data:`MIN_AGREEMENT` (or the bar given).
With ``fuse`` the fp32 graph first gets ONNX Runtime's fused BERT kernels
(:mod:`models.fast.fusion`) and is verified against torch again; ``max_length`` serves the
model with a shorter truncation than it was trained with (chat turns are short).
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from models.fast.fusion import eager_attention, encoder_shape, fuse_graph
from models.fast.int8_settings import (
    CHOSEN,
    MIN_AGREEMENT,
    Int8Settings,
    cpu_features,
    describe_cpu,
    settings_dict,
)
from models.fast.onnx_runtime import (
    INPUTS,
    ONNX_WEIGHTS,
    RUNTIME,
    OnnxTextClassifier,
    output_names,
    session_options,
)
from models.fast.quantization import (
    Int8Check,
    check_agreement,
    label_agreement,
    quantize,
    validation_texts,
)
from models.inference import pad, tokenize
from models.modeling import AttentionClassifier
from models.saving import CALIBRATION, ModelDirError, file_hash, load_model, read_config, write_json

log = logging.getLogger(__name__)

#: fp32 ONNX Runtime vs torch: |onnx - torch| <= ATOL + RTOL * |torch| for logits and attention.
ATOL = 1e-4
RTOL = 1e-4
#: Verification texts: empty, short, medium and one truncated at every max_length.
VERIFY_TEXTS = (
    "",
    "hi",
    "my card was declined at the shop",
    "I was charged twice for the same transfer and the app keeps logging me out, please help",
    " ".join(["the transfer to my savings account has still not arrived today"] * 60),
)
#: Two lengths, so the traced batch is padded: the encoder's padding-mask path is recorded.
TRACE_TEXTS = ("a short example", "a longer example, so that the traced batch needs padding")
COPIED = ("labels.json", "metrics.json", CALIBRATION)


class ExportMismatchError(ValueError):
    """The exported graph does not give torch's answers; nothing was written."""


@dataclass(frozen=True)
class Comparison:
    """How far ONNX Runtime's outputs were from torch's on :data:`VERIFY_TEXTS`."""

    logits: float
    attention: float
    #: Share of (text, task) pairs with the same arg-max label.
    agreement: float
    within_tolerance: bool


@dataclass(frozen=True)
class GraphChanges:
    """What the served graph changes against the trained model: fusion and truncation."""

    #: Fused operators and their counts (None: not fused).
    fused: dict[str, int] | None
    max_length: int
    trained_max_length: int


class ExportGraph(nn.Module):
    """The classifier with flat outputs: per task, logits and the head-mean attention."""

    def __init__(self, model: AttentionClassifier) -> None:
        super().__init__()
        self.model = model
        self.tasks = list(model.tasks)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pool_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """(logits [B, C], attention [B, T]) for every task, in :attr:`tasks` order."""
        outputs = self.model(input_ids, attention_mask, pool_mask, self.tasks)
        flat: list[torch.Tensor] = []
        for name in self.tasks:
            flat += [outputs[name].logits.float(), outputs[name].attention.float().mean(dim=1)]
        return tuple(flat)


def export_onnx(
    model_dir: Path,
    out_dir: Path,
    *,
    int8: bool = False,
    opset: int = 17,
    min_agreement: float = MIN_AGREEMENT,
    validation: Sequence[str] | None = None,
    validation_name: str = "given texts",
    settings: Int8Settings = CHOSEN,
    fuse: bool = False,
    max_length: int | None = None,
) -> Path:
    """Export the torch model in ``model_dir`` to a self-contained ONNX model directory.

    ``out_dir`` must be new, empty or an earlier ONNX export (which is replaced).  With
    ``int8`` the graph is quantised with ``settings`` and its arg-max labels are compared
    with torch's on ``validation`` (default: every seed text; ``validation_name`` says what
    they are on the card) on this CPU.  Raises
    :class:`~models.saving.ModelDirError` for a directory that is not a torch model,
    :class:`ExportMismatchError` when the fp32 graph differs from torch and
    :class:`~models.fast.quantization.AgreementError` when a task's int8 agreement is below
    ``min_agreement``; no partial output is left behind.  ``fuse`` fuses attention, layer
    norms and GELU (:class:`~models.fast.fusion.FusionError` if the graph does not fuse);
    ``max_length`` (at most the model's) truncates texts shorter at serving time.  Returns
    ``out_dir``.
    """
    if read_config(model_dir).get("runtime") == RUNTIME:
        msg = f"{model_dir} is already an ONNX export; export from the torch model directory"
        raise ModelDirError(msg)
    loaded = load_model(model_dir, "cpu")
    _check_target(model_dir, out_dir)
    trained_length = loaded.info.max_length
    length = trained_length if max_length is None else max_length
    if not 8 <= length <= trained_length:
        msg = f"max_length must be in [8, {trained_length}] (the model's), got {length}"
        raise ValueError(msg)
    if fuse:
        eager_attention(loaded.model.encoder)
    kind = ("fused " if fuse else "") + ("dynamic int8" if int8 else "fp32")
    log.info(
        "exporting %s@%s to ONNX (%s, opset %d)", loaded.info.name, loaded.info.version, kind, opset
    )
    graph = ExportGraph(loaded.model).eval()
    # Built beside out_dir and moved into place only once verified and complete.
    work = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    try:
        fp32 = work / "model.fp32.onnx"
        _trace(graph, loaded.tokenizer, length, fp32, opset)
        fused: dict[str, int] | None = None
        if fuse:
            traced = work / "model.traced.onnx"
            fp32.rename(traced)
            fused = fuse_graph(traced, fp32, *encoder_shape(loaded.model.encoder))
            traced.unlink()
        check = _verify(graph, fp32, loaded.tokenizer, length)
        int8_check = labels = None
        if int8:
            quantize(fp32, work / ONNX_WEIGHTS, settings)
            fp32.unlink()
            int8_check = _compare(graph, work / ONNX_WEIGHTS, loaded.tokenizer, length)
            texts = list(validation) if validation is not None else validation_texts()
            name = validation_name if validation is not None else "seed chats and headlines"
            labels = Int8Check(
                settings,
                label_agreement(
                    graph,
                    graph.tasks,
                    work / ONNX_WEIGHTS,
                    loaded.tokenizer,
                    texts,
                    length,
                ),
                len(texts),
                name,
                min_agreement,
                cpu_features(),
            )
            check_agreement(labels)
        else:
            fp32.rename(work / ONNX_WEIGHTS)
        _write_directory(
            model_dir,
            work,
            loaded.tokenizer,
            int8=labels,
            opset=opset,
            checks=(check, int8_check),
            graph=GraphChanges(fused, length, trained_length),
        )
        OnnxTextClassifier(work, threads=1)  # the finished directory opens: hashes agree
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("wrote %s", out_dir)
    return out_dir


def _check_target(model_dir: Path, out_dir: Path) -> None:
    """Refuse an ``out_dir`` whose contents are not an earlier ONNX export."""
    if out_dir.resolve() == model_dir.resolve():
        msg = f"the ONNX output directory must differ from the model directory {model_dir}"
        raise ModelDirError(msg)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        msg = f"{out_dir} exists and is not a directory"
        raise ModelDirError(msg)
    if not any(out_dir.iterdir()):
        return
    try:
        runtime = read_config(out_dir).get("runtime")
    except ValueError:  # ModelDirError, or config.json that is not JSON
        runtime = None
    if runtime != RUNTIME:
        msg = f"{out_dir} is not empty and not an earlier ONNX export; refusing to overwrite it"
        raise ModelDirError(msg)


def _trace(
    graph: ExportGraph, tokenizer: PreTrainedTokenizerBase, max_length: int, path: Path, opset: int
) -> None:
    ids, mask, pool = pad(tokenize(tokenizer, TRACE_TEXTS, max_length), (0, 1), _pad_id(tokenizer))
    names = [name for task in graph.tasks for name in output_names(task)]
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    for task in graph.tasks:
        logits, attention = output_names(task)
        axes[logits] = {0: "batch"}
        axes[attention] = {0: "batch", 1: "sequence"}
    # The TorchScript exporter (dynamo=False), measured against the dynamo one on the tiny
    # model: 0.3 s against 7 s, no onnxscript dependency, and it writes the opset asked for
    # (dynamo builds opset 18 and failed to convert down to 17); both matched torch within
    # 5e-7.  It is deprecated: when torch drops it, use dynamo=True, opset 18 and onnxscript.
    with warnings.catch_warnings():
        # The tracer warns about Python booleans it records as constants (transformers' mask
        # checks, constant for an encoder) and about its deprecation; _compare then checks
        # the graph on batch sizes and lengths other than the traced ones.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index")
        torch.onnx.export(
            graph,
            tuple(torch.from_numpy(a) for a in (ids, mask, pool)),
            str(path),
            input_names=list(INPUTS),
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )


def _verify(
    graph: ExportGraph, path: Path, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Comparison:
    """:func:`_compare` the fp32 graph with torch; :class:`ExportMismatchError` if too far."""
    check = _compare(graph, path, tokenizer, max_length)
    log.info(
        "fp32 graph vs torch: max |diff| logits %.1e, attention %.1e", check.logits, check.attention
    )
    if not check.within_tolerance:
        msg = (
            f"ONNX export differs from torch beyond {ATOL:g} + {RTOL:g} x |torch| (max |diff| "
            f"logits {check.logits:.2e}, attention {check.attention:.2e}); nothing was written"
        )
        raise ExportMismatchError(msg)
    return check


def _compare(
    graph: ExportGraph, path: Path, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Comparison:
    """Run torch and ONNX Runtime on :data:`VERIFY_TEXTS` and compare their outputs.

    The texts go in one padded batch and each alone: other batch sizes and lengths than the
    traced ones.
    """
    session = ort.InferenceSession(
        str(path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )
    names = [name for task in graph.tasks for name in output_names(task)]
    tokenized = tokenize(tokenizer, VERIFY_TEXTS, max_length)
    everything = list(range(len(VERIFY_TEXTS)))
    worst = {"logits": 0.0, "attention": 0.0}
    same = total = 0
    within = True
    for rows in [everything, *([i] for i in everything)]:
        arrays = pad(tokenized, rows, _pad_id(tokenizer))
        with torch.inference_mode():
            expected = [t.numpy() for t in graph(*(torch.from_numpy(a) for a in arrays))]
        got = session.run(names, dict(zip(INPUTS, arrays, strict=True)))
        for name, want, have in zip(names, expected, got, strict=True):
            have = np.asarray(have, dtype=np.float32)
            if have.shape != want.shape or not np.isfinite(have).all():
                msg = f"ONNX output {name} has shape {have.shape} or non-finite values"
                raise ExportMismatchError(msg)
            kind = name.rpartition(".")[2]
            worst[kind] = max(worst[kind], float(np.abs(have - want).max()))
            within = within and bool(np.all(np.abs(have - want) <= ATOL + RTOL * np.abs(want)))
            if kind == "logits":
                same += int((have.argmax(-1) == want.argmax(-1)).sum())
                total += len(rows)
    return Comparison(worst["logits"], worst["attention"], same / total, within)


def _write_directory(
    model_dir: Path,
    work: Path,
    tokenizer: PreTrainedTokenizerBase,
    *,
    int8: Int8Check | None,
    opset: int,
    checks: tuple[Comparison, Comparison | None],
    graph: GraphChanges,
) -> None:
    """Everything but the graph: tokenizer, labels, calibration, metrics, config and card."""
    fp32_check, int8_check = checks
    tokenizer.save_pretrained(str(work))
    for name in COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, work / name)
    source = read_config(model_dir)
    version = file_hash(work / ONNX_WEIGHTS)[:12]
    name = f"{source['name']}-onnx" + ("-int8" if int8 else "")
    config = {
        **source,
        "name": name,
        "version": version,
        "runtime": RUNTIME,
        "quantization": "dynamic-int8" if int8 else "none",
        "max_length": graph.max_length,
        "trained_max_length": graph.trained_max_length,
        "fused_operators": graph.fused,
        **({"quantization_settings": settings_dict(int8.settings)} if int8 else {}),
        "source_name": source["name"],
        "source_version": source["version"],
        "opset": opset,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "exported_with": {"torch": torch.__version__, "onnxruntime": ort.__version__},
    }
    write_json(work / "config.json", config)
    if int8 is not None:
        metrics_file = work / "metrics.json"
        metrics = json.loads(metrics_file.read_text("utf-8")) if metrics_file.is_file() else {}
        write_json(metrics_file, {**metrics, "onnx_int8": int8.as_json()})
    kind = f"dynamic int8 ({int8.settings.describe()}, fp32 activations)" if int8 else "fp32"
    lines = [
        "## Runtime",
        "",
        f"ONNX Runtime, {kind}: `{ONNX_WEIGHTS}` (opset {opset}) exported from "
        f"{source['name']}@{source['version']} with torch {torch.__version__}.  This model is "
        f"{name}@{version}; the version is the SHA-256 of `{ONNX_WEIGHTS}`.",
        "",
        f"The fp32 graph matched torch on {len(VERIFY_TEXTS)} verification texts: max |diff| "
        f"{fp32_check.logits:.1e} in logits, {fp32_check.attention:.1e} in attention weights.",
    ]
    if int8_check is not None and int8 is not None:
        lines[-1] += f"  The int8 graph: max |diff| {int8_check.logits:.1e} in logits."
        shares = ", ".join(f"{t} {100 * a:.1f} %" for t, a in int8.agreement.items())
        lines += [
            "",
            f"int8 label agreement with torch on {int8.texts} validation texts "
            f"({int8.validation}): {shares} "
            f"(bar {100 * int8.min_agreement:g} %), measured on {describe_cpu(int8.cpu)}.  "
            "The 7-bit weights keep this the same on CPUs without VNNI (AVX2, AVX-512): "
            "docs/decisions/0011-int8-on-every-cpu.md.",
        ]
    if graph.fused is not None:
        ops = ", ".join(f"{op} x{n}" for op, n in graph.fused.items())
        lines += ["", f"Fused kernels (ONNX Runtime's BERT optimiser): {ops}."]
    if graph.max_length != graph.trained_max_length:
        lines += [
            "",
            f"Texts are truncated at {graph.max_length} tokens (trained at "
            f"{graph.trained_max_length}).",
        ]
    lines += ["", "The metrics above are the source model's, measured with torch."]
    card = model_dir / "README.md"
    text = card.read_text(encoding="utf-8").rstrip() if card.is_file() else f"# {name}"
    (work / "README.md").write_text(text + "\n\n" + "\n".join(lines) + "\n", encoding="utf-8")


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
