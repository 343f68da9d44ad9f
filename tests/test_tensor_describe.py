"""The tensor descriptors, computed in one float64 pass per chunk, against a plain float64 reading.

Describing a 3 x 224 x 224 image cost the worker about a millisecond: each descriptor was read
apart (numpy's ``mean`` and ``std``, with float64 temporaries of the rows), and each channel's
again. :func:`monitor.tensor.describe` now writes each chunk once into a float64 buffer, less a
shift near each channel's mean, and takes each channel's sum and sum of squares in one pass each,
the overall figures combined from the channels'. Checked here against the descriptors read the
plain way (every value as float64, two-pass std) on rows chosen to break a careless one-pass
variance: values far from zero with a small spread, a constant row, channels of another scale,
channels last, and non-finite values; and the README's cost figures against the benchmark's
results file.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor import tensor
from monitor.tensor import describe


def plain(rows: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """The descriptors read one by one in float64, row by row (the reference implementation)."""
    x = np.asarray(rows, dtype=np.float64)
    out = []
    for row in x:
        by_channel = np.moveaxis(row, channel_axis - 1, 0).reshape(row.shape[channel_axis - 1], -1) \
            if channel_axis else row.reshape(1, -1)
        values = row.ravel()
        ok = np.isfinite(values)
        kept = values[ok]
        line = [np.nan] * 6 if not kept.size else [
            kept.mean(), kept.std(), kept.min(), kept.max(), np.mean(kept == kept.min()), np.mean(kept == kept.max())]
        line.append(1.0 - ok.mean())
        if channel_axis:
            channel_values = [c[np.isfinite(c)] for c in by_channel]
            line += [c.mean() if c.size else np.nan for c in channel_values]
            line += [c.std() if c.size else np.nan for c in channel_values]
        out.append(line)
    return np.array(out)


def _rows() -> list[tuple[str, np.ndarray, int | None]]:
    rng = np.random.default_rng(0)
    far = (1e6 + rng.normal(0.0, 1e-3, (4, 3, 20, 30))).astype(np.float64)  # a careless E[x²] - E[x]² gives noise
    scales = rng.normal(0.0, 1.0, (4, 3, 16, 16)) * np.array([1e-3, 1.0, 1e3])[None, :, None, None]
    constant = np.full((3, 3, 8, 8), 77, dtype=np.uint8)
    constant[1, 2] = 0  # a channel apart
    gaps = rng.uniform(-1.0, 1.0, (5, 3, 10, 10)).astype(np.float32)
    gaps[0, 0, 0, :4] = np.nan
    gaps[1, 2] = np.inf  # a channel of none
    gaps[2] = np.nan  # a row of none
    gaps[3, 1, 5, 5] = -np.inf
    return [
        ("uint8 NCHW", rng.integers(0, 256, (6, 3, 24, 24), dtype=np.uint8), 1),
        ("uint8 NHWC", rng.integers(0, 256, (6, 24, 24, 4), dtype=np.uint8), 3),
        ("float32 no channels", rng.normal(0.5, 0.2, (5, 7, 9, 11)).astype(np.float32), None),
        ("int16 audio, channels on axis 1", rng.integers(-30000, 30000, (4, 2, 5000), dtype=np.int16), 1),
        ("channel axis in the middle", rng.normal(size=(3, 5, 3, 7)), 2),
        ("far from zero, small spread", far, 1),
        ("channels of other scales", scales, 1),
        ("constant rows and channels", constant, 1),
        ("non-finite values", gaps, 1),
        ("bool", rng.uniform(size=(4, 3, 5, 5)) < 0.3, 1),
    ]


@pytest.mark.parametrize("name, rows, axis", _rows(), ids=[r[0] for r in _rows()])
def test_the_descriptors_are_those_of_a_plain_float64_reading(name, rows, axis) -> None:
    got, want = describe(rows, axis), plain(rows.astype(np.float64) if rows.dtype == bool else rows, axis)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    # means and stds within 1e-9 of the spread (the far rows' std is 1e-3 of values of 1e6);
    # extremes and shares exact
    scale = np.nanmax(np.abs(want[:, [1]]), initial=1.0) if name != "far from zero, small spread" else 1e-3
    close = np.isclose(got, want, rtol=1e-9, atol=1e-9 * scale, equal_nan=True)
    assert close.all(), (name, np.argwhere(~close)[:5], got[~close][:5], want[~close][:5])


def test_chunks_give_what_one_pass_gives() -> None:
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    whole = describe(rows, 1)
    old, tensor.CHUNK_VALUES = tensor.CHUNK_VALUES, 500
    try:
        assert np.array_equal(describe(rows, 1), whole)
    finally:
        tensor.CHUNK_VALUES = old


def _drain(inputs: list[np.ndarray]) -> list[tuple]:
    from monitor.events import PREDICTION

    return [(PREDICTION, 1e9 + i, x, np.full((len(x), 2), 0.5), 0.001, None, None, None, None)
            for i, x in enumerate(inputs)]


def test_a_drain_of_calls_is_described_at_once_as_call_by_call() -> None:
    """Small images are described a drain at once (the calls' arrays joined): the same figures,
    and a call that does not fit (another channel count) is read alone, refused and counted."""
    from monitor.ingest import BatchBuilder
    from monitor.schema import Feature, OutputSpec, Schema

    rng = np.random.default_rng(2)
    calls = [rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8) for n in (4, 0, 7, 1)]
    builder = BatchBuilder(Schema((Feature("image", "tensor"),)), OutputSpec("probabilities", ("a", "b")))
    result = builder.build(_drain(calls))
    assert result.batch is not None and result.rows_per_event == [4, 0, 7, 1]
    assert np.array_equal(result.batch.numeric, np.vstack([describe(x, 1) for x in calls]))
    grey = calls[:2] + [calls[2][:, :1]] + calls[3:]
    result = builder.build(_drain(grey))
    assert result.rejected == {"wrong_shape": 7} and result.rows_per_event == [4, 0, 0, 1]
    assert np.array_equal(result.batch.numeric, np.vstack([describe(calls[0], 1), describe(calls[3], 1)]))


def test_the_readme_quotes_the_benchmark_s_image_figures() -> None:
    """The README's cost of describing images is the results file's (written by the benchmark's
    ``--write``), each figure and its ratio to the numeric path in the same run."""
    from tests.conftest import REPO_ROOT

    results = (REPO_ROOT / "benchmarks" / "results" / "descriptors.md").read_text()
    rows = {cells[0]: cells[1:] for line in results.splitlines() if line.startswith("| image")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    text = (REPO_ROOT / "README.md").read_text()
    part = " ".join(text[text.index("**Images, audio, sequences**"):text.index("**Embeddings**")].split())
    fix = "run python benchmarks/bench_descriptors.py --write and copy its image rows into the README"
    for side, unit in ((32, "3 x 32 x 32 image"), (224, "3 x 224 x 224 one")):
        u8, f32 = rows[f"image 3x{side}x{side} uint8"], rows[f"image 3x{side}x{side} float32"]
        assert f"{u8[0]} and {f32[0]} µs per {unit}" in part, (side, u8, f32, fix)
        assert f"{u8[1]} and {f32[1]}" in part, (side, fix)
    assert f"{rows['image 224x224x3 uint8'][0]} µs channels last" in part, fix
