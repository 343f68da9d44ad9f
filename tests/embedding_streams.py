"""Seeded embedding streams for the embedding drift tests: 64 values a row made of 8 latent factors
(sd 3 down to 1) through a fixed mixing matrix, plus noise of sd 0.5 per value -- the low-rank
shape of a sentence embedding or a penultimate layer."""

from __future__ import annotations

import numpy as np

WIDTH, FACTORS = 64, 8
_SD = np.linspace(3.0, 1.0, FACTORS)
_MIX = np.random.default_rng(123).normal(size=(FACTORS, WIDTH))
_CLUSTER = 3.0 * np.random.default_rng(7).normal(size=WIDTH)


def embeddings(rng: np.random.Generator, rows: int, *, shift_sd: float = 0.0, shifted: int = 3,
               cluster_share: float = 0.0) -> np.ndarray:
    """``rows`` embeddings; ``shift_sd``: the first ``shifted`` factors' means moved by that many
    of their sd (a move *along* the main directions); ``cluster_share``: that share of the rows
    from a new cluster, the same factors moved off the reference's directions by a fixed vector
    of norm about 24, as far as the first factor reaches (a new kind of input)."""
    latent = rng.normal(size=(rows, FACTORS)) * _SD
    latent[:, :shifted] += shift_sd * _SD[:shifted]
    out = latent @ _MIX + rng.normal(size=(rows, WIDTH)) * 0.5
    if cluster_share:
        out[rng.random(rows) < cluster_share] += _CLUSTER
    return out
