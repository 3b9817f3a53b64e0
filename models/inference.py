"""Batched inference shared by every runtime: tokenise once, bucket by length, post-process.

A runtime (torch, ONNX Runtime) only supplies :data:`Forward`: padded token ids in, each
task's logits and per-token attention out.  Everything else lives here, so the runtimes
cannot drift apart in what they log:

- **tokenise once**: one fast-tokenizer call per batch gives ids, offsets and the special
  tokens; nothing is tokenised twice (the word merge reuses the offsets);
- **length bucketing**: texts are sorted by token count and cut where a new sub-batch
  costs less than the padding it saves (:func:`length_buckets`), within ``max_texts``
  texts and ``max_tokens`` padded tokens, so a long news sentence does not pad thirty
  short chat turns to its length;
- **post-processing**: calibrated scores, top-k, the unknown-intent rule and the word
  weights, from numpy arrays, with the piece-to-word mapping computed once per text and
  shared by its tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from transformers import PreTrainedTokenizerBase

from models.words import WordWeight, piece_shares, spans_array, word_spans


class TaskArrays(NamedTuple):
    """One task's forward output for a sub-batch: logits [B, C], attention [B, T] (head mean)."""

    logits: NDArray[np.float32]
    attention: NDArray[np.float32]


#: (input_ids [B, T] int64, attention_mask [B, T] int64, pool_mask [B, T] bool, tasks) -> outputs
Forward = Callable[
    [NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], Sequence[str]],
    Mapping[str, TaskArrays],
]


@dataclass(frozen=True)
class Tokenized:
    """A batch tokenised without padding: ids, piece spans and the special-token mask per text."""

    ids: list[list[int]]
    offsets: list[list[tuple[int, int]]]
    special: list[list[int]]

    @property
    def lengths(self) -> list[int]:
        """Token count of each text, special tokens included."""
        return [len(row) for row in self.ids]


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> Tokenized:
    """One fast-tokenizer call for the whole batch, truncated at ``max_length``, unpadded."""
    batch = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_attention_mask=False,
    )
    return Tokenized(
        ids=batch["input_ids"],
        offsets=[[(int(s), int(e)) for s, e in row] for row in batch["offset_mapping"]],
        special=batch["special_tokens_mask"],
    )


#: What one forward pass costs beyond its tokens, in padded tokens: the bucketing's price
#: of starting another sub-batch.  Measured on the benchmark mix (2,000 messages, 4,157
#: units, MiniLM, 2 cores): 64 -> 7.7-8.0 s of forward, 256 -> 8.1 s, 1024 -> 9.0-9.3 s;
#: plain sorted chunks of 64 per micro-batch took 10.0 s (110k padded tokens vs 78k).
FORWARD_OVERHEAD_TOKENS = 64


def length_buckets(
    lengths: Sequence[int],
    max_texts: int,
    max_tokens: int,
    overhead_tokens: int = FORWARD_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Indices sorted by length, cut into sub-batches that minimise the padded work.

    The cut points are chosen by dynamic programming over the sorted lengths: the cost of a
    sub-batch is its padded tokens (size x its longest text) plus ``overhead_tokens``, and
    the total is minimal subject to <= ``max_texts`` texts and <= ``max_tokens`` padded
    tokens per sub-batch (a text longer than the budget goes alone).  Cutting a sorted list
    into fixed chunks instead padded 1.5x the real tokens on the benchmark mix; this pads
    1.1x.  O(n x max_texts) steps, ~3 ms for a 130-text micro-batch.
    """
    if max_texts < 1 or max_tokens < 1:
        msg = f"max_texts and max_tokens must be >= 1, got {max_texts}, {max_tokens}"
        raise ValueError(msg)
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    ordered = [lengths[i] for i in order]
    n = len(ordered)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        longest = ordered[end - 1]
        for start in range(end - 1, max(0, end - max_texts) - 1, -1):
            size = end - start
            if size > 1 and size * longest > max_tokens:
                break
            cost = best[start] + overhead_tokens + size * longest
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups: list[list[int]] = []
    end = n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def pad(
    tokenized: Tokenized, rows: Sequence[int], pad_id: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """input_ids, attention_mask and pool_mask [len(rows), longest] for the given texts.

    The pool mask is the real tokens less the special ones; a text with no ordinary token
    (``""``) pools over its special tokens instead of nothing.
    """
    width = max(len(tokenized.ids[r]) for r in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    pool = np.zeros((len(rows), width), dtype=np.bool_)
    for i, r in enumerate(rows):
        n = len(tokenized.ids[r])
        input_ids[i, :n] = tokenized.ids[r]
        attention[i, :n] = 1
        ordinary = np.asarray(tokenized.special[r], dtype=np.bool_) == 0
        pool[i, :n] = ordinary if ordinary.any() else True
    return input_ids, attention, pool


@dataclass(frozen=True)
class TaskRule:
    """How one task's logits become a label: its labels, temperature and unknown threshold."""

    labels: tuple[str, ...]
    temperature: float = 1.0
    unknown_threshold: float | None = None
    unknown_label: str = "unknown"


@dataclass(frozen=True)
class TaskAnswer:
    """A task's answer for one text (the classifier wraps it in its public type)."""

    label: str
    score: float
    top: tuple[tuple[str, float], ...]
    words: tuple[WordWeight, ...]


class _Pieces(NamedTuple):
    """How a text's pooled pieces feed its display words, computed once per text.

    Row ``i`` gives ``share[i]`` of the weight at token ``positions[i]`` to word
    ``word_of[i]``; a piece spanning several words (a sentencepiece ``ed.``) has a row per
    word.  ``used`` lists the words that get a piece, in text order.
    """

    positions: NDArray[np.intp]
    word_of: NDArray[np.intp]
    share: NDArray[np.float64]
    used: list[int]
    spans: list[tuple[int, int]]
    text: str


_NO_PIECES = _Pieces(
    np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float64), [], [], ""
)


