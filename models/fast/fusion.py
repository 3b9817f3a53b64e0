"""Fused transformer kernels for an exported graph: ONNX Runtime's BERT optimiser, offline.

ONNX Runtime's own session optimiser (``ORT_ENABLE_ALL``, always on) fuses LayerNorm and
GELU but not attention: each layer's attention stays ~20 small nodes (MatMul, Reshape,
Transpose, Softmax, mask arithmetic), each a kernel launch on a few dozen tokens.  The
offline optimiser of ``onnxruntime.transformers`` rewrites the graph into one
``EmbedLayerNormalization``, one ``Attention`` node per layer (fused QKV projection,
masking, softmax), ``SkipLayerNormalization`` and ``BiasGelu``; dynamic quantisation then
turns each ``Attention`` into ``QAttention`` (int8 QKV weights, the same
:mod:`models.fast.int8_settings` as every MatMul).  Measured on the harness mix:
bench/RESULTS.md, "Fast tier (issue 27)".

It recognises the classic attention pattern (MatMul, scale, additive mask, Softmax,
MatMul), not the one of ``scaled_dot_product_attention`` with transformers' NaN guards: the
encoder is traced with ``eager`` attention (:func:`eager_attention`), which computes the
same function (the export is verified against torch after fusing).  Only BERT-like encoders
(the ones :mod:`models.fast.layers` supports) are fused; anything the optimiser leaves
unfused is an error rather than a silently slower graph.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

log = logging.getLogger(__name__)


class FusionError(ValueError):
    """The optimiser did not fuse the graph as expected; nothing was written."""


def eager_attention(encoder: nn.Module) -> None:
    """Switch a Hugging Face encoder to the ``eager`` attention implementation, in place."""
    setter = getattr(encoder, "set_attn_implementation", None)
    if setter is None:
        msg = f"{type(encoder).__name__} cannot switch its attention implementation"
        raise FusionError(msg)
    setter("eager")


def encoder_shape(encoder: nn.Module) -> tuple[int, int, int]:
    """(layers, attention heads, hidden size) of a BERT-like encoder's config."""
    config: Any = getattr(encoder, "config", None)
    try:
        return (
            int(config.num_hidden_layers),
            int(config.num_attention_heads),
            int(config.hidden_size),
        )
    except AttributeError as exc:
        msg = f"cannot fuse a {type(encoder).__name__}: its config has no BERT-like shape"
        raise FusionError(msg) from exc


def fuse_graph(fp32: Path, out: Path, layers: int, heads: int, hidden: int) -> dict[str, int]:
    """Write ``out``: ``fp32`` with fused BERT kernels; the fused operators' counts.

    Raises :class:`FusionError` unless every layer got an ``Attention`` and two
    ``SkipLayerNormalization`` nodes (what ORT's optimiser reports as fused).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    # the optimiser logs every node it removes at INFO
    loggers = [logging.getLogger(n) for n in ("onnx_model", "fusion_utils", "fusion_base")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        model = optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=heads,
            hidden_size=hidden,
            opt_level=0,  # graph fusions only; ORT's session applies its own at load time
            use_gpu=False,
        )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    counts = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    expected = {"Attention": layers, "SkipLayerNormalization": 2 * layers}
    short = {op: counts.get(op, 0) for op, want in expected.items() if counts.get(op, 0) != want}
    if short:
        msg = (
            f"the optimiser fused {short} in a {layers}-layer encoder (expected {expected}): "
            "the traced graph does not have the attention pattern it recognises"
        )
        raise FusionError(msg)
    model.save_model_to_file(str(out))
    log.info("fused %s", counts)
    return counts
