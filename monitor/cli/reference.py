"""``monitor reference``: build and inspect reference profiles for the drift detectors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.schema import OUTPUT_KINDS, TEXT_OUTPUT

__all__ = ["reference"]


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


@click.group("reference")
def reference() -> None:
    """Build and inspect reference profiles (the data drift is measured against)."""


@reference.command("build")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Profile to write (.npz).")
@click.option("--output-columns", default="", help="Comma-separated columns holding the model's outputs "
              "(class probabilities in class order, or one regression value).")
@click.option("--output-kind", type=click.Choice(OUTPUT_KINDS), default=None, help="The model's output.kind, as its "
              "config says: for text (a generative model) the answers are the text column 'output' (--text prompt,output), "
              "not --output-columns; for none the outputs are not monitored. Default: not said (other kinds read "
              "--output-columns).")
@click.option("--label-column", default=None, help="Column holding the ground truth.")
@click.option("--categorical", default=None, help="Comma-separated categorical columns (default: guessed).")
@click.option("--text", default=None, help="Comma-separated free-text columns of a CSV / Parquet file (reviews, "
              "queries), monitored through numbers describing each text (COL.length, COL.words, "
              "COL.non_letter_share, COL.non_ascii_share, COL.oov_share against the column's vocabulary). Default: "
              "text columns whose values are mostly distinct and of 3+ words (or 40+ characters); '' reads none as "
              "text (they are then categorical).")
@click.option("--exclude", default="", help="Comma-separated columns to ignore (ids, timestamps).")
@click.option("--classes", default="", help="Comma-separated class names (default: the output column names).")
@click.option("--feature-names", default="", help="Comma-separated names of the columns of a .npy (or an .npz without "
              "feature_names), in order: the config's features, as array inputs are read live (default: f0, f1, ...).")
@click.option("--bins", "n_bins", default=20, show_default=True, type=click.IntRange(2, 1000),
              help="Quantile bins stored per numeric feature.")
@click.option("--max-rows", default=1_000_000, show_default=True, type=click.IntRange(100),
              help="Rows sampled (uniformly) for quantiles and PCA; counts stay exact.")
@click.option("--keep-rows", default=5000, show_default=True, type=click.IntRange(0),
              help="Random rows kept in the profile for detectors that need rows.")
@click.option("--pca-fit", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Data to fit the multivariate drift detector's PCA on (typically the training set; its columns "
                   "named as the reference's numeric features are read). Its errors are still calibrated on "
                   "every reference row. Default: the PCA is fitted on the reference itself.")
@click.option("--channel-axis", default=None, help="For an array of images (.npy, or an .npz's X, of 3 or more "
              "dimensions): the axis of its channels, each described by its mean and std (1 for (n, c, h, w), 3 or -1 "
              "for (n, h, w, c); 'none' for none). Default: axis 1 or 3, whichever alone holds 3 or 4 values.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def build(data: Path, output: Path, output_columns: str, output_kind: str | None, label_column: str | None,
          categorical: str | None,
          text: str | None, exclude: str, classes: str, feature_names: str, n_bins: int, max_rows: int, keep_rows: int,
          pca_fit: Path | None, channel_axis: str | None, seed: int, quiet: bool) -> None:
    """Profile reference DATA (CSV, Parquet with pyarrow, .npy, .npz) into a pickle-free profile.

    The reference should be held-out, in-distribution data with the model's outputs on it, never
    the training set. The training set may still give the PCA its directions (--pca-fit): with a
    reference of a few hundred rows, that finds them better and calibrates on every reference row.

    An .npy (or an .npz's X) of 3 or more dimensions, images (n, c, h, w), audio, sequences, is n
    rows of one tensor feature, profiled through the numbers describing each row as live inputs
    of that shape are read; an .npz gives the model's outputs and the labels as 'scores' and 'labels'.
    """
    from monitor.profile import ProfileError, build_profile, check_column_roles_target

    names = _names(feature_names)
    try:
        if output_kind in ("text", "none") and _names(output_columns):
            raise ProfileError(f"--output-columns names columns of the model's scores, and output.kind: {output_kind} "
                               "reads none. Fix: remove --output-columns"
                               + (f"; the answers are the text column {TEXT_OUTPUT!r} (--text ...,{TEXT_OUTPUT})"
                                  if output_kind == "text" else ""))
        if names:
            _check_feature_names(data, names)
        from monitor.tensor_reference import holds_tensor

        if not holds_tensor(data):  # (a file of images says it in its own words)
            # an array file's columns have no names to give roles to: these options were read as nothing
            check_column_roles_target(data, output_columns=_names(output_columns), label_column=label_column,
                                      exclude=_names(exclude), categorical=_names(categorical) or None, options=True)
        prof = build_profile(
            data, output_columns=_names(output_columns), label_column=label_column,
            categorical=None if categorical is None else _names(categorical), exclude=_names(exclude),
            classes=_names(classes), n_bins=n_bins, max_rows=max_rows, keep_rows=keep_rows, seed=seed,
            progress=not quiet, pca_fit=pca_fit, unnamed_as=names, text=None if text is None else _names(text),
            channel_axis=_channel_axis(channel_axis))
        if prof.tensor_names:
            _say_tensor(prof.save(output), prof)
            for problem in (_label_problem(prof), _tensor_missing_parts(prof)):
                if problem:
                    click.echo(f"warning: {problem}", err=True)
            return
        if names and prof.numeric_names != names:
            raise ProfileError(f"--feature-names names {len(names)} columns ({', '.join(names)}); {data.name}'s "
                               f"{len(prof.numeric_names)} numeric columns are named {', '.join(prof.numeric_names)} "
                               "(an .npz's own feature_names, or f0, f1, ... when the count differs). Fix: name each "
                               "numeric column once, in order, or leave --feature-names out for an .npz that names them")
        path = prof.save(output)
    except ProfileError as err:
        raise click.ClickException(str(err)) from None
    from monitor.derived import TextDerived

    described = sum(len(TextDerived(t, frozenset(v)).columns) for t, v in prof.vocabularies.items())  # the texts' columns
    click.echo(f"wrote {path}: {prof.n_rows} rows, {len(prof.numeric) - described} numeric and {len(prof.categorical)} "
               f"categorical features"
               + _text_said(prof.vocabularies, output_kind)
               + (", model outputs" if prof.outputs else "")
               + (", labels" if prof.label_counts is not None else "")
               + (f", PCA keeping {_components(prof.pca.components.shape[0])}" if prof.pca else "")
               + (f" fitted on {prof.meta['pca_fit_rows']} rows of {pca_fit.name}"
                  if prof.pca and pca_fit is not None and "pca_fit_rows" in prof.meta else ""))
    if prof.pca is None and len(prof.numeric) >= 2:  # the start log and `show` say it too; --pca-fit went unused
        from monitor.profile import pca_absent_reason

        click.echo(f"warning: no PCA in the profile, so pca_drift is off: {pca_absent_reason(prof, pca_fit is not None)}",
                   err=True)
    problem = _label_problem(prof)
    if problem:
        click.echo(f"warning: {problem}", err=True)
    if data.suffix.lower() in (".npy", ".npz"):  # no columns to name: the arrays hold the outputs and labels
        problem = _tensor_missing_parts(prof) if output_kind not in ("text", "none") else None
        if problem:
            click.echo(f"warning: {problem}", err=True)
        return
    for missing in _missing_parts(prof, output_columns, label_column, output_kind):
        click.echo(f"warning: {missing}", err=True)


def _channel_axis(value: str | None) -> int | None:
    """``--channel-axis``: an axis, ``none`` (0: no channels), or None to recognise it."""
    from monitor.profile import ProfileError

    if value is None:
        return None
    if value.strip().lower() == "none":
        return 0
    try:
        axis = int(value)
    except ValueError:
        axis = 0
    if not axis:
        raise ProfileError(f"--channel-axis must be an axis of the array or none, got {value!r}. Fix: --channel-axis 1 "
                           "for (n, c, h, w), 3 (or -1) for (n, h, w, c), none for rows without channels")
    return axis


def _say_tensor(path: Path, prof: object) -> None:
    """What ``build`` wrote for a file of images: its tensor feature and descriptors."""
    from monitor.tensor import channels_in

    name = prof.tensor_names[0]  # type: ignore[attr-defined]
    channels = channels_in(name, prof.numeric_names)  # type: ignore[attr-defined]
    click.echo(f"wrote {path}: {prof.n_rows} rows of the tensor feature {name!r} ({len(prof.numeric)} descriptors"  # type: ignore[attr-defined]
               + (f", {channels} channels" if channels else ", no channel axis") + ")"
               + (", model outputs" if prof.outputs else "")  # type: ignore[attr-defined]
               + (", labels" if prof.label_counts is not None else "")  # type: ignore[attr-defined]
               + (f", PCA keeping {_components(prof.pca.components.shape[0])}" if prof.pca else ""))  # type: ignore[attr-defined]


def _tensor_missing_parts(prof: object) -> str | None:
    """What a profile of an array file (images, or the rows of an .npy / .npz) lacks that detectors
    need (:func:`_missing_parts` for files of named columns)."""
    rows = "images" if getattr(prof, "tensor_names", None) else "rows"
    fix = f"save the rows with them, numpy.savez(path, X={rows}, scores=probabilities, labels=labels), and build from it"
    if not getattr(prof, "outputs", None):
        return ("the profile holds no model outputs, so the detectors that compare outputs with the reference "
                f"(confidence_drift, prediction_drift, accuracy_estimation, output_drift) are left out. Fix: {fix}")
    if getattr(prof, "label_counts", None) is None:
        return f"no labels: accuracy_estimation and the reference accuracy need the ground truth. Fix: {fix}"
    return None


def _check_feature_names(data: Path, names: tuple[str, ...]) -> None:
    """``--feature-names`` is for array files, whose columns have no names: a CSV or Parquet file
    names its columns in its header, an ``.npz`` with ``feature_names`` or categorical columns
    in its own arrays."""
    from monitor.profile import ProfileError

    if len(set(names)) != len(names):
        raise ProfileError(f"--feature-names names a column twice ({', '.join(names)}). Fix: give each name once")
    if data.suffix.lower() not in (".npy", ".npz"):
        raise ProfileError(f"--feature-names: {data.name} names its columns in its header. Fix: rename them there, "
                           "or leave --feature-names out")


def _text_said(vocabularies: dict[str, tuple[str, ...]], output_kind: str | None) -> str:
    """The summary's text features, a generative model's answers (``output``) apart."""
    answers = output_kind == "text" and TEXT_OUTPUT in vocabularies
    inputs = [t for t in vocabularies if not (answers and t == TEXT_OUTPUT)]
    return ((f", {len(inputs)} text ({', '.join(inputs)})" if inputs else "")
            + (f", the answers (text column {TEXT_OUTPUT!r})" if answers else ""))


def _missing_parts(prof: object, output_columns: str, label_column: str | None,
                   output_kind: str | None = None) -> list[str]:
    """What the profile lacks that detectors need, said at build time: without the model's outputs
    (no ``--output-columns``) every output detector is left out when the agent starts, and every
    column, the outputs and the labels too, is profiled as a feature, which the live inputs then
    never match. A generative model (``--output-kind text``) has its answers as the text column
    ``output`` instead, and one whose outputs are not read (``none``) needs neither."""
    out = []
    texts = tuple(getattr(prof, "vocabularies", None) or ())
    if output_kind == "text":
        if TEXT_OUTPUT not in texts:
            out.append(f"--output-kind text: the answers are read from the text column {TEXT_OUTPUT!r}, which the profile "
                       f"lacks (its text columns: {', '.join(texts) or 'none'}), so they are compared with nothing. Fix: "
                       f"rename the answers' column to {TEXT_OUTPUT} and list it with --text (--text prompt,{TEXT_OUTPUT})")
        return out
    if output_kind == "none":
        return out
    if not getattr(prof, "outputs", None):
        if output_kind is None and TEXT_OUTPUT in texts:
            out.append(f"no --output-columns: the profile holds no model scores. If the model generates text "
                       f"(output.kind: text), its answers are the text column {TEXT_OUTPUT!r} this profile holds: say so "
                       "with --output-kind text and nothing is missing. Otherwise the detectors that compare outputs with "
                       "the reference are left out. Fix: name the columns of the model's outputs, e.g. --output-columns "
                       "p_setosa,p_versicolor")
            return out
        out.append("no --output-columns: the profile holds no model outputs, so the detectors that compare outputs with "
                   "the reference (confidence_drift, prediction_drift, accuracy_estimation, output_drift) are left out, "
                   "and every column" + (f" but {label_column}" if label_column else "") + " is profiled as an input "
                   "feature. Fix: name the columns of the model's outputs, e.g. --output-columns p_setosa,p_versicolor "
                   "(one regression value: --output-columns prediction)")
    elif getattr(prof, "label_counts", None) is None and label_column is None:
        out.append("no --label-column: accuracy_estimation and the reference accuracy (ModelAccuracyDrop, "
                   "ModelEstimatedAccuracyDrop) need the ground truth, and a label column left in the data is profiled as an input feature. Fix: "
                   "--label-column NAME (or --exclude it when there is none)")
    return out


def _label_problem(prof: object) -> str | None:
    """What the classifier detectors would refuse in the profile's labels (e.g. names that are
    not among ``--classes``, which default to the output column names), said now rather than when
    ``monitor serve`` builds its detectors from the profile."""
    sample = getattr(prof, "sample", None)
    scores = None if sample is None else sample.scores
    if sample is None or sample.labels is None or scores is None or getattr(scores, "ndim", 0) != 2 or scores.shape[1] < 2:
        return None
    from monitor.detectors._common import reference_probabilities
    from monitor.outputs import are_probabilities

    if not are_probabilities(scores):
        return None  # regression quantiles or intervals, or logits (decoded per the config): no class probabilities to check
    try:
        reference_probabilities(prof.to_reference(), "reference build")  # type: ignore[attr-defined]
    except ValueError as err:
        return str(err).replace("detector 'reference build': ", "", 1)
    return None


def _strict_json(value: object) -> object:
    """``value`` as strict JSON: numpy scalars as Python numbers, NaN and infinities as null.
    A feature that is always missing has no min, max, mean or std (NaN): ``json.dumps`` wrote
    them as ``NaN``, which strict JSON parsers (JavaScript's ``JSON.parse``, Go's
    ``encoding/json``) refuse, so ``--json`` broke the scripts it is for."""
    import math

    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if item is not None and not isinstance(value, (str, bytes)):
        value = item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@reference.command("show")
@click.argument("profile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(profile: Path, as_json: bool) -> None:
    """Summarise a profile: features, types, missing rates, ranges."""
    from monitor.profile import PCA_CROSS_FITTED_ADVICE, Profile, ProfileError, pca_absent_reason, pca_calibration

    try:
        prof = Profile.load(profile)
    except ProfileError as err:
        raise click.ClickException(str(err)) from None
    rows = []
    for f in prof.numeric:
        rows.append({"feature": f.name, "type": "numeric", "missing": round(f.missing_ratio, 6), "min": f.min,
                     "max": f.max, "mean": f.mean, "std": f.std, "bins": int(f.counts.size), "distinct": f.n_distinct})
    for c in prof.categorical:
        rows.append({"feature": c.name, "type": "categorical", "missing": round(c.missing_ratio, 6),
                     "categories": len(c.categories), "top": list(c.categories[:5])})
    info = {"version": prof.version, "rows": prof.n_rows, "meta": prof.meta, "features": rows,
            "outputs": None if prof.outputs is None else {"classes": list(prof.outputs.classes), **_outputs_json(prof.outputs)},
            "labels": _labels_json(prof),
            "pca_components": None if prof.pca is None else int(prof.pca.components.shape[0]),
            # the fold PCAs' own counts: each keeps its share of the variance, the counts may differ
            "pca_fold_components": None if prof.pca is None else [int(f.components.shape[0]) for f in prof.pca.folds],
            "pca_off": pca_absent_reason(prof) if prof.pca is None else None,
            "pca_calibration": pca_calibration(prof),
            "text": {name: {"vocabulary": len(words)} for name, words in prof.vocabularies.items()}}
    if as_json:
        click.echo(json.dumps(_strict_json(info), indent=2, allow_nan=False))
        return
    click.echo(f"profile v{prof.version}: {prof.n_rows} rows ({prof.meta.get('source', 'in-memory')})")
    for r in rows:
        extra = (f"range [{r['min']:.4g}, {r['max']:.4g}]" if r["type"] == "numeric"
                 else f"{r['categories']} categories, top {r['top']}")
        click.echo(f"  {r['feature']:<24} {r['type']:<12} missing {r['missing']:.2%}  {extra}")
    for name, words in prof.vocabularies.items():
        click.echo(f"text feature {name}: profiled as the numeric {name}.* above, a vocabulary of {len(words)} words")
    click.echo(_outputs_said(info))
    if prof.pca is not None:
        fitted = {"pca_fit": f"fitted on {prof.meta.get('pca_fit_rows')} rows of "
                             f"{prof.meta.get('pca_fit_source', 'other data')}, its errors calibrated on the reference",
                  "folds": (f"fitted on every reference row; its errors calibrated on {len(prof.pca.folds)} folds, each "
                            "under a PCA of the other folds (live rows meet one of them at random), keeping "
                            + _span([int(f.components.shape[0]) for f in prof.pca.folds]) + " components"),
                  "half": ("fitted on half the reference, its errors calibrated on the other half (sound; rebuilt with "
                           "'monitor reference build', every row would calibrate and the PCA see more of them)"),
                  "cross_fitted": f"fitted on every reference row; {PCA_CROSS_FITTED_ADVICE}"}[info["pca_calibration"]]
        click.echo(f"PCA (multivariate drift): {_components(prof.pca.components.shape[0])} explaining "
                   f"{prof.pca.explained:.0%} of the variance (kept until they explain the share asked, 90% by default, and at "
                   f"most one fewer than the directions the features span), {fitted}")
    else:
        click.echo(f"PCA (multivariate drift): none, pca_drift is off: {info['pca_off']}")


def _outputs_json(outputs: object) -> dict[str, object]:
    """The model's outputs on the reference: how often each class was predicted and the mean top
    score, or a regression model's values."""
    out: dict[str, object] = {}
    counts = getattr(outputs, "predicted_counts", None)
    if counts is not None:
        out["predicted_counts"] = [int(c) for c in counts]
    top = getattr(outputs, "max_score", None)
    if top is not None:
        out["mean_max_score"] = top.mean
    value = getattr(outputs, "value", None)
    if value is not None:
        out["value"] = {"min": value.min, "max": value.max, "mean": value.mean}
    return out


