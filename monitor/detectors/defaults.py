"""Which detectors a monitor runs when its config does not list any.

Every kind whose requirements the reference meets is on: a detector that needs reference scores
or labels is skipped (not failed) when the reference lacks them, so that a monitor with no
reference still gets the confidence, calibration, segment and data-quality figures.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from monitor.config import DetectorConfig
from monitor.detectors.registry import KINDS

if TYPE_CHECKING:
    from monitor.reference import Reference
    from monitor.schema import OutputSpec

__all__ = ["default_detectors", "DEFAULTS", "INPUT_SIDE", "READS_SCORES", "model_class", "why_not_run"]

log = logging.getLogger("monitor")

# requirement: what the reference must hold ("none", "inputs", "inputs2" = >= 2 numeric
# features, "scores", "labels" = scores and labels, "numeric" = >= 1 numeric feature, and scores
# when the model's outputs are read)
# Models by their outputs: "classifier" is a single-label one (probabilities, logits, labels);
# "multilabel" a model of one independent probability per label, which the single-label detectors
# (argmax, softmax confidence, class mix) misread; "inputs" one whose outputs are not monitored
# (output.kind: none: generated text, boxes, rankings), which only the input-side detectors fit
CLF, REG, ML, IN = "classifier", "regression", "multilabel", "inputs"
#: every model, and the models whose outputs are read
ALL, OUT = (CLF, REG, ML, IN), (CLF, REG, ML)

#: (kind, requirement, the models it applies to)
DEFAULTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("confidence", "none", (CLF,)),
    ("calibration", "none", (CLF,)),
    ("segments", "none", (CLF,)),
    ("regression", "none", (REG,)),
    ("data_quality", "none", ALL),
    ("confidence_drift", "scores", (CLF,)),
    ("prediction_drift", "scores", (CLF,)),
    ("accuracy_estimation", "labels", (CLF,)),
    ("input_drift", "inputs", ALL),
    ("pca_drift", "inputs2", ALL),
    ("output_drift", "scores", (REG,)),
    ("output_repeats", "none", OUT),
    ("probing", "numeric", (CLF, IN)),
    ("multilabel", "none", (ML,)),
)

#: The detectors that read the model's scores, predictions or values (and labels joined to them):
#: none applies to a model whose outputs are no scores (output.kind: none or text), and one listed
#: for it is refused (:mod:`monitor.detector_build`). Read from :data:`DEFAULTS`, not written again.
READS_SCORES = frozenset(kind for kind, _, applies in DEFAULTS if IN not in applies)
#: The detectors that watch the inputs alone, the defaults of such a model, in the order they run
INPUT_SIDE = tuple(kind for kind, _, applies in DEFAULTS if IN in applies)

#: what each kind of model is called in the messages
_MODELS = {CLF: "single-label classifiers", REG: "regression models", ML: "multi-label models",
           IN: "models whose outputs are no scores (output.kind: none or text)"}


def model_class(output: "OutputSpec") -> str:
    """Which of :data:`ALL` a model of ``output`` is."""
    if not output.scored:
        return IN
    return ML if output.is_multilabel else CLF if output.is_classifier else REG


def _applies(applies: tuple[str, ...], output: "OutputSpec") -> bool:
    """Whether a default for the models ``applies`` runs on a model of ``output``."""
    return model_class(output) in applies


def _min_reference_rows(kind: str, reference: "Reference") -> int:
    """Reference rows a default detector needs to calibrate, where it needs more than the others
    (``probing``'s PRADA test, at its default window; ``pca_drift``'s PCA, unless the reference's
    profile already holds one). Below it the default set leaves the detector out with a warning;
    a config that names it gets the detector's own error, with the fix."""
    if kind == "pca_drift":
        from monitor.profile import pca_min_rows

        if reference.profile is not None and reference.profile.pca is not None:
            return 0
        return pca_min_rows(reference.pca_basis is not None)
    if kind != "probing":
        return 0
    from monitor.detectors.probing.detector import ProbingDetector

    return ProbingDetector.min_reference_rows()


