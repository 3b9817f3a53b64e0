"""Banking77-OOS (Zhang et al. 2022): how well the unknown-intent rules catch held-out intents.

    python bench/banking77_oos.py                   # the protocol, default training recipe
    python bench/banking77_oos.py --reuse           # re-score the model a previous run saved
    python bench/banking77_oos.py --epochs 2 --limit-train 2000
    python bench/banking77_oos.py --smoke           # tiny random encoder, small samples

Protocol of Zhang, Hashimoto, Wan, Liu, Liu, Xiong and Yu, "Are Pre-trained Transformers
Robust in Intent Classification? A Missing Ingredient in Evaluation of Out-of-Scope Intent
Detection" (NLP4ConvAI 2022, arXiv:2106.04564), in-domain OOS (ID-OOS) scenario:

- 50 Banking77 intents are in scope; the other 27 (:data:`HELD_OUT`, the intents of the
  paper's released ``Datasets/BANKING77-OOS/id-oos/test/label_original`` in
  github.com/jianguoz/Few-Shot-Intent-Detection) are held out entirely and never trained on.
- Train: the in-scope intents' rows of Banking77 ``train.csv`` less a stratified validation
  share (``--val-fraction``, default 0.2, seeded; the paper's split is 5905/1506 of the same
  7411 rows).  Validation adds the same share of the held-out intents' train rows as ID-OOS
  (the paper: 530 of 2592); the remaining held-out train rows are unused, as in the paper.
- Test: all of Banking77 ``test.csv``: 2000 in-scope rows and 1080 held-out rows as OOS,
  exactly the paper's test split.  The paper's OOD-OOS scenario (CLINC150's out-of-scope
  queries) is not run: CLINC150 is not in ``../shared/datasets``.

The model is trained with ``Trainer`` and ``TrainingArgs``' defaults (``--epochs`` and
``--max-length`` override), validation with the ID-OOS rows included, so its own
``calibration.json`` is what ``attnwatch train --val-data`` would save.  Each score (higher
= more in scope) is thresholded two ways, both fitted on validation only: ``oos-validation``
maximises (in-scope accuracy + OOS recall) / 2 on the validation rows with OOS, as the paper
tunes its threshold; ``coverage-0.97`` uses in-scope validation rows only (no OOS examples):
3 % of them fall below it.  Scores: max softmax probability; calibrated confidence (softmax
of logits / the fitted temperature: what is served); energy, ``logsumexp(logits)`` (Liu et
al. 2020, T = 1); Mahalanobis, minus the smallest distance of the intent head's pooled vector
to a class mean under a shared Ledoit-Wolf covariance fitted on the training rows' pooled
vectors (Lee et al. 2018).  Test metrics: in-scope accuracy (an in-scope row flagged
unknown counts wrong, as in the paper), OOS recall and precision, AUROC of OOS against
in-scope (threshold-free).  Results: ``bench/results/banking77_oos.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.covariance import LedoitWolf  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from models.data.datasets import OOS, load_banking77
from models.data.examples import Example
from models.data.seed import data_hash, stratified_split
from models.encoding import encode
from models.evaluation.calibration import choose_unknown_threshold
from models.modeling import AttentionClassifier, TaskHead
from models.saving import load_model
from models.training.trainer import Trainer
from models.training.training_args import TrainingArgs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "banking77"
INTENT = "intent"
#: The 27 intents the paper holds out as in-domain OOS (its released ID-OOS test labels).
HELD_OUT = (
    "exchange_rate", "card_delivery_estimate", "card_not_working", "lost_or_stolen_card",
    "age_limit", "pin_blocked", "contactless_not_working", "top_up_by_bank_transfer_charge",
    "top_up_limits", "getting_virtual_card", "card_acceptance", "unable_to_verify_identity",
    "get_physical_card", "topping_up_by_card", "compromised_card", "atm_support",
    "passcode_forgotten", "terminate_account", "card_swallowed", "verify_source_of_funds",
    "receiving_money", "transfer_into_account", "top_up_by_cash_or_cheque",
    "virtual_card_not_working", "get_disposable_virtual_card", "top_up_by_card_charge",
    "verify_my_identity",
)  # fmt: skip
#: The paper's Table 4, BANKING77-OOS, ID-OOS rows: (in-scope accuracy, OOS recall, OOS
#: precision) in %, mean of 10 runs.  Few-shot training only (5 or 10 examples per intent);
#: the paper reports no full-data run and no AUROC.  Transcribed from arXiv:2106.04564.
PAPER = {
    "5-shot": {
        "ALBERT": (20.3, 89.5, 39.8),
        "BERT": (25.4, 90.9, 41.3),
        "ELECTRA": (30.9, 87.5, 43.0),
        "RoBERTa": (43.0, 83.1, 46.3),
        "ToD-BERT": (35.5, 82.7, 43.8),
    },
    "10-shot": {
        "ALBERT": (27.3, 87.6, 42.4),
        "BERT": (52.5, 77.3, 50.8),
        "ELECTRA": (40.1, 84.0, 46.1),
        "RoBERTa": (59.7, 79.1, 55.8),
        "ToD-BERT": (54.3, 76.9, 52.1),
    },
}
SCORES = ("max softmax", "calibrated confidence", "energy", "mahalanobis")
#: The score ``attnwatch`` serves; with the ``oos-validation`` rule its threshold is the one
#: training saved in ``calibration.json`` (the JSON keeps both, to check they agree).
SERVED = "calibrated confidence"
COVERAGE = 0.97
RULES = ("oos-validation", f"coverage-{COVERAGE:g}")
#: A randomly initialised BERT for --smoke (as in bench/fast_tier.py).
SMOKE_BERT = {
    "hidden_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "max_position_embeddings": 128,
}

log = logging.getLogger("banking77_oos")
#: Maps pooled vectors [N, H] to scores [N], higher = more in scope.
Scorer = Callable[[NDArray[Any]], NDArray[np.float64]]


def protocol_split(
    train: Sequence[Example], test: Sequence[Example], val_fraction: float, seed: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, validation, test): held-out intents are relabelled ``oos`` and never trained on."""
    held = set(HELD_OUT)

    def intent(e: Example) -> str:
        return e.labels[INTENT]

    def as_oos(rows: Sequence[Example]) -> list[Example]:
        return [Example(e.text, {INTENT: OOS}, e.group) for e in rows]

    in_train, in_val = stratified_split(
        [e for e in train if intent(e) not in held], intent, val_fraction, seed
    )
    _, oos_val = stratified_split(
        [e for e in train if intent(e) in held], intent, val_fraction, seed
    )
    test_rows = [e for e in test if intent(e) not in held] + as_oos(
        [e for e in test if intent(e) in held]
    )
    return in_train, in_val + as_oos(oos_val), test_rows


