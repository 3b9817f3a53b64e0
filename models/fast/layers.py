"""A shallower encoder for a distilled student: keep ``n`` of a pretrained encoder's layers.

Which layers stay is one rule, :func:`chosen_layers`: **the bottom** ``n`` (layers
``0 .. n-1``; 3 of MiniLM's 6 -> 0, 1, 2), i.e. the top layers are dropped.

Why not DistilBERT's every-other-layer initialisation (3 of 6 -> 1, 3, 5, top kept)?
DistilBERT (Sanh et al. 2019) paired it with a cosine loss aligning the student's hidden
states with the teacher's during pre-training-scale distillation, which is what makes
skipping layers cheap to repair.  attnwatch's student learns only the teacher's soft labels
while it is fine-tuned on the task, which is the setting Sajjad et al. studied ("On the
effect of dropping layers of pre-trained transformer models", Computer Speech & Language
77, 2023): comparing top, alternate (odd/even), symmetric, bottom and contribution-based
dropping followed by task fine-tuning, they found dropping the *top* layers the most
reliable across BERT, RoBERTa, XLNet and GLUE tasks, because the lower layers are the most
critical to keep (they hold the general-purpose features; the top layers specialise to the
pre-training objective and are re-learned in fine-tuning).  Keeping a contiguous bottom
stack also means every kept layer still reads exactly the input it was pre-trained on, so
nothing needs repairing before the first step.

Only BERT-like encoders are supported (BERT, MiniLM, RoBERTa, ELECTRA, ...: a Hugging Face
model with an ``encoder.layer`` ``ModuleList`` and ``config.num_hidden_layers``); any other
architecture raises :class:`ValueError` naming it.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def chosen_layers(total: int, n: int) -> list[int]:
    """The indices of the layers kept when ``n`` of ``total`` stay: the bottom ``n``.

    Raises :class:`ValueError` unless ``1 <= n <= total``.
    """
    if not 1 <= n <= total:
        msg = f"encoder_layers must be between 1 and the encoder's {total} layers, got {n}"
        raise ValueError(msg)
    return list(range(n))


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT-like Hugging Face encoder (``encoder.encoder.layer``).

    Raises :class:`ValueError` for an architecture without them.
    """
    stack = getattr(encoder, "encoder", None)
    layers = getattr(stack, "layer", None)
    config = getattr(encoder, "config", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(config, "num_hidden_layers"):
        model_type = getattr(config, "model_type", None) or type(encoder).__name__
        msg = (
            f"cannot drop layers of a {model_type!r} encoder: only BERT-like encoders "
            "(an encoder.layer list and config.num_hidden_layers) are supported"
        )
        raise ValueError(msg)
    return layers


def keep_layers(encoder: nn.Module, n: int) -> list[int]:
    """Keep ``n`` of ``encoder``'s transformer layers in place; return their old indices.

    The kept layers keep their weights; ``config.num_hidden_layers`` becomes ``n``, so a
    model saved afterwards records (and reloads with) its real depth.
    """
    layers = encoder_layers(encoder)
    kept = chosen_layers(len(layers), n)
    stack: Any = encoder.encoder  # BERT-like: checked by encoder_layers
    stack.layer = nn.ModuleList([layers[i] for i in kept])
    for position, layer in enumerate(stack.layer):
        # Attention modules number themselves for key/value caches; keep that consistent.
        for module in layer.modules():
            numbered: Any = module
            if isinstance(getattr(numbered, "layer_idx", None), int):
                numbered.layer_idx = position
    config: Any = encoder.config
    types = getattr(config, "layer_types", None)
    if isinstance(types, list) and len(types) == len(layers):
        config.layer_types = [types[i] for i in kept]
    config.num_hidden_layers = n
    return kept
