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

Two ways of blocking, chosen by the inner dimension ``k``:

* **whole ``k``** (the worker's products: ``k`` is a feature count or a sketch width): blocks of
  rows and columns, each one BLAS call over all of ``k``: each output element is one dot product
  of the same operands, as in ``a @ b``, at one Python call per ``2**18`` multiply-adds, a few
  percent of the product. Not always to the last bit: OpenBLAS's kernels sum a block's edge rows
  in another order (0.2% of the elements of 8,192 x 32 @ 32 x 20 differ in their last bit from
  one single-threaded ``np.matmul``, whose threaded run differs from it as much on other shapes).
* **split ``k``** (tall-inner products, such as the profile's scatter ``z.T @ z`` of up to 50,000
  reference rows): whole-``k`` blocks would hold ``2**18 / k`` outputs, 2 x 2 pieces at
  ``k = 50,000``, and took 50 times one BLAS thread's time (4.4 s of CPU against 0.09 s at
  50,000 x 300; split, 0.15 s: ``benchmarks/results/matmul.md``). Here ``k`` is cut too, into
  tiles of about 64 x 64 x 64, and the partial products are summed
  into an accumulator (float64, or complex128, also for single-precision operands). Each element
  is then a sum of the same products in another order than one ``np.matmul``: the result may
  differ from ``a @ b`` in its last bits (relative differences of order ``1e-15`` of the largest
  element in float64; the same bound as the product's own rounding). Every caller in this
  package tolerates that: the scatter products feed an eigendecomposition whose eigenvectors
  differ in their last bits between CPUs and BLAS builds anyway, and the probing products of 0/1
  matrices are counts (exact integers in any order). One consequence outside a run: a reference
  data file is profiled at every start and its PCA hashed into the reference's fingerprint, so
  the same file profiled by code before this split (references of more than ``2**18 / d**2``
  rows of ``d`` numeric features) had another fingerprint, and the first restart after the
  upgrade set the detectors' checkpointed states aside once, as a numpy upgrade or another CPU
  would. A caller needing the bits of ``a @ b``
  (a digest of the product, an exact comparison with results of the whole-``k`` blocks) should
  not use this function on such shapes. ``a @ a.T``-shaped products (``b`` is ``a``'s transpose,
  as numpy's own SYRK detection reads it) compute one triangle of tiles and mirror it, so the
  result is exactly symmetric, as numpy's is.

Only products numpy hands to BLAS (float32, float64, complex64 and complex128 results) are
blocked: others run in numpy's own loops, on the calling thread.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matmul", "SINGLE_THREAD_MNK", "SINGLE_THREAD_MN"]

#: Largest ``m * n * k`` of a matrix-matrix product OpenBLAS runs on one thread
#: (``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD`` = 65536 * 4 in its default build).
SINGLE_THREAD_MNK = 1 << 18
#: Largest ``m * k`` of a matrix-vector product OpenBLAS runs on one thread (2304 * 4, minus one).
SINGLE_THREAD_MN = 9215
#: Output tile side of the split-``k`` path: 64 x 64 outputs over 64 of ``k`` is one
#: single-threaded product (``64**3 == SINGLE_THREAD_MNK``), the shape that measured fastest (a
#: thinner ``k`` adds accumulation, a thinner tile makes the kernel less efficient).
TILE = 64

_BLAS_TYPES = frozenset(np.dtype(c) for c in "fdFD")
_np_matmul = np.matmul  # the one BLAS entry point here (tests wrap it to check every block's size)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a 2-D ``a`` and a 1-D or 2-D ``b``, computed in single-threaded BLAS blocks.

    Anything else (stacked operands, 1-D ``a``), products already small enough and products
    numpy does not hand to BLAS (integer, boolean, object, half or long-double results) go
    straight to ``np.matmul``. One-row and one-column blocks are matrix-vector products (numpy
    calls GEMV for them, which has the lower threshold), so they are blocked as such. Products
    whose ``k`` is too long for whole-``k`` blocks of at least 64 x 64 outputs (or the whole of
    a narrow side) split ``k`` too: see the module docstring for what that changes (the last bits).

    >>> a = np.arange(6000.0).reshape(2000, 3) % 7
    >>> b = np.arange(3 * 200.0).reshape(3, 200) % 5
    >>> bool(np.array_equal(matmul(a, b), a @ b)), bool(np.array_equal(matmul(a, b[:, 0]), a @ b[:, 0]))
    (True, True)
    >>> bool(np.array_equal(matmul(a[:1], b), a[:1] @ b)), bool(np.array_equal(matmul(a, b[:, :1]), a @ b[:, :1]))
    (True, True)

    A long ``k`` (split): small whole numbers sum exactly in any order, so here too the result
    is ``a @ b``'s.

    >>> z = np.arange(30000.0).reshape(3000, 10) % 3
    >>> bool(np.array_equal(matmul(z.T, z), z.T @ z))
    True
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim not in (1, 2) or np.result_type(a, b) not in _BLAS_TYPES:
        return _np_matmul(a, b)
    if b.ndim == 1:
        return _matvec(a, b)
    m, k = a.shape
    n = b.shape[1]
    if n == 1:
        return _matvec(a, b[:, 0])[:, None]
    if m == 1:
        return _matvec(b.T, a[0])[None, :]
    if m * n * k <= SINGLE_THREAD_MNK:  # (and every empty product)
        return _np_matmul(a, b)
    if SINGLE_THREAD_MNK // k < min(m, TILE) * min(n, TILE):
        return _split_k(a, b)
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


def _split_k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (both 2-D, at least 2 x 2 outputs) in tiles of ``rows x cols`` outputs over
    ``depth`` of ``k``, summed into an accumulator of double precision.

    Tiles are :data:`TILE` square; a narrow side (fewer than :data:`TILE` rows or columns) is
    taken whole and the other side widened to keep about ``TILE**2`` outputs per tile, and
    ``depth`` fills the single-thread budget. ``k`` is the outer loop: each slice of ``k`` of both
    operands is read once, from cache, for every tile it contributes to. A tile of one row or one
    column (a remainder) is a matrix-vector product of at most ``SINGLE_THREAD_MNK / TILE``
    multiply-adds, under that threshold too."""
    m, k = a.shape
    n = b.shape[1]
    cols = min(n, max(TILE, TILE * TILE // min(m, TILE)))
    rows = min(m, max(TILE, TILE * TILE // cols))
    depth = SINGLE_THREAD_MNK // (rows * cols)  # at least TILE: a tile holds at most TILE**2 outputs
    dtype = np.result_type(a, b)
    wide = np.result_type(dtype, np.float64)  # float32 partial sums accumulated in float64
    # b is a's transpose (the same memory, transposed strides: numpy's SYRK case): one triangle
    symmetric = (m == n and rows == cols and a.dtype == b.dtype and a.strides == b.strides[::-1]
                 and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])
    acc = np.zeros((m, n), dtype=wide)
    part = np.empty((rows, cols), dtype=dtype)
    for s in range(0, k, depth):
        a_k, b_k = a[:, s:s + depth], b[s:s + depth]
        for r in range(0, m, rows):
            a_kr = a_k[r:r + rows]
            for c in range(r if symmetric else 0, n, cols):
                tile = acc[r:r + rows, c:c + cols]
                into = part[:tile.shape[0], :tile.shape[1]]
                _np_matmul(a_kr, b_k[:, c:c + cols], out=into)
                tile += into
    if symmetric:  # the lower tiles from the upper ones, and each diagonal tile's lower triangle
        for r in range(0, m, rows):
            for c in range(r + rows, n, cols):
                acc[c:c + cols, r:r + rows] = acc[r:r + rows, c:c + cols].T
            diagonal = acc[r:r + rows, r:r + rows]
            low = np.tril_indices(diagonal.shape[0], -1)
            diagonal[low] = diagonal.T[low]
    return acc if wide == dtype else acc.astype(dtype)


def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` (2-D by 1-D) in blocks of rows under the matrix-vector threshold; a ``k`` longer
    than the threshold is split too (partial sums in double precision, as in :func:`_split_k`)."""
    m, k = a.shape
    if m * k <= SINGLE_THREAD_MN:
        return _np_matmul(a, x)
    dtype = np.result_type(a, x)
    if k <= SINGLE_THREAD_MN:
        rows = SINGLE_THREAD_MN // k
        out = np.empty(m, dtype=dtype)
        for s in range(0, m, rows):
            _np_matmul(a[s:s + rows], x, out=out[s:s + rows])
        return out
    rows = min(m, 16)
    depth = SINGLE_THREAD_MN // rows
    acc = np.zeros(m, dtype=np.result_type(dtype, np.float64))
    part = np.empty(rows, dtype=dtype)
    for s in range(0, k, depth):
        a_k, x_k = a[:, s:s + depth], x[s:s + depth]
        for r in range(0, m, rows):
            into = part[:min(rows, m - r)]
            _np_matmul(a_k[r:r + rows], x_k, out=into)
            acc[r:r + rows] += into
    return acc if acc.dtype == dtype else acc.astype(dtype)
