"""`monitor.stats.matmul.matmul`: the same product as ``a @ b``, computed in blocks that each stay
under OpenBLAS's single-thread size (so the worker never wakes BLAS threads that then spin)."""

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
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert calls, "the product never reached BLAS"
    for sa, sb in calls:
        kind, size = _blas_size(sa, sb)
        limit = mm.SINGLE_THREAD_MN if kind == "gemv" else mm.SINGLE_THREAD_MNK
        assert size <= limit, f"{kind} block {sa} @ {sb} ({size}) would run on several BLAS threads"


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
