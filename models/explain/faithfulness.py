"""Do the logged attention weights explain the decision?  ERASER faithfulness per word.

Following ERASER (DeYoung et al. 2020), an explanation ranks the words of a
text; for a fraction ``k`` of the words, taken from the top of the ranking::

    comprehensiveness(k) = p(y | x) - p(y | x without the top words)
    sufficiency(k)       = p(y | x) - p(y | the top words alone, in text order)

where ``y`` is the model's arg-max on the full text.  High comprehensiveness
and low sufficiency mean the ranked words really drive the prediction.  AOPC
is the mean over ERASER's bins (1, 5, 10, 20 and 50 %).

Words are the display words the pipeline logs (:mod:`models.words`: words split
from their punctuation), and a perturbed text is the original with words deleted
from it, so what is left keeps its own spelling and spacing.  Four rankings are
compared: the pooling attention as logged, attention scaled by the norm of the
value vectors (Kobayashi et al. 2020), gradient x input on the word-piece
embeddings and a seeded random permutation (the baseline every explanation
should beat).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from models.encoding import Encoded, encode
from models.modeling import AttentionClassifier, TaskHead
from models.saving import load_model
from models.words import merge_word_pieces, word_spans

#: Fractions of words reported one by one.
DEFAULT_KS: tuple[float, ...] = (0.1, 0.2, 0.5)
#: ERASER's bins, averaged into AOPC.
ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5)
#: Attribution methods computed from the model (``random`` is added by :func:`explain_eval`).
METHODS: tuple[str, ...] = ("attention", "attention_value_norm", "grad_x_input")
RANDOM = "random"

#: Texts per ``prob_fn`` call.
PROB_CHUNK = 64

ProbFn = Callable[[list[str]], torch.Tensor]

# ceil(0.07 * 100) must be 7, not 8 (0.07 * 100 == 7.000000000000001 in binary floating point).
_CEIL_SLACK = 1e-9


@dataclass
class FaithfulnessResult:
    """ERASER scores of one attribution method, averaged over ``n`` texts.

    ``comprehensiveness`` and ``sufficiency`` are keyed by the fraction of
    words ``k``; the AOPC values are means over the AOPC bins.
    """

    comprehensiveness: dict[float, float] = field(default_factory=dict)
    sufficiency: dict[float, float] = field(default_factory=dict)
    aopc_comprehensiveness: float = 0.0
    aopc_sufficiency: float = 0.0
    n: int = 0


def split_words(text: str) -> list[str]:
    """The display words of ``text``, the unit attention is logged in (:mod:`models.words`)."""
    return [text[start:end] for start, end in word_spans(text)]


def delete_words(text: str, spans: Sequence[tuple[int, int]], drop: Container[int]) -> str:
    """``text`` without the words whose indices are in ``drop``.

    ``spans`` are all of ``text``'s display words (:func:`models.words.word_spans`).
    Everything kept stays as written; the whitespace a deletion leaves behind collapses:
    to nothing at either end of the text, to nothing before punctuation that was attached
    to the deleted word (``"It was slow."`` without ``slow`` is ``"It was."``), else to
    its first run (a space stays a space, a line break a line break).  Deleting nothing
    gives the text itself.
    """
    parts: list[str] = []
    gaps: list[str] = []  # the whitespace since the last kept word
    dropped = False  # whether a word was deleted since the last kept word
    cursor = 0
    for index, (start, end) in enumerate(spans):
        gaps.append(text[cursor:start])
        cursor = end
        if index in drop:
            dropped = True
            continue
        word = text[start:end]
        if not dropped:
            parts.append(gaps[0])  # one gap, as written
        elif parts and (gaps[-1] or word[0].isalnum()):
            parts.append(next((g for g in gaps if g), ""))
        parts.append(word)
        gaps, dropped = [], False
    if not dropped:
        parts.append(text[cursor:])
    return "".join(parts)


def top_count(fraction: float, n_words: int) -> int:
    """How many words the top ``fraction`` is: ``ceil(fraction * n)``, at least one."""
    if n_words == 0:
        return 0
    return min(n_words, max(1, math.ceil(fraction * n_words - _CEIL_SLACK)))


def ranking_from_scores(scores: Sequence[float]) -> list[int]:
    """Word indices, highest score first; ties keep text order."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def random_rankings(word_counts: Sequence[int], seed: int) -> list[list[int]]:
    """One seeded random permutation of the words per text."""
    generator = torch.Generator().manual_seed(seed)
    return [[int(i) for i in torch.randperm(n, generator=generator).tolist()] for n in word_counts]


