"""How often a stationary model meets ModelErrorRateRose's condition (rules/confidence.yml).

The rule compares the error rate of the calibration window with the window just before it: it
holds when the error rate rose by half, by a point at least, and at z > 4 with the larger of the
two windows' binomial variances. For a model whose accuracy does not change, the two windows'
error counts are independent binomials; this sums their joint probability over every pair of
counts that meets the condition (exact, no simulation), over a grid of accuracies and label
counts, either window up to ten times the other's labels. The rule's comment quotes the largest.

Run: ``python benchmarks/error_rate_rule_false_alarms.py`` (about 30 s).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

ACCURACIES = (0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)
LABELS = (100, 200, 400, 1000, 2000, 3600, 10_000)


def condition_probability(accuracy: float, n_before: int, n_now: int) -> float:
    """P(the rule's condition holds) for two windows of a model of this accuracy."""
    k1, k2 = np.arange(n_before + 1), np.arange(n_now + 1)
    w1, w2 = binom.pmf(k1, n_before, 1 - accuracy), binom.pmf(k2, n_now, 1 - accuracy)
    m1, m2 = w1 > 1e-16, w2 > 1e-16  # counts whose probability cannot move the sum
    a1, a2 = 1 - k1[m1][:, None] / n_before, 1 - k2[m2][None, :] / n_now
    variance = np.maximum(a1 * (1 - a1), a2 * (1 - a2)) * (1 / n_before + 1 / n_now)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (a1 - a2) / np.sqrt(variance)
    holds = ((1 - a2) > 1.5 * (1 - a1)) & (a1 - a2 > 0.01) & (z > 4)
    return float((w1[m1][:, None] * w2[m2][None, :] * holds).sum())


def main() -> None:
    rows = [(condition_probability(a, n1, n2), a, n1, n2) for a in ACCURACIES for n1 in LABELS for n2 in LABELS
            if max(n1, n2) <= 10 * min(n1, n2)]
    print("| accuracy | labels before | labels now | P(condition holds) |\n|---|---|---|---|")
    for p, a, n1, n2 in sorted(rows, reverse=True)[:5]:
        print(f"| {a} | {n1:,} | {n2:,} | {p:.2e} |")
    print(f"\nlargest over {len(rows)} grid points: {max(rows)[0]:.2e}")


if __name__ == "__main__":
    main()