def _labels_json(prof: object) -> dict[str, object] | None:
    """The reference's labels: rows per class index when they are class indices, else how many
    of the rows kept in the profile carry one (a regression model's targets)."""
    counts = getattr(prof, "label_counts", None)
    if counts is not None:
        return {"rows": int(counts.sum()), "counts": [int(c) for c in counts]}
    sample = getattr(prof, "sample", None)
    if sample is not None and sample.labels is not None:
        return {"rows_kept": int(len(sample.labels))}
    return None


def _outputs_said(info: dict) -> str:
    """``show``'s lines on the model's outputs and the labels, which the build said it kept: a
    profile built without them leaves detectors out, which the summary said nothing of."""
    outputs, labels = info["outputs"], info["labels"]
    if outputs is None and TEXT_OUTPUT in info["text"]:
        said = f"model outputs: none as scores; a generative model's answers are the text feature {TEXT_OUTPUT!r} above"
    elif outputs is None:
        said = ("model outputs: none (confidence_drift, prediction_drift, accuracy_estimation and output_drift are "
                "left out; unless the model's outputs are not monitored, output.kind: none, rebuild with "
                "--output-columns, or an .npz's 'scores')")
    elif "value" in outputs:
        v = outputs["value"]
        said = f"model outputs: one value per row, range [{v['min']:.4g}, {v['max']:.4g}], mean {v['mean']:.4g}"
    else:
        counts = outputs.get("predicted_counts") or []
        total = sum(counts) or 1
        shares = ", ".join(f"{c} {n / total:.1%}" for c, n in zip(outputs["classes"], counts))
        said = (f"model outputs: classes {', '.join(outputs['classes'])}; predicted {shares}"
                + (f"; mean top score {outputs['mean_max_score']:.3g}" if "mean_max_score" in outputs else ""))
    if labels is None:
        said += ("\nlabels: none (accuracy_estimation and the reference accuracy need them; rebuild with --label-column, "
                 "or an .npz's 'labels')")
    elif "counts" in labels:
        names = (outputs or {}).get("classes") or []
        shares = ", ".join(f"{names[i] if i < len(names) else i} {n / max(labels['rows'], 1):.1%}"
                           for i, n in enumerate(labels["counts"]))
        said += f"\nlabels: {labels['rows']} ({shares})"
    else:
        said += f"\nlabels: on the {labels['rows_kept']} rows kept in the profile"
    return said


def _components(n: int) -> str:
    """``"1 component"``, ``"4 components"``."""
    return f"{n} component" + ("" if n == 1 else "s")


def _span(counts: list[int]) -> str:
    """``"4"`` or ``"4 to 6"``: the fold PCAs' component counts."""
    lo, hi = min(counts, default=0), max(counts, default=0)
    return str(lo) if lo == hi else f"{lo} to {hi}"