def _smaller_fix(kind: str, rows: int) -> str:
    """The settings that let ``kind`` run on a reference of ``rows`` rows, as an entry of
    ``detectors:`` to write. Only probing needs more rows than the others in the defaults (its PRADA
    test calibrates on ``prada_window`` + 10 rows): "list it with smaller windows" named no setting,
    and a ``detectors:`` list replaces the defaults, which the fix must say or the operator loses
    every other detector by following it."""
    if kind == "pca_drift":
        from monitor.profile import PCA_MIN_ROWS

        return (f"leave it out: a PCA fitted or calibrated on fewer than {PCA_MIN_ROWS} rows is noise (without pca_fit "
                "the reference's rows both fit its directions and calibrate its errors, on rows each PCA was not fitted "
                "on), and input_drift still watches each feature")
    from monitor.detectors.probing.detector import PRADA_AUTO_MIN_ROWS

    # its model-stealing test (PRADA) is off below PRADA_AUTO_MIN_ROWS reference rows anyway
    # (prada: auto), so listed as it is it runs on this reference with its other signals (from 21
    # rows, its neighbour calibration's least); a smaller prada_window, the fix before, changed
    # nothing there
    if rows < 21:
        return "leave it out: its neighbour calibration needs 21 reference rows at least"
    return (f"list it in detectors: as {{kind: {kind}}} (its model-stealing test stays off below "
            f"{PRADA_AUTO_MIN_ROWS} reference rows; its other signals run); a detectors: list replaces the defaults, "
            "so name the other detectors to run in it too")


def _meets(requirement: str, ref: "Reference | None", output: "OutputSpec | None" = None) -> bool:
    if requirement == "none":
        return True
    if ref is None:
        return False
    if requirement == "inputs":
        return len(ref) > 0
    if requirement == "inputs2":
        return len(ref.numeric_names) >= 2 and len(ref) > 0
    if requirement == "scores":
        return ref.scores is not None
    if requirement == "labels":
        return ref.scores is not None and ref.labels is not None
    if requirement == "numeric":  # probing measures similarity on numeric features: none, it cannot be built
        scored = ref.scores is not None or (output is not None and not output.scored)
        return scored and len(ref.numeric_names) >= 1
    raise ValueError(f"unknown requirement {requirement!r}")


def default_detectors(output: "OutputSpec", reference: "Reference | None", *,
                      report: bool = True) -> tuple[DetectorConfig, ...]:
    """The default set for this output kind and reference; ``report``: log what it leaves out for
    what the reference lacks (off for a partial view of a reference, as ``monitor config check``
    reads raw data)."""
    out = []
    missing: dict[str, list[str]] = {}
    for kind, requirement, applies in DEFAULTS:
        if kind not in KINDS or not _applies(applies, output):
            continue
        if not _meets(requirement, reference, output):
            if reference is not None and report:  # reported by what the reference lacks first
                missing.setdefault(_lacks(requirement, reference, output), []).append(kind)
            continue
        too_small = None if reference is None else _too_small(kind, reference)
        if too_small is not None:
            log.warning("detector %r %s", kind, too_small)
            continue
        out.append(DetectorConfig(kind))
    embedding = _embedding_default(reference)
    if embedding is not None:
        out.append(embedding)
    for requirement, kinds in missing.items():
        # one numeric input is a model's shape, not a mistake: said, not warned about
        log.log(logging.INFO if requirement == "inputs2" else logging.WARNING,
                "detector%s %s left out of the defaults: the reference has %s. Fix: %s", "s" if len(kinds) > 1 else "",
                ", ".join(repr(k) for k in kinds), *_MISSING[requirement])
    return tuple(out)


