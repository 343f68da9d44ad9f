"""Worker cost of free-text and tensor (image) inputs: the descriptors computed per row, against numbers.

A text feature is described in the worker by a Python loop over its texts
(:func:`monitor.text.describe`: length, words, non_letter_share, non_ascii_share, and oov_share
against the reference's vocabulary), where a numeric row is read by numpy in one go. This prints,
in one run, the worker's cost per row of building batches (:meth:`BatchBuilder.build`) for:

- **numeric**: rows of 5 numbers (a 2-D array a call), as many columns as a text's descriptors;
- **text N chars**: a list of texts a call (a text classifier's ``predict(texts)``), each of about
  N characters (10, 100, 1,000), with the reference's vocabulary (``oov_share`` included);

- **images**: arrays of 3 x 32 x 32 and 3 x 224 x 224 images a call, uint8 and float32 (an image
  model's ``predict(x)``; :func:`monitor.tensor.describe` in the worker);

and each one's ratio to the numeric path, plus the cost of :func:`describe` alone per text. No
timed assertion: the figures are for the README ("Free text", "Images, audio, sequences") and
depend on the machine.

Run: ``python benchmarks/bench_descriptors.py`` (about a minute; ``--quick`` for less; ``--write``
puts the table in ``benchmarks/results/descriptors.md``, whose image figures the README quotes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.events import PREDICTION  # noqa: E402
from monitor.ingest import BatchBuilder  # noqa: E402
from monitor.schema import Feature, OutputSpec, Schema  # noqa: E402
from monitor.text import describe  # noqa: E402

#: Rows a call, and calls a worker batch (the worker drains the queue in batches).
ROWS_PER_CALL, CALLS_PER_BATCH = 32, 16
LENGTHS = (10, 100, 1000)
#: Images a call (an image model's batch).
IMAGES_PER_CALL = 16
RESULTS = ROOT / "benchmarks" / "results" / "descriptors.md"


def _words(rng: np.random.Generator, n: int = 5000) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(n)])


def _texts(rng: np.random.Generator, words: np.ndarray, chars: int, n: int) -> list[str]:
    """``n`` sentences of about ``chars`` characters (words of 5.5 letters and a space on average)."""
    per_text = max(1, round(chars / 6.5))
    out = []
    for _ in range(n):
        text = " ".join(words[rng.integers(0, len(words), per_text)]).capitalize() + "."
        out.append(text[:chars] if len(text) > chars else text)
    return out


def _per_row(builder: BatchBuilder, batches: list[list[tuple]], repeats: int) -> float:
    """Best of ``repeats`` passes over ``batches``: seconds per row of :meth:`BatchBuilder.build`."""
    per_batch = [sum(len(ev[2]) for ev in batch) for batch in batches]  # the last batch may be short
    rows = sum(per_batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch, expected in zip(batches, per_batch):
            result = builder.build(batch)
            assert result.batch is not None and len(result.batch) == expected, result.rejected
        best = min(best, time.perf_counter() - start)
    return best / rows


def _events(inputs: list, scores: np.ndarray) -> list[list[tuple]]:
    events = [(PREDICTION, 1e9 + i, x, scores, 0.001, None, None, None, None) for i, x in enumerate(inputs)]
    return [events[i:i + CALLS_PER_BATCH] for i in range(0, len(events), CALLS_PER_BATCH)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    ap.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args()
    table: list[tuple[str, float, float, str]] = []  # inputs, build us/row, x numeric, describe us/text
    n_batches, repeats = (4, 3) if args.quick else (20, 5)
    rng = np.random.default_rng(0)
    words = _words(rng)
    vocabulary = {"review": tuple(words[:3000])}
    output = OutputSpec("probabilities", ("neg", "pos"))
    p = rng.uniform(size=ROWS_PER_CALL)
    scores = np.c_[1 - p, p]
    calls = n_batches * CALLS_PER_BATCH

    numeric = BatchBuilder(Schema.numeric([f"f{i}" for i in range(5)]), output)
    base = _per_row(numeric, _events([rng.normal(size=(ROWS_PER_CALL, 5)) for _ in range(calls)], scores), repeats)
    print(f"rows a call {ROWS_PER_CALL}, calls a worker batch {CALLS_PER_BATCH}, {calls * ROWS_PER_CALL} rows a pass, "
          f"best of {repeats}")
    print(f"{'inputs':<22}{'build us/row':>14}{'x numeric':>11}{'describe us/text':>18}")
    print(f"{'numeric, 5 columns':<22}{base * 1e6:>14.2f}{1.0:>11.1f}{'-':>18}")
    table.append(("numeric, 5 columns", base * 1e6, 1.0, "-"))
    for chars in LENGTHS:
        texts = [_texts(rng, words, chars, ROWS_PER_CALL) for _ in range(calls)]
        builder = BatchBuilder(Schema((Feature("review", "text"),)), output, vocabularies=vocabulary)
        cost = _per_row(builder, _events(texts, scores), repeats)
        voc = frozenset(vocabulary["review"])
        flat = [t for call in texts for t in call]
        alone = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            describe(flat, voc)
            alone = min(alone, (time.perf_counter() - start) / len(flat))
        print(f"{f'text, {chars} chars':<22}{cost * 1e6:>14.2f}{cost / base:>11.1f}{alone * 1e6:>18.2f}")
        table.append((f"text, {chars} chars", cost * 1e6, cost / base, f"{alone * 1e6:.2f}"))
    image_scores = scores[:IMAGES_PER_CALL]
    # channels first, and a channels-last image (each described channel by channel too)
    for side, dtype, last in ((32, np.uint8, False), (32, np.float32, False), (224, np.uint8, False),
                              (224, np.float32, False), (224, np.uint8, True)):
        n_calls = max(2, calls // (8 if side > 100 else 1))
        images = [(rng.uniform(0, 255, (IMAGES_PER_CALL, 3, side, side))).astype(dtype) for _ in range(n_calls)]
        if last:
            images = [np.ascontiguousarray(np.moveaxis(x, 1, 3)) for x in images]
        builder = BatchBuilder(Schema((Feature("image", "tensor"),)), output)
        cost = _per_row(builder, _events(images, image_scores), repeats)
        label = f"image {side}x{side}x3 {np.dtype(dtype).name}" if last else f"image 3x{side}x{side} {np.dtype(dtype).name}"
        print(f"{label:<22}{cost * 1e6:>14.2f}{cost / base:>11.1f}{'-':>18}")
        table.append((label, cost * 1e6, cost / base, "-"))
    if args.write:
        _write(table, args.quick)


def _write(table: list[tuple[str, float, float, str]], quick: bool) -> None:
    """The table as ``benchmarks/results/descriptors.md`` (the README quotes its image rows)."""
    import os
    import platform

    lines = ["# The worker's cost of describing text and tensor inputs", "",
             f"Generated by `python benchmarks/bench_descriptors.py --write{' --quick' if quick else ''}` on "
             f"{platform.machine()} with {os.cpu_count()} cores, while other jobs may have run: microseconds per row of "
             f"`BatchBuilder.build` (rows a call {ROWS_PER_CALL}, images a call {IMAGES_PER_CALL}), best of the "
             "repeats, and each one's ratio to the numeric path in the same run.", "",
             "| inputs | build us/row | x numeric | describe us/text |", "|---|---|---|---|"]
    lines += [f"| {label} | {cost:.2f} | {ratio:.1f} | {alone} |" for label, cost, ratio, alone in table]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