def faithfulness(
    prob_fn: ProbFn,
    texts: Sequence[str],
    rankings: Mapping[str, Sequence[Sequence[int]]],
    ks: Sequence[float] = DEFAULT_KS,
    aopc_bins: Sequence[float] = ERASER_BINS,
    *,
    progress: bool = False,
) -> dict[str, FaithfulnessResult]:
    """Comprehensiveness, sufficiency and their AOPC per ranking method.

    ``prob_fn`` maps texts to class probabilities [N, C]; ``rankings[method][i]``
    orders all word indices of ``texts[i]``, most important first.  Perturbed
    texts are the original with the top words deleted, or all but them
    (:func:`delete_words`); each distinct text is scored once, in chunks of
    :data:`PROB_CHUNK`.
    Texts without a word are skipped (there is nothing to rank).
    """
    fractions = sorted({*ks, *aopc_bins})
    if not aopc_bins or any(not 0 < k <= 1 for k in fractions):
        msg = f"fractions must lie in (0, 1] and aopc_bins must not be empty: {fractions}"
        raise ValueError(msg)
    spans = [word_spans(t) for t in texts]
    words = [[t[s:e] for s, e in text_spans] for t, text_spans in zip(texts, spans, strict=True)]
    for method, ranks in rankings.items():
        _check_rankings(method, ranks, words)
    used = [i for i, w in enumerate(words) if w]
    if not used:
        msg = "no text has a word to rank"
        raise ValueError(msg)

    # (method, fraction, text) -> (text without the top words, the top words alone)
    variants: dict[tuple[str, float, int], tuple[str, str]] = {}
    for method, ranks in rankings.items():
        for k in fractions:
            for i in used:
                top = set(ranks[i][: top_count(k, len(words[i]))])
                rest = set(range(len(words[i]))) - top
                variants[method, k, i] = (
                    delete_words(texts[i], spans[i], top),
                    delete_words(texts[i], spans[i], rest),
                )
    perturbed = [t for pair in variants.values() for t in pair]
    unique = list(dict.fromkeys([texts[i] for i in used] + perturbed))
    probs = dict(zip(unique, _probabilities(prob_fn, unique, progress), strict=True))

    results: dict[str, FaithfulnessResult] = {}
    for method in rankings:
        comp: dict[float, float] = {}
        suff: dict[float, float] = {}
        for k in fractions:
            comp_sum = suff_sum = 0.0
            for i in used:
                full = probs[texts[i]]
                label = int(full.argmax())
                removed, kept = variants[method, k, i]
                comp_sum += float(full[label] - probs[removed][label])
                suff_sum += float(full[label] - probs[kept][label])
            comp[k] = comp_sum / len(used)
            suff[k] = suff_sum / len(used)
        results[method] = FaithfulnessResult(
            comprehensiveness={k: comp[k] for k in ks},
            sufficiency={k: suff[k] for k in ks},
            aopc_comprehensiveness=sum(comp[k] for k in aopc_bins) / len(aopc_bins),
            aopc_sufficiency=sum(suff[k] for k in aopc_bins) / len(aopc_bins),
            n=len(used),
        )
    return results


