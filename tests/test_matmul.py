"""`monitor.stats.matmul.matmul`: the same product as ``a @ b`` (to rounding), computed in blocks
that each stay under OpenBLAS's single-thread size (so the worker never wakes BLAS threads that then
spin), a long inner dimension ``k`` split into tiles whose partial products are summed.

Tolerance (:func:`assert_within_rounding`): each element within ``2 (k + 2) eps`` of ``|a| @ |b|``
of ``np.matmul``'s, the worst-case rounding bound of a dot product of length ``k`` taken twice
(``matmul``'s sum and numpy's, in whatever order each adds the products), plus the final rounding
of a single-precision result. A block left out or counted twice is off by a whole partial product.
"""

from __future__ import annotations

import numpy as np
import pytest

import monitor.stats.matmul as mm
from monitor.profile import Profile

SHAPES = [
    ((8192, 32), (32, 20)),  # PCA projection of a drained batch
    ((8192, 20), (20, 32)),  # ... and back
    ((300, 32), (32, 5000)),  # a group against the stored sketches (many columns)
    ((1, 32), (32, 20000)),  # one row: a matrix-vector product
    ((20000, 32), (32, 1)),  # one column: a matrix-vector product
    ((9001, 3), (3, 1001)),  # remainders of one row and one column
    ((5, 4), (4, 3)),  # small: passed straight through
    ((0, 4), (4, 3)),
    ((6, 0), (0, 3)),
    ((64, 5000), (5000, 64)),  # long k: split into 64 x 64 x 64 tiles
    ((65, 3000), (3000, 130)),  # ... with a one-row and a 2-column remainder tile
    ((3, 6000), (6000, 1400)),  # narrow rows: tiles of every row and 1,365 columns (and a remainder)
    ((3000, 300), (300, 5)),  # narrow columns
    ((2, 200000), (200000, 2)),  # two rows of k longer than the whole single-thread budget
    ((1, 50000), (50000, 300)),  # one row, long k: a matrix-vector product split along k
    ((20, 50000), (50000, 1)),  # one column, long k
    ((2000, 100), (100, 3)),  # k over a tile but whole-k blocks of every column: not split
]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = mm._np_matmul

    def spy(a: np.ndarray, b: np.ndarray, **kw: np.ndarray) -> np.ndarray:
        seen.append((a.shape, b.shape))
        return real(a, b, **kw)

    monkeypatch.setattr(mm, "_np_matmul", spy)
    return seen


