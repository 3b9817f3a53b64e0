"""Which words rose in an episode: log-odds with an informative Dirichlet prior.

Monroe, Colaresi and Quinn (2008), "Fightin' Words", section 3.5: for each word *w*, the
log-odds ratio of *w* in the episode against the baseline, each side smoothed by a prior
drawn from both sides together, divided by its approximate standard deviation:

    delta_w = log((y_w^e + a_w) / (n^e + a_0 - y_w^e - a_w))
            - log((y_w^b + a_w) / (n^b + a_0 - y_w^b - a_w))
    z_w     = delta_w / sqrt(1 / (y_w^e + a_w) + 1 / (y_w^b + a_w))

Here *y* is a word's **attention mass** (the sum of its attention weights over the
messages of a side, each message's weights scaled to sum to its number of words, so that
under even attention *y* is the plain count) rather than a raw count: a word rises when
the model looks at it more, not when it is merely written more.  The prior
``a_w = prior_mass * share_w`` (the word's share of both sides pooled) shrinks rare words
towards "no change", and the z-score's variance keeps words that are frequent on both
sides ("thanks", "please", "I'm") from ranking on a small difference of two large
shares, which is what ranking by the plain difference of shares did.  No stop-word list
is used: a frequent word that really takes more of the attention (angry customers do
write "I'm" more) still rises, ranked below the content words that rose more surely.

Only the log-odds arithmetic lives here, in a few lines of the standard library: no
installed package implements Monroe et al.'s estimator (``scikit-learn``'s feature
selection scores a document-label matrix, not two weighted word distributions).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: Total pseudo-count of the prior (the paper's alpha_0), in token-equivalents.
PRIOR_MASS = 500.0
#: The z-score a word must reach to be called rising (one-sided 5%).
MIN_Z = 1.645


@dataclass(frozen=True)
class WordShift:
    """One word's attention share on each side and its log-odds z-score (episode vs baseline)."""

    word: str
    baseline: float
    current: float
    z: float


def log_odds_z(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    *,
    prior_mass: float = PRIOR_MASS,
) -> dict[str, float]:
    """Each word's z-scored log-odds ratio, ``current`` against ``baseline`` (masses, not shares).

    Positive: the word takes a larger share of ``current``.  Words absent from both sides
    are absent from the result; an empty side gives every word a z of 0 (nothing to compare).
    """
    if prior_mass <= 0:
        msg = f"prior_mass must be positive, got {prior_mass}"
        raise ValueError(msg)
    n_current = sum(current.values())
    n_baseline = sum(baseline.values())
    words = set(current) | set(baseline)
    if n_current <= 0 or n_baseline <= 0:
        return dict.fromkeys(words, 0.0)
    pooled = n_current + n_baseline
    out: dict[str, float] = {}
    for word in words:
        y_c = current.get(word, 0.0)
        y_b = baseline.get(word, 0.0)
        alpha = prior_mass * (y_c + y_b) / pooled
        if alpha <= 0:
            out[word] = 0.0
            continue
        delta = _log_odds(y_c, n_current, alpha, prior_mass) - _log_odds(
            y_b, n_baseline, alpha, prior_mass
        )
        out[word] = delta / math.sqrt(1.0 / (y_c + alpha) + 1.0 / (y_b + alpha))
    return out


def _log_odds(y: float, n: float, alpha: float, alpha0: float) -> float:
    return math.log((y + alpha) / (n + alpha0 - y - alpha))


def rising(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    limit: int,
    *,
    prior_mass: float = PRIOR_MASS,
    min_z: float = MIN_Z,
) -> list[WordShift]:
    """The ``limit`` words that rose most, by z-score, those with ``z >= min_z`` only.

    ``current`` and ``baseline`` are attention masses per word; the shares reported are
    each word's share of its side's total mass.
    """
    scores = log_odds_z(current, baseline, prior_mass=prior_mass)
    total_c = sum(current.values()) or 1.0
    total_b = sum(baseline.values()) or 1.0
    ranked = sorted(
        (
            WordShift(word, baseline.get(word, 0.0) / total_b, current.get(word, 0.0) / total_c, z)
            for word, z in scores.items()
            if z >= min_z
        ),
        key=lambda s: (-s.z, s.word),
    )
    return ranked[:limit]