def limited(rows: list[Example], limit: int | None, seed: int) -> list[Example]:
    """A stratified, seeded sample of about ``limit`` rows (all of them when None or fewer)."""
    if limit is None or limit >= len(rows):
        return rows
    return stratified_split(rows, lambda e: e.labels[INTENT], limit / len(rows), seed)[1]


@torch.inference_mode()
def intent_outputs(
    model: AttentionClassifier, tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Intent logits [N, C] and the intent head's pooled vectors [N, H], in eval mode."""
    model.eval()
    head = cast(TaskHead, model.heads[INTENT])
    device = next(model.parameters()).device
    logits, pooled = [], []
    for start in range(0, len(texts), 64):
        batch = encode(tokenizer, texts[start : start + 64], max_length).to(device)
        states = model.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        vector, _ = head.pool(states, batch.pool_mask)  # the head's c = alpha·V
        pooled.append(vector.float().cpu())
        logits.append(head.classifier(vector).float().cpu())  # dropout is off in eval
    return torch.cat(logits).numpy(), torch.cat(pooled).numpy()


def mahalanobis(fit: NDArray[Any], fit_labels: NDArray[Any]) -> Scorer:
    """A scorer: minus the smallest Mahalanobis distance to a class mean (shared covariance)."""
    classes = np.unique(fit_labels)
    means = np.stack([fit[fit_labels == c].mean(axis=0) for c in classes])
    centred = fit - means[np.searchsorted(classes, fit_labels)]
    precision: NDArray[np.float64] = np.asarray(LedoitWolf().fit(centred).precision_, float)

    def score(x: NDArray[Any]) -> NDArray[np.float64]:
        xp = x @ precision
        # (x - m) P (x - m)^T expanded, so no [N, C, H] tensor is built.
        distance = (
            (xp * x).sum(axis=1)[:, None]
            - 2 * xp @ means.T
            + ((means @ precision) * means).sum(axis=1)[None, :]
        )
        return np.asarray(-distance.min(axis=1), dtype=np.float64)

    return score


def scores(
    logits: NDArray[Any], pooled: NDArray[Any], temperature: float, maha: Scorer
) -> dict[str, Any]:
    """Every score of :data:`SCORES` for one split; higher means more in scope."""
    raw = torch.from_numpy(logits).double()
    return {
        "max softmax": torch.softmax(raw, -1).max(-1).values.numpy(),
        "calibrated confidence": torch.softmax(raw / temperature, -1).max(-1).values.numpy(),
        "energy": torch.logsumexp(raw, -1).numpy(),
        "mahalanobis": maha(pooled),
    }


def threshold(score: NDArray[Any], correct: NDArray[Any], is_oos: NDArray[Any], rule: str) -> float:
    """The rule's threshold on validation (``choose_unknown_threshold``, as training uses)."""
    conf, right, oos = (torch.from_numpy(a) for a in (score, correct, is_oos))
    if rule == "oos-validation":
        return choose_unknown_threshold(conf, right, oos)
    keep = ~oos
    return choose_unknown_threshold(conf[keep], right[keep], None, COVERAGE)


def test_metrics(
    score: NDArray[Any], correct: NDArray[Any], is_oos: NDArray[Any], cut: float
) -> dict[str, float | None]:
    """In-scope accuracy (flagged = wrong), rejected in-scope share, OOS recall and precision."""
    flagged = score < cut
    n_flagged = int(flagged.sum())
    return {
        "threshold": float(cut),
        "in_scope_accuracy": float((correct & ~flagged)[~is_oos].mean()),
        "in_scope_rejected": float(flagged[~is_oos].mean()),
        "oos_recall": float(flagged[is_oos].mean()),
        "oos_precision": float((flagged & is_oos).sum() / n_flagged) if n_flagged else None,
    }


def evaluate(
    model_dir: Path, train: list[Example], val: list[Example], test: list[Example]
) -> dict[str, Any]:
    """Score validation and test with every score and rule; the results dict."""
    loaded = load_model(model_dir, "cuda" if torch.cuda.is_available() else "cpu")
    labels = loaded.info.tasks[[t.name for t in loaded.info.tasks].index(INTENT)].labels
    index = {label: i for i, label in enumerate(labels)}
    calibration = loaded.calibration or {}
    temperature = float(calibration.get("temperature", 1.0))
    max_length = loaded.info.max_length

    def run(rows: list[Example]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
        logits, pooled = intent_outputs(
            loaded.model, loaded.tokenizer, [e.text for e in rows], max_length
        )
        gold = np.array([index.get(e.labels[INTENT], -1) for e in rows])
        return logits, pooled, gold, gold < 0

    fit_logits, fit_pooled, fit_gold, _ = run(train)
    maha = mahalanobis(fit_pooled, fit_gold)
    splits = {}
    for name, rows in (("validation", val), ("test", test)):
        logits, pooled, gold, is_oos = run(rows)
        correct = (logits.argmax(-1) == gold) & ~is_oos
        splits[name] = (scores(logits, pooled, temperature, maha), correct, is_oos)
    (val_scores, val_correct, val_oos), (test_scores, test_correct, test_oos) = (
        splits["validation"],
        splits["test"],
    )
    results: dict[str, Any] = {
        "closed_set_in_scope_accuracy": float(test_correct[~test_oos].mean()),
        "served_calibration": calibration,
        "scores": {},
    }
    for name in SCORES:
        entry: dict[str, Any] = {
            "auroc": float(roc_auc_score(test_oos, -test_scores[name])),
        }
        for rule in RULES:
            cut = threshold(val_scores[name], val_correct, val_oos, rule)
            entry[rule] = test_metrics(test_scores[name], test_correct, test_oos, cut)
        results["scores"][name] = entry
    return results


def pct(share: float | None) -> str:
    """A share as a percentage with one decimal (a dash when undefined)."""
    return "–" if share is None else f"{100 * share:.1f}"


def render(report: dict[str, Any]) -> str:
    """The results as Markdown."""
    r, n = report["results"], report["counts"]
    lines = [
        "# Banking77-OOS: unknown-intent rules (ID-OOS scenario)",
        "",
        f"Command: `{report['command']}`; {report['started_at']}; {report['seconds']:.0f} s "
        f"({report['train_seconds']:.0f} s training) on {report['machine']}.",
        "",
        f"Split (seed {report['settings']['seed']}, validation share "
        f"{report['settings']['val_fraction']}): train {n['train']} in-scope rows of 50 intents; "
        f"validation {n['val_in_scope']} in-scope + {n['val_oos']} ID-OOS rows (27 held-out "
        f"intents); test {n['test_in_scope']} in-scope + {n['test_oos']} ID-OOS rows.",
        "",
        f"Closed-set in-scope test accuracy (no threshold): "
        f"{pct(r['closed_set_in_scope_accuracy'])} %.  Served calibration: "
        f"`{json.dumps(r['served_calibration'], sort_keys=True)}`",
        "",
        "| score | threshold rule | in-scope acc. | in-scope rejected | OOS recall "
        "| OOS precision | AUROC |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCORES:
        entry = r["scores"][name]
        for rule in RULES:
            m = entry[rule]
            served = " (served)" if (name, rule) == (SERVED, RULES[0]) else ""
            cells = [pct(m[k]) for k in ("in_scope_accuracy", "in_scope_rejected")]
            cells += [pct(m["oos_recall"]), pct(m["oos_precision"]), f"{entry['auroc']:.3f}"]
            lines.append(f"| {name}{served} | {rule} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Zhang et al. 2022, Table 4, BANKING77-OOS, ID-OOS (mean of 10 runs, few-shot training; "
        "threshold tuned on validation to maximise in-scope accuracy + OOS recall):",
        "",
        "| training | model | in-scope acc. | OOS recall | OOS precision |",
        "|---|---|---|---|---|",
    ]
    for shots, models in PAPER.items():
        for model, (acc, recall, precision) in models.items():
            lines.append(f"| {shots} | {model} | {acc} | {recall} | {precision} |")
    return "\n".join(lines) + "\n"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.csv, test.csv")
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainingArgs'")
    parser.add_argument("--max-length", type=int, default=None, help="default: TrainingArgs'")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--limit-train", type=int, default=None, help="stratified sample")
    parser.add_argument("--limit-test", type=int, default=None, help="stratified sample")
    parser.add_argument("--encoder", default=None, help="default: the offline MiniLM-L6")
    parser.add_argument("--device", default="auto", help="training device")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="model folder; default var/banking77_oos"
    )
    parser.add_argument("--out", type=Path, default=None, help="results stem (.json, .md)")
    parser.add_argument("--reuse", action="store_true", help="re-score the saved model")
    parser.add_argument("--smoke", action="store_true", help="tiny random encoder, 1 epoch")
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.epochs = opts.epochs or 1
        opts.max_length = opts.max_length or 48
        opts.limit_train = opts.limit_train or 300
        opts.limit_test = opts.limit_test or 300
    if opts.work_dir is None:  # a smoke model never lands where --reuse would take it
        opts.work_dir = Path("var/banking77_oos_smoke" if opts.smoke else "var/banking77_oos")
    if opts.out is None:
        opts.out = (
            opts.work_dir / "banking77_oos_smoke"
            if opts.smoke
            else ROOT / "bench" / "results" / "banking77_oos"
        )
    if not 0 < opts.val_fraction < 1:
        parser.error("--val-fraction must be in (0, 1)")
    return opts


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    opts = parse(argv)
    started, clock = datetime.now(UTC), time.perf_counter()
    train_csv, test_csv = opts.data / "train.csv", opts.data / "test.csv"
    train, val, test = protocol_split(
        load_banking77(train_csv), load_banking77(test_csv), opts.val_fraction, opts.seed
    )
    train = limited(train, opts.limit_train, opts.seed)
    test = limited(test, opts.limit_test, opts.seed)
    if opts.smoke:  # the smoke run also shortens validation
        val = limited(val, opts.limit_test, opts.seed)
    values: dict[str, Any] = {
        "output_dir": opts.work_dir / "model",
        "name": "banking77-oos",
        "encoder": opts.encoder,
        "device": opts.device,
        "seed": opts.seed,
        # Training's attention-faithfulness check leaves the weights as they are: skipped here.
        "faithfulness_sample": 0,
    }
    if opts.epochs is not None:
        values["epochs"] = opts.epochs
    if opts.max_length is not None:
        values["max_length"] = opts.max_length
    if opts.smoke:
        values.update(random_encoder_config=SMOKE_BERT, learning_rate=5e-3, head_learning_rate=5e-3)
    args = TrainingArgs(**values)
    metrics_file = args.output_dir / "metrics.json"
    if opts.reuse and metrics_file.is_file():
        log.info("re-scoring the model in %s", args.output_dir)
    else:
        Trainer(args).train(train, [], data_hash(train_csv), validation=val)
    train_seconds = float(json.loads(metrics_file.read_text())["train_seconds"])
    log.info("scoring %d train, %d validation, %d test rows", len(train), len(val), len(test))
    results = evaluate(args.output_dir, train, val, test)

    def count(rows: list[Example], oos: bool) -> int:
        return sum((e.labels[INTENT] == OOS) == oos for e in rows)

    report = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} x{os.cpu_count()} cores, torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "held_out_intents": list(HELD_OUT),
        "counts": {
            "train": len(train),
            "val_in_scope": count(val, False),
            "val_oos": count(val, True),
            "test_in_scope": count(test, False),
            "test_oos": count(test, True),
        },
        "train_seconds": train_seconds,
        "results": results,
        "paper": PAPER,
        "seconds": round(time.perf_counter() - clock, 1),
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = opts.out.with_suffix(".json"), opts.out.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render(report), encoding="utf-8")
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