def _blas_size(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> tuple[str, int]:
    """What numpy hands to BLAS: GEMV when either side is a vector (or a single row/column)."""
    m, k = a_shape
    if len(b_shape) == 1 or b_shape[1] == 1:
        return "gemv", m * k
    n = b_shape[1]
    if m == 1:
        return "gemv", k * n
    return "gemm", m * n * k


@pytest.mark.parametrize(("a_shape", "b_shape"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_product_and_every_block_single_threaded(calls, a_shape, b_shape, dtype) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=a_shape).astype(dtype)
    b = rng.normal(size=b_shape).astype(dtype)
    got = mm.matmul(a, b)
    want = a @ b
    assert got.shape == want.shape and got.dtype == want.dtype
    assert_within_rounding(got, a, b)
    assert calls, "the product never reached BLAS"
    for sa, sb in calls:
        kind, size = _blas_size(sa, sb)
        limit = mm.SINGLE_THREAD_MN if kind == "gemv" else mm.SINGLE_THREAD_MNK
        assert size <= limit, f"{kind} block {sa} @ {sb} ({size}) would run on several BLAS threads"


def assert_within_rounding(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``got`` within the stated tolerance (module docstring) of ``np.matmul(a, b)``."""
    want = np.matmul(a, b)
    k = a.shape[-1]
    eps = np.finfo(want.dtype).eps
    bound = 2 * (k + 2) * eps * np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert (err <= bound).all(), f"off by up to {err.max():.3g}, bound {bound[err > bound].min():.3g}"


@pytest.mark.parametrize("shape", [(20000, 64), (3000, 100), (50, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scatter_product(calls, shape, dtype) -> None:
    """``z.T @ z`` (the profile's PCA scatter, k = rows): within rounding, exactly symmetric as
    numpy's SYRK makes it, every block under the threshold."""
    z = np.random.default_rng(4).normal(size=shape).astype(dtype)
    got = mm.matmul(z.T, z)
    assert got.dtype == dtype and got.shape == (shape[1], shape[1])
    assert_within_rounding(got, z.T, z)
    assert np.array_equal(got, got.T)
    assert all(_blas_size(sa, sb)[1] <= mm.SINGLE_THREAD_MNK for sa, sb in calls)


def test_long_k_is_split_into_large_tiles(calls) -> None:
    """At k = 20,000 whole-k blocks would hold 13 outputs (2 x 6 pieces); split, every product
    is a 64 x 64 tile over 64 of k (``64**3`` is the single-thread budget)."""
    z = np.random.default_rng(5).normal(size=(20000, 64))
    mm.matmul(z.T, z.copy())
    assert len(calls) == 20000 // 64 + 1
    assert all(sa == (64, sa[1]) and sb == (sa[1], 64) and sa[1] <= 64 for sa, sb in calls)
    assert sum(sa[1] for sa, _ in calls) == 20000


def test_a_times_its_transpose_computes_one_triangle(calls) -> None:
    """``z.T @ z`` with ``z.T`` a view of ``z`` (numpy's SYRK case) takes the tiles on and above
    the diagonal only: 10 of 16 per slice of k for 200 columns, where a copy of ``z`` takes 16;
    the results agree to rounding."""
    z = np.random.default_rng(6).normal(size=(2000, 200))
    sym = mm.matmul(z.T, z)
    n_sym = len(calls)
    calls.clear()
    full = mm.matmul(z.T, z.copy())
    assert n_sym * 16 == len(calls) * 10
    assert_within_rounding(sym, z.T, z)
    assert_within_rounding(full, z.T, z)


def test_counts_of_zero_one_matrices_are_exact() -> None:
    """The probing products (queries of each account in each neighbourhood; keys shared) are
    0/1 matrices in float32: their counts are whole numbers, exact in any order of summation,
    also when k is split."""
    rng = np.random.default_rng(7)
    near = (rng.random((100, 30000)) < 0.3).astype(np.float32)
    onehot = np.zeros((30000, 50), dtype=np.float32)
    onehot[np.arange(30000), rng.integers(0, 50, 30000)] = 1.0
    want = near.astype(np.int64) @ onehot.astype(np.int64)
    assert np.array_equal(mm.matmul(near, onehot), want)


def test_types_numpy_does_not_hand_to_blas_go_straight_through(calls) -> None:
    """Integer (and other non-BLAS) products run in numpy's own loops, on this thread: one call."""
    rng = np.random.default_rng(8)
    a, b = rng.integers(-5, 5, size=(300, 3000)), rng.integers(-5, 5, size=(3000, 300))
    assert np.array_equal(mm.matmul(a, b), a @ b)
    assert calls == [(a.shape, b.shape)]


@pytest.mark.parametrize("b_shape", [(32,), (32, 1)])
def test_vector_operand(calls, b_shape) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5000, 32)), rng.normal(size=b_shape)
    np.testing.assert_allclose(mm.matmul(a, b), a @ b, rtol=1e-10, atol=1e-10)
    assert len(calls) > 1 and all(sa[0] * sa[1] <= mm.SINGLE_THREAD_MN for sa, _ in calls)


def test_stacked_operands_fall_back_to_numpy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 5, 2))
    np.testing.assert_array_equal(mm.matmul(a, b), a @ b)


def test_pca_reconstruction_error_of_a_drained_batch_is_blocked(calls) -> None:
    """The PCA drift detector's per-batch product (the one that made the default detectors cost
    twice the sum of their parts) goes through the blocked path with unchanged errors."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(2000, 32)) @ rng.normal(size=(32, 32))
    pca = Profile.from_arrays(ref, numeric_names=[f"x{i}" for i in range(32)]).pca
    assert pca is not None
    x = rng.normal(size=(8192, 32)) @ rng.normal(size=(32, 32))
    z = np.where(np.isfinite(x), (x - pca.mean) / pca.scale, 0.0)
    want = np.sqrt(((z - (z @ pca.components.T) @ pca.components) ** 2).sum(axis=1))
    np.testing.assert_allclose(pca.transform_error(x), want, rtol=1e-9, atol=1e-9)
    assert len(calls) > 2
