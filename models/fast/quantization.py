"""Dynamic int8 quantisation of an exported graph, and its label agreement with torch.

The settings, the default bar and why (CPUs without VNNI) are in
:mod:`models.fast.int8_settings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import PreTrainedTokenizerBase

from models.fast.int8_settings import CHOSEN, Int8Settings, describe_cpu, settings_dict
from models.fast.onnx_runtime import INPUTS, output_names, session_options
from models.inference import pad, tokenize

log = logging.getLogger(__name__)

#: Texts per forward when measuring agreement.
AGREEMENT_BATCH = 32


class AgreementError(ValueError):
    """The int8 graph's labels agree with torch's below the bar on this CPU; nothing written."""


def quantize(fp32: Path, int8: Path, settings: Int8Settings = CHOSEN) -> None:
    """Dynamic quantisation of ``fp32`` into ``int8``: int8 weights, activations at run time.

    ORT's quant_pre_process changed nothing on the tiny model, so it is not run.
    """
    root = logging.getLogger()
    # onnxruntime.quantization logs every node it skips straight to the root logger (and
    # suggests quant_pre_process, measured to change nothing here): keep that out of ours.
    quiet = logging.Filter("onnxruntime.quantization")
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            fp32,
            int8,
            weight_type=QuantType[settings.weight_type],
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            # Fused kernels (models.fast.fusion: Attention, SkipLayerNormalization) are
            # contrib ops that ONNX's shape inference cannot type; their outputs are fp32.
            # Only a fallback: a graph whose types are all inferred quantises as before.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(quiet)


@dataclass(frozen=True)
class Int8Check:
    """The int8 graph's label agreement with torch on the validation texts, and where."""

    settings: Int8Settings
    #: Per task: share of validation texts with torch's arg-max label.
    agreement: dict[str, float]
    texts: int
    #: What the validation texts are (a file, "seed chats and headlines", ...).
    validation: str
    min_agreement: float
    cpu: dict[str, object]

    def as_json(self) -> dict[str, object]:
        """The record written to metrics.json (``onnx_int8``)."""
        return {
            "settings": settings_dict(self.settings),
            "label_agreement_with_torch": {t: round(a, 4) for t, a in self.agreement.items()},
            "validation_texts": self.texts,
            "validation": self.validation,
            "min_agreement": self.min_agreement,
            "measured_on_cpu": self.cpu,
        }


def validation_texts() -> list[str]:
    """The default validation texts: every seed chat and headline (1,402, shipped)."""
    from models.data.loading import seed_examples

    train, test, _ = seed_examples()
    return [e.text for e in train + test]


def label_agreement(
    forward: Callable[..., tuple[torch.Tensor, ...]],
    tasks: Sequence[str],
    path: Path,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
) -> dict[str, float]:
    """Per task, the share of ``texts`` whose arg-max label is the same in torch and ORT.

    ``forward`` is the exported torch module: (ids, mask, pool) in, (logits, attention)
    per task in ``tasks`` order out; ``path`` the ONNX graph.
    """
    if not texts:
        msg = "no validation texts to measure the int8 graph's agreement on"
        raise ValueError(msg)
    session = ort.InferenceSession(
        str(path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )
    names = [output_names(task)[0] for task in tasks]
    tokenized = tokenize(tokenizer, texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(tokenized.ids[i]))
    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    same = dict.fromkeys(tasks, 0)
    for start in range(0, len(order), AGREEMENT_BATCH):
        arrays = pad(tokenized, order[start : start + AGREEMENT_BATCH], pad_id)
        with torch.inference_mode():
            expected = forward(*(torch.from_numpy(a) for a in arrays))
        got = session.run(names, dict(zip(INPUTS, arrays, strict=True)))
        for i, task in enumerate(tasks):
            want = expected[2 * i].numpy().argmax(-1)
            same[task] += int((np.asarray(got[i]).argmax(-1) == want).sum())
    return {task: count / len(texts) for task, count in same.items()}


def check_agreement(check: Int8Check) -> None:
    """:class:`AgreementError` when any task's agreement is below the bar."""
    for task, share in check.agreement.items():
        log.info("int8 graph vs torch, %s: %.1f %% same labels", task, 100 * share)
    low = {t: a for t, a in check.agreement.items() if a < check.min_agreement}
    if low:
        shares = ", ".join(f"{t} {100 * a:.1f} %" for t, a in low.items())
        msg = (
            f"the int8 graph ({check.settings.describe()}) gives torch's label for only "
            f"{shares} of {check.texts} validation texts ({check.validation}) on this CPU "
            f"({describe_cpu(check.cpu)}), below the bar of {100 * check.min_agreement:g} %; "
            "nothing was written.  Measure on texts like the ones it will serve "
            "(--validation-data), export fp32, or lower --min-agreement knowingly"
        )
        raise AgreementError(msg)
