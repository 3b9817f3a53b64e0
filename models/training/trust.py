"""Every trained model measures whether its logged words explain its labels.

At the end of training, on a bounded sample of the validation split, each task's
logged attention is scored with ERASER comprehensiveness and sufficiency at 20 % of
the words (:mod:`models.explain.faithfulness`) against two references:

* **random words**, the floor every explanation must clear, and
* **gradient x input**, a standard post-hoc attribution the attention should match.

A task's attention is *faithful* when its comprehensiveness is at least
:data:`MIN_RATIO_RANDOM` times random's and at least :data:`MIN_RATIO_GRADIENT` times
gradient x input's.  Why this bar: on Banking77 the attention of the recipe without the
entropy penalty looked plausible and was no better than random (0.94-1.35x), while
gradient x input reached 2.5x; the bar is what separates the two (bench/RESULTS.md).

The verdict is written into ``metrics.json`` (``faithfulness``), rendered in the model card,
read back with the model's identity (:func:`models.saving.read_trust`) and carried on
every enriched event as ``attention_faithful``, so nobody reads shading that does not
explain the label without being told.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from models.data.examples import Example
from models.encoding import encode
from models.explain.faithfulness import (
    RANDOM,
    faithfulness,
    random_rankings,
    ranking_from_scores,
    split_words,
    word_attributions,
)
from models.modeling import AttentionClassifier

log = logging.getLogger(__name__)

#: The fraction of words removed (comprehensiveness) or kept (sufficiency).
K = 0.2
#: Comprehensiveness must be at least this many times random words'.
MIN_RATIO_RANDOM = 2.0
#: ... and at least this many times gradient x input's.
MIN_RATIO_GRADIENT = 1.0
#: Below this comprehensiveness the top words carry nothing, whatever the references do
#: (real models here: 0.12-0.65; a model that ignores its input scores about 0).
MIN_COMPREHENSIVENESS = 0.02
#: Fewer texts than this: too few to judge; the verdict is left open (``None``).
MIN_TEXTS = 20
GRADIENT = "grad_x_input"
ATTENTION = "attention"


@dataclass(frozen=True)
class TaskTrust:
    """One task's measured faithfulness and its verdict.

    ``comprehensiveness`` and ``sufficiency`` are keyed by method (``attention``,
    ``grad_x_input``, ``random``), at ``k`` of each text's words.  ``faithful`` is
    ``None`` when the sample was too small to judge.
    """

    task: str
    n: int
    k: float
    comprehensiveness: dict[str, float]
    sufficiency: dict[str, float]
    vs_random: float | None
    vs_gradient: float | None
    faithful: bool | None
    reason: str

    @property
    def verdict(self) -> str:
        """``faithful``, ``NOT faithful`` or ``not judged``: what the command line prints."""
        return {True: "faithful", False: "NOT faithful", None: "not judged"}[self.faithful]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :func:`verdicts` reads the ``faithful`` field back."""
        return asdict(self)


def judge(task: str, n: int, comp: Mapping[str, float], suff: Mapping[str, float]) -> TaskTrust:
    """Apply the bar to measured scores (separate from measuring, so it is testable alone)."""
    ours, rand, grad = comp[ATTENTION], comp[RANDOM], comp[GRADIENT]
    vs_random = ours / rand if rand > 0 else None
    vs_gradient = ours / grad if grad > 0 else None
    if n < MIN_TEXTS:
        faithful, reason = None, f"only {n} validation texts (< {MIN_TEXTS}): not judged"
    else:
        failures = []
        if ours < MIN_COMPREHENSIVENESS:
            failures.append(
                f"removing the top words hardly lowers the label's probability ({ours:.3f})"
            )
        if rand > 0 and ours < MIN_RATIO_RANDOM * rand:
            failures.append(f"{ours:.3f} < {MIN_RATIO_RANDOM:g} x random ({rand:.3f})")
        if grad > 0 and ours < MIN_RATIO_GRADIENT * grad:
            failures.append(f"{ours:.3f} < {MIN_RATIO_GRADIENT:g} x gradient x input ({grad:.3f})")
        faithful = not failures
        reason = (
            "; ".join(failures)
            if failures
            else f"{ratio_text(vs_random)} random, {ratio_text(vs_gradient)} gradient x input"
        )
    return TaskTrust(task, n, K, dict(comp), dict(suff), vs_random, vs_gradient, faithful, reason)