def _embedding_default(reference: "Reference | None") -> DetectorConfig | None:
    """``pca_drift`` on the embedding (``space: embedding``) when the reference holds embeddings:
    they are given for nothing but a comparison with live ones, and a text or image model's
    numeric inputs say little of what it reads. Nothing is added on the decorator's path (the
    worker projects each batch); calls without an embedding are left out, said once. A reference
    with too few embedding rows leaves it out with a warning naming the fix."""
    emb = None if reference is None else getattr(reference, "embedding", None)
    if emb is None or "pca_drift" not in KINDS:
        return None
    from monitor.profile import embedding_pca_min_rows

    rows, width = emb.shape if getattr(emb, "ndim", 0) == 2 else (0, 0)
    if rows < embedding_pca_min_rows() or width < 2:
        log.warning("detector 'pca_drift' (space: embedding) is left out of the defaults: it needs reference embeddings "
                    "of at least 2 values in at least %d rows, the reference's have shape %s. Fix: a larger reference "
                    "with the embedding of each row", embedding_pca_min_rows(), tuple(getattr(emb, "shape", ())))
        return None
    return DetectorConfig("pca_drift", {"space": "embedding"})


def why_not_run(kind: str, output: "OutputSpec", reference: "Reference | None", listed: tuple[str, ...] | None) -> str:
    """Why a monitor runs no detector of ``kind``, with the fix: for a caller asking what it
    shows (``GET /api/v1/clients`` lists no client of a model without probing, which looked the
    same as a model with no suspicious client). ``listed``: the kinds of the config's
    ``detectors:``, None when it lists none (the defaults run). The same tests as
    :func:`default_detectors`, which logs the reason once at start."""
    if listed is not None:
        return f"{kind} is not in the config's detectors: list (it replaces the defaults); add {{kind: {kind}}} to it"
    applies = next((a for k, _, a in DEFAULTS if k == kind), None)
    requirement = next((r for k, r, _ in DEFAULTS if k == kind), "none")
    if applies is None:
        return f"{kind} is never a default: list it under detectors: (with the other detectors to run)"
    if not _applies(applies, output):
        what = " and ".join(_MODELS[a] for a in applies)
        if model_class(output) == IN:
            return (f"{kind} is a default for {what} only: it reads the model's scores, which output.kind: {output.kind} "
                    "does not have")
        return f"{kind} is a default for {what} only; list it under detectors: to run it on this model"
    if reference is None:
        return f"{kind} calibrates on a reference and none is configured. Fix: reference.path (held-out rows and the model's outputs on them)"
    if not _meets(requirement, reference, output):
        missing, fix = _MISSING[_lacks(requirement, reference, output)]
        return f"{kind} is left out of the defaults: the reference has {missing}. Fix: {fix}"
    too_small = _too_small(kind, reference)
    return f"{kind} {too_small}" if too_small else f"{kind} could not be built for this model (see the log at start)"


def _lacks(requirement: str, reference: "Reference", output: "OutputSpec | None" = None) -> str:
    """What a reference that fails ``requirement`` lacks first (a key of :data:`_MISSING`); a model
    whose outputs are not monitored never lacks scores."""
    unscored = output is not None and not output.scored
    return "scores" if requirement in ("labels", "numeric") and reference.scores is None and not unscored else requirement


def _too_small(kind: str, reference: "Reference") -> str | None:
    """Why ``kind`` is left out for the reference's size, with the fix (a sentence to follow its
    name); None when the reference is large enough."""
    need = _min_reference_rows(kind, reference)
    if len(reference) >= need:
        return None
    return (f"is left out of the defaults: it needs at least {need} reference rows, the reference has "
            f"{len(reference)}. Fix: a larger held-out reference, or {_smaller_fix(kind, len(reference))}")


#: what the reference lacks, and the fix, by requirement (a reference without them is legal: the
#: detectors that need them are left out, which the operator should hear of)
_MISSING: dict[str, tuple[str, str]] = {
    "scores": ("no model outputs (scores)",
               "build it with the model's outputs on the reference rows (monitor reference build --output-columns, "
               "or Reference.from_arrays(scores=...))"),
    "labels": ("no labels", "build it with the true labels of the reference rows (monitor reference build --label-column, "
               "or Reference.from_arrays(labels=...))"),
    "inputs": ("no rows", "build it from held-out rows of the model's inputs"),
    "inputs2": ("fewer than 2 numeric features (or no rows)", "nothing to do if the model has one numeric input: "
                "input_drift still watches it"),
    "numeric": ("no numeric features (its queries are compared on them)", "nothing to do if the model's inputs are all "
                "categorical; or list probing in detectors: with space: embedding and reference embeddings"),
}