def word_attributions(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    task: str,
    max_length: int,
    methods: Sequence[str] = METHODS,
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, list[list[float]]]:
    """One score per display word, per method, per text, for the predicted class.

    * ``attention``: the head's weights (mean over pooling heads) merged to words,
      exactly what the pipeline logs;
    * ``attention_value_norm``: ``alpha_t * ||v_t||`` per pooling head (Kobayashi
      et al. 2020), mean over heads, merged to words;
    * ``grad_x_input``: ``|sum_hidden grad * embedding|`` of the word-piece
      embeddings for the predicted logit, summed over a word's pieces.

    Every method's word scores of a text sum to one (unless all are zero);
    words cut off by truncation get 0.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        msg = f"unknown attribution methods {unknown}; choose from {list(METHODS)}"
        raise ValueError(msg)
    if task not in model.tasks:
        msg = f"unknown task {task!r}; the model has {list(model.tasks)}"
        raise ValueError(msg)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores: dict[str, list[list[float]]] = {m: [] for m in methods}
    try:
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="attributions", unit="batch", disable=not progress):
            chunk = list(texts[start : start + batch_size])
            batch, pieces = _piece_scores(
                model, tokenizer, chunk, task, max_length, methods, device
            )
            pool_mask = batch.pool_mask.cpu()
            for row, text in enumerate(chunk):
                keep = pool_mask[row].nonzero().flatten().tolist()
                spans = [batch.offsets[row][i] for i in keep]
                for method in methods:
                    weights = pieces[method][row, keep].tolist()
                    scores[method].append(_word_scores(text, spans, weights))
    finally:
        model.train(was_training)
    return scores


def explain_eval(
    model_dir: Path,
    examples: Sequence[str],
    task: str,
    *,
    ks: Sequence[float] = DEFAULT_KS,
    aopc_bins: Sequence[float] = ERASER_BINS,
    seed: int = 0,
    limit: int | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    progress: bool = True,
) -> dict[str, FaithfulnessResult]:
    """Load a saved model and score every attribution method, ``random`` included."""
    loaded = load_model(model_dir, device)
    model, tokenizer, max_length = loaded.model, loaded.tokenizer, loaded.info.max_length
    texts = list(examples if limit is None else examples[:limit])
    scores = word_attributions(
        model, tokenizer, texts, task, max_length, batch_size=batch_size, progress=progress
    )
    rankings = {m: [ranking_from_scores(s) for s in per_text] for m, per_text in scores.items()}
    rankings[RANDOM] = random_rankings([len(split_words(t)) for t in texts], seed)
    model_device = next(model.parameters()).device

    @torch.inference_mode()
    def prob_fn(batch: list[str]) -> torch.Tensor:
        encoded = encode(tokenizer, batch, max_length).to(model_device)
        out = model(encoded.input_ids, encoded.attention_mask, encoded.pool_mask, [task])
        return torch.softmax(out[task].logits.float(), dim=-1).cpu()

    return faithfulness(prob_fn, texts, rankings, ks, aopc_bins, progress=progress)


def render_markdown(results: Mapping[str, FaithfulnessResult], task: str) -> str:
    """A Markdown table of every method, then attention's comprehensiveness@20% vs random."""
    if not results:
        return f"## Faithfulness ({task})\n\nNo results.\n"
    ks = sorted(next(iter(results.values())).comprehensiveness)
    header = (
        ["method"]
        + [f"comp@{_percent(k)}" for k in ks]
        + ["AOPC comp"]
        + [f"suff@{_percent(k)}" for k in ks]
        + ["AOPC suff"]
    )
    lines = [
        f"## Faithfulness ({task}, n = {next(iter(results.values())).n})",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for method, r in results.items():
        cells = (
            [method]
            + [f"{r.comprehensiveness.get(k, math.nan):.3f}" for k in ks]
            + [f"{r.aopc_comprehensiveness:.3f}"]
            + [f"{r.sufficiency.get(k, math.nan):.3f}" for k in ks]
            + [f"{r.aopc_sufficiency:.3f}"]
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _ratio_line(results), ""]
    return "\n".join(lines)


def _ratio_line(results: Mapping[str, FaithfulnessResult]) -> str:
    label = "comprehensiveness@20%: attention ÷ random"
    attention, baseline = results.get("attention"), results.get(RANDOM)
    if attention is None or baseline is None:
        return f"{label}: n/a (needs both methods)"
    ours, theirs = attention.comprehensiveness.get(0.2), baseline.comprehensiveness.get(0.2)
    if ours is None or theirs is None:
        return f"{label}: n/a (k = 0.2 was not computed)"
    if theirs <= 0:
        return f"{label}: n/a (random is {theirs:.3f}; attention is {ours:.3f})"
    return f"{label} = {ours / theirs:.2f}x ({ours:.3f} / {theirs:.3f})"


def _percent(k: float) -> str:
    return f"{round(k * 100, 6):g}"


def _check_rankings(method: str, ranks: Sequence[Sequence[int]], words: list[list[str]]) -> None:
    if len(ranks) != len(words):
        msg = f"{method}: {len(ranks)} rankings for {len(words)} texts"
        raise ValueError(msg)
    for i, (rank, text_words) in enumerate(zip(ranks, words, strict=True)):
        if sorted(rank) != list(range(len(text_words))):
            msg = f"{method}: ranking {i} is not a permutation of its {len(text_words)} words"
            raise ValueError(msg)


def _probabilities(prob_fn: ProbFn, texts: list[str], progress: bool) -> list[torch.Tensor]:
    rows: list[torch.Tensor] = []
    starts = range(0, len(texts), PROB_CHUNK)
    for start in tqdm(starts, desc="faithfulness", unit="batch", disable=not progress):
        chunk = texts[start : start + PROB_CHUNK]
        probs = prob_fn(chunk).detach().float().cpu()
        if probs.dim() != 2 or probs.shape[0] != len(chunk):
            msg = f"prob_fn returned shape {tuple(probs.shape)} for {len(chunk)} texts"
            raise ValueError(msg)
        rows.extend(probs.unbind(0))
    return rows


def _piece_scores(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    task: str,
    max_length: int,
    methods: Sequence[str],
    device: torch.device,
) -> tuple[Encoded, dict[str, torch.Tensor]]:
    """The encoded batch and per-method scores [B, T] of its word pieces."""
    batch = encode(tokenizer, texts, max_length).to(device)
    captured: dict[str, torch.Tensor] = {}

    def keep_states(_module: nn.Module, _args: Any, output: Any) -> None:
        captured["states"] = output[0]

    def embeddings_leaf(_module: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        # A fresh leaf: its gradient is all we need, and the weights' .grad stay untouched.
        leaf = output.detach().requires_grad_(True)
        captured["embeddings"] = leaf
        return leaf

    need_grad = "grad_x_input" in methods
    handles = [model.encoder.register_forward_hook(keep_states)]
    if need_grad:
        embedding = model.encoder.get_input_embeddings()
        handles.append(embedding.register_forward_hook(embeddings_leaf))
    try:
        with torch.set_grad_enabled(need_grad):
            out = model(batch.input_ids, batch.attention_mask, batch.pool_mask, [task])[task]
    finally:
        for handle in handles:
            handle.remove()

    alpha = out.attention.detach().float()  # [B, heads, T]
    pieces: dict[str, torch.Tensor] = {}
    if "attention" in methods:
        pieces["attention"] = alpha.mean(dim=1)
    if "attention_value_norm" in methods:
        pool = cast(TaskHead, model.heads[task]).pool
        with torch.no_grad():
            values = pool.value(captured["states"].detach())
        b, t, _ = values.shape
        norms = values.view(b, t, pool.num_heads, pool.d_v).norm(dim=-1).transpose(1, 2)
        pieces["attention_value_norm"] = (alpha * norms.float()).mean(dim=1)
    if need_grad:
        embeddings = captured["embeddings"]
        target = out.logits.gather(1, out.logits.argmax(dim=-1, keepdim=True)).sum()
        (grad,) = torch.autograd.grad(target, [embeddings])
        pieces["grad_x_input"] = (grad * embeddings.detach()).sum(dim=-1).abs().float()
    return batch, {m: pieces[m].cpu() for m in methods}


def _word_scores(text: str, spans: list[tuple[int, int]], weights: list[float]) -> list[float]:
    """Sum piece scores into every display word of ``text`` and normalise to one."""
    index = {start: i for i, (start, _) in enumerate(word_spans(text))}
    scores = [0.0] * len(index)
    pairs = [(s, w) for s, w in zip(spans, weights, strict=True) if s[1] > s[0]]
    if not pairs:
        return scores
    # merge_word_pieces leaves out words without a piece (0 here) and says where each is.
    for word in merge_word_pieces(text, [s for s, _ in pairs], [w for _, w in pairs]):
        scores[index[word.start]] = word.weight
    total = sum(scores)
    return [s / total for s in scores] if total > 0 else scores