def measure_trust(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    tasks: Sequence[str],
    max_length: int,
    *,
    sample: int = 200,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, TaskTrust]:
    """Each task's :class:`TaskTrust` on at most ``sample`` of its labelled ``examples``.

    The sample is the first ``sample`` labelled texts with a word in a seeded shuffle,
    so repeated runs score the same texts.  Cost: one forward and backward per text and
    about seven perturbed forwards (three methods, removed and kept, plus the text).
    """
    results: dict[str, TaskTrust] = {}
    device = next(model.parameters()).device
    for task in tasks:
        texts = [e.text for e in examples if task in e.labels and split_words(e.text)]
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
        chosen = [texts[int(i)] for i in order[:sample]]
        if not chosen:
            continue
        scores = word_attributions(
            model, tokenizer, chosen, task, max_length, (ATTENTION, GRADIENT), progress=progress
        )
        rankings = {m: [ranking_from_scores(s) for s in per] for m, per in scores.items()}
        rankings[RANDOM] = random_rankings([len(split_words(t)) for t in chosen], seed)

        @torch.inference_mode()
        def prob_fn(batch: list[str], task: str = task) -> torch.Tensor:
            encoded = encode(tokenizer, batch, max_length).to(device)
            out = model(encoded.input_ids, encoded.attention_mask, encoded.pool_mask, [task])
            return torch.softmax(out[task].logits.float(), dim=-1).cpu()

        was_training = model.training
        model.eval()
        try:
            measured = faithfulness(prob_fn, chosen, rankings, (K,), (K,), progress=progress)
        finally:
            model.train(was_training)
        comp = {m: r.comprehensiveness[K] for m, r in measured.items()}
        suff = {m: r.sufficiency[K] for m, r in measured.items()}
        results[task] = judge(task, next(iter(measured.values())).n, comp, suff)
        _report(results[task])
    return results


def card_section(trust: Mapping[str, TaskTrust], sample: int) -> list[str]:
    """The model card's Markdown lines for the measured trust (a loud line per failure)."""
    if not trust:
        return [
            "",
            "## Attention faithfulness",
            "",
            "Not measured (no validation texts, or `faithfulness_sample` is 0): the shading "
            "of this model's words is unverified.",
        ]
    lines = [
        "",
        "## Attention faithfulness (validation sample)",
        "",
        f"ERASER comprehensiveness / sufficiency at {K:.0%} of the words, on up to {sample} "
        f"validation texts per task. Bar: comprehensiveness >= {MIN_RATIO_RANDOM:g}x random "
        f"words and >= {MIN_RATIO_GRADIENT:g}x gradient x input.",
        "",
        "| task | n | comp attention | comp grad x input | comp random | suff attention "
        "| vs random | vs grad x input | faithful |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in trust.values():
        verdict = {True: "yes", False: "**NO**", None: "not judged"}[t.faithful]
        lines.append(
            f"| {t.task} | {t.n} | {t.comprehensiveness[ATTENTION]:.3f} "
            f"| {t.comprehensiveness[GRADIENT]:.3f} | {t.comprehensiveness[RANDOM]:.3f} "
            f"| {t.sufficiency[ATTENTION]:.3f} | {ratio_text(t.vs_random)} "
            f"| {ratio_text(t.vs_gradient)} | {verdict} |"
        )
    for t in trust.values():
        if t.faithful is False:
            lines += ["", f"**Attention not faithful for {t.task}**: {t.reason}."]
    return lines


def warnings_for(trust: Mapping[str, TaskTrust]) -> list[str]:
    """One line per task whose attention failed the bar (what training prints loudly)."""
    return [
        f"attention not faithful for task {t.task!r}: {t.reason}; its highlighted words do "
        "not explain its labels (try --attention-entropy 0.3, the default)"
        for t in trust.values()
        if t.faithful is False
    ]


def _report(t: TaskTrust) -> None:
    level = logging.WARNING if t.faithful is False else logging.INFO
    log.log(
        level,
        "faithfulness",
        extra={
            "task": t.task,
            "n": t.n,
            "comp_attention": round(t.comprehensiveness[ATTENTION], 4),
            "comp_random": round(t.comprehensiveness[RANDOM], 4),
            "comp_gradient": round(t.comprehensiveness[GRADIENT], 4),
            "faithful": t.faithful,
        },
    )


def ratio_text(value: float | None) -> str:
    """``4.01x``, or ``n/a`` when the reference was not positive."""
    return "n/a" if value is None else f"{value:.2f}x"
