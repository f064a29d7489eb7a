"""Certificate arithmetic for randomized masking (RanMASK, Zeng et al. 2021, arXiv:2105.03743).

A text of ``h`` words is smoothed by masking ``m`` of its words, chosen uniformly without replacement, and
keeping the other ``keep = h - m``. An adversary who substitutes ``d`` words changes a masked copy only
when one of those ``d`` positions is kept, which happens with probability

    delta(d) = 1 - C(h - d, keep) / C(h, keep)

(the copies of the clean and the attacked text are identical otherwise). So the attacked text's vote share
of the predicted label is at least ``p_A - delta(d)``, and the vote cannot flip while that stays above 1/2.
``p_A`` is not known, only estimated from ``n`` copies; with a one-sided Clopper-Pearson lower bound
``p_lower`` at confidence ``1 - alpha`` (the estimate Cohen et al. 2019 use), the certified radius is

    radius = max { d >= 0 : p_lower - delta(d) > 1/2 },

with ``radius = 0`` for an input certified only as it is (``p_lower > 1/2``), and ``-1`` when even that fails.
The certificate covers word substitutions, which keep the word count (as in RanMASK), not insertions.
"""
from __future__ import annotations

from math import comb

from scipy.stats import beta


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``1 - alpha`` lower confidence bound on a binomial proportion (exact, Clopper-Pearson):
    the ``alpha`` quantile of Beta(successes, trials - successes + 1); 0 when there are no successes."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1; got {successes} of {trials}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def mask_delta(num_words: int, num_masked: int, changed: int) -> float:
    """Probability that at least one of ``changed`` words stays visible when ``num_masked`` of ``num_words``
    words are masked uniformly at random (RanMASK's Delta)."""
    keep = num_words - num_masked
    if changed <= 0:
        return 0.0
    if changed > num_words:
        return 1.0
    return 1.0 - comb(num_words - changed, keep) / comb(num_words, keep)


def certified_radius(p_lower: float, num_words: int, num_masked: int) -> int:
    """The most words an adversary may substitute without flipping the smoothed vote (see the module
    docstring); ``-1`` when the prediction itself is not certified (``p_lower <= 1/2``)."""
    if p_lower <= 0.5:
        return -1
    radius = 0
    for d in range(1, num_words + 1):
        if p_lower - mask_delta(num_words, num_masked, d) <= 0.5:
            break
        radius = d
    return radius


def summarize_certificates(radii, predicted, labels, at: tuple[int, ...] = (1, 2, 3)) -> dict:
    """Fraction of inputs certified at each radius in ``at`` (radius >= r), and certified accuracy (certified
    and correct), from per-input ``radii``, smoothed ``predicted`` labels and true ``labels``."""
    import numpy as np

    radii, correct = np.asarray(radii), np.asarray(predicted) == np.asarray(labels)
    return {"n": int(len(radii)),
            "certified_fraction": {str(r): float((radii >= r).mean()) for r in at},
            "certified_accuracy": {str(r): float(((radii >= r) & correct).mean()) for r in at},
            "mean_radius_correct": float(np.maximum(radii[correct], 0).mean()) if correct.any() else 0.0}