def _pieces(text: str, offsets: Sequence[tuple[int, int]], pool_row: NDArray[np.bool_]) -> _Pieces:
    """Map pooled, non-empty pieces to display words (vectorised; once per text)."""
    spans = word_spans(text)
    pooled = np.flatnonzero(pool_row[: len(offsets)])
    if not spans or pooled.size == 0:
        return _NO_PIECES
    piece_spans = spans_array(offsets)[pooled]
    keep = piece_spans[:, 1] > piece_spans[:, 0]
    shares = piece_shares(spans_array(spans), piece_spans[keep], len(text))
    if shares.unit.size == 0:
        return _NO_PIECES
    return _Pieces(
        pooled[keep][shares.piece].astype(np.intp),
        shares.unit,
        shares.share,
        np.unique(shares.unit).tolist(),
        spans,
        text,
    )


def _word_weights(pieces: _Pieces, alpha: NDArray[np.float32]) -> tuple[WordWeight, ...]:
    if pieces.positions.size == 0:
        return ()
    values = alpha[pieces.positions].astype(np.float64) * pieces.share
    sums = np.bincount(pieces.word_of, weights=values, minlength=len(pieces.spans))
    weights = (sums[pieces.used] / (float(sums[pieces.used].sum()) or 1.0)).tolist()
    text = pieces.text
    return tuple(
        WordWeight(text[s:e], weight, s, e)
        for (s, e), weight in zip((pieces.spans[i] for i in pieces.used), weights, strict=True)
    )


def _softmax(logits: NDArray[np.float32]) -> NDArray[np.float64]:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def run_batched(
    forward: Forward,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    rules: Mapping[str, TaskRule],
    *,
    max_length: int,
    top_k: int = 3,
    max_texts: int = 64,
    max_tokens: int = 4096,
) -> list[dict[str, TaskAnswer]]:
    """Classify ``texts`` for every task in ``rules``; answers in input order.

    Every task's word weights of a text sum to one (pieces cut by truncation or with an
    empty span carry none); the words are :mod:`models.words`' display words, each with
    its character span in its text.
    """
    if not texts:
        return []
    tokenized = tokenize(tokenizer, texts, max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tasks = list(rules)
    answers: list[dict[str, TaskAnswer]] = [{} for _ in texts]
    for rows in length_buckets(tokenized.lengths, max_texts, max_tokens):
        input_ids, attention_mask, pool_mask = pad(tokenized, rows, int(pad_id))
        outputs = forward(input_ids, attention_mask, pool_mask, tasks)
        pieces = [_pieces(texts[r], tokenized.offsets[r], pool_mask[i]) for i, r in enumerate(rows)]
        for name, rule in rules.items():
            arrays = outputs[name]
            probs = _softmax(arrays.logits / rule.temperature)
            k = min(top_k, len(rule.labels))
            top_i = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
            for i, r in enumerate(rows):
                top = tuple((rule.labels[j], float(probs[i, j])) for j in top_i[i].tolist())
                label = top[0][0]
                if rule.unknown_threshold is not None and top[0][1] < rule.unknown_threshold:
                    label = rule.unknown_label
                words = _word_weights(pieces[i], arrays.attention[i])
                answers[r][name] = TaskAnswer(label, top[0][1], top, words)
    return answers
