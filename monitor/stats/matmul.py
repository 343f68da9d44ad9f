"""Matrix products on the calling thread only: ``a @ b`` cut into blocks small enough that the
BLAS library runs each one on a single thread.

Why: OpenBLAS (numpy's default BLAS) runs a product on all cores as soon as it holds more than
``65536 * 4`` multiply-adds (``m * n * k``; ``9216`` for a matrix-vector product). A drained
batch of 8,192 rows times a ``32 x 20`` PCA basis is over that, so the worker would wake one BLAS
thread per core for a product that takes a fraction of a millisecond -- and OpenBLAS's threads then
*spin* (busy-wait for the next product) for a long while before sleeping. The monitor shares the
process, and usually the cores, with the user's model: the spinning threads burned more CPU than
the monitor's own work (on the 2-core benchmark machine, the default detectors together cost about
twice the sum of their costs alone) and competed with the model for the cores. Limiting the
library's thread count is not an option: it is process-wide, and the model may rely on it.

Blocking keeps the arithmetic identical (each output element is one dot product of the same
operands) and adds one Python call per ``2**18`` multiply-adds, a few percent of the product.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matmul", "SINGLE_THREAD_MNK", "SINGLE_THREAD_MN"]

#: Largest ``m * n * k`` of a matrix-matrix product OpenBLAS runs on one thread
#: (``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD`` = 65536 * 4 in its default build).
SINGLE_THREAD_MNK = 1 << 18
#: Largest ``m * k`` of a matrix-vector product OpenBLAS runs on one thread (2304 * 4, minus one).
SINGLE_THREAD_MN = 9215

_np_matmul = np.matmul  # the one BLAS entry point here (tests wrap it to check every block's size)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a 2-D ``a`` and a 1-D or 2-D ``b``, computed in single-threaded BLAS blocks.

    Anything else (stacked operands, 1-D ``a``) and products already small enough go straight to
    ``np.matmul``. One-row and one-column blocks are matrix-vector products (numpy calls GEMV for
    them, which has the lower threshold), so they are blocked as such.

    >>> a = np.arange(6000.0).reshape(2000, 3) % 7
    >>> b = np.arange(3 * 200.0).reshape(3, 200) % 5
    >>> bool(np.array_equal(matmul(a, b), a @ b)), bool(np.array_equal(matmul(a, b[:, 0]), a @ b[:, 0]))
    (True, True)
    >>> bool(np.array_equal(matmul(a[:1], b), a[:1] @ b)), bool(np.array_equal(matmul(a, b[:, :1]), a @ b[:, :1]))
    (True, True)
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim not in (1, 2):
        return _np_matmul(a, b)
    if b.ndim == 1:
        return _matvec(a, b)
    m, k = a.shape
    n = b.shape[1]
    if n == 1:
        return _matvec(a, b[:, 0])[:, None]
    if m == 1:
        return _matvec(b.T, a[0])[None, :]
    if m * n * k <= SINGLE_THREAD_MNK or k == 0 or n == 0 or 2 * k > SINGLE_THREAD_MNK:
        return _np_matmul(a, b)
    cols = min(n, SINGLE_THREAD_MNK // (2 * k))  # at least two rows per block
    rows = SINGLE_THREAD_MNK // (k * cols)
    out = np.empty((m, n), dtype=np.result_type(a, b))
    for c in range(0, n, cols):
        bc = b[:, c:c + cols]
        for s in range(0, m, rows):
            ab = a[s:s + rows]
            if ab.shape[0] == 1:
                out[s, c:c + cols] = _matvec(bc.T, ab[0])
            elif bc.shape[1] == 1:
                out[s:s + rows, c] = _matvec(ab, bc[:, 0])
            else:  # straight into the output (no block-sized temporary and copy); the same BLAS call
                _np_matmul(ab, bc, out=out[s:s + rows, c:c + cols])
    return out


def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` (2-D by 1-D) in blocks of rows under the matrix-vector threshold."""
    m, k = a.shape
    if m * k <= SINGLE_THREAD_MN or k == 0 or k > SINGLE_THREAD_MN:
        return _np_matmul(a, x)
    rows = SINGLE_THREAD_MN // k
    out = np.empty(m, dtype=np.result_type(a, x))
    for s in range(0, m, rows):
        _np_matmul(a[s:s + rows], x, out=out[s:s + rows])
    return out
