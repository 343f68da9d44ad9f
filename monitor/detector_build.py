"""A model's detectors built from its config, with a detector's refusal told as a config error.

``Monitor(...)`` (so ``monitor serve`` at start) and ``monitor config check`` both build the
detectors here, so that the check builds them exactly as the agent does and both say the same
thing about a value a detector refuses. The detectors validate their own parameters (a range such
as ``gap_level`` in (0.5, 1), a class name that must be a class); their ``ValueError`` or
``TypeError`` is turned into a :class:`monitor.config.ConfigError` here, in one place, naming the
entry's key path (``models[0].detectors[2].gap_level``, ``detectors[2]`` in a one-model file), the
detector's own message and a fix, as the config loader's errors read. Before, the check did not
build the detectors that need the reference, and the agent's start failed with the bare
constructor text ("segments: gap_level must be in (0.5, 1), got 2"), which named no key and no fix.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from monitor.config import ConfigError, DetectorConfig, MonitorConfig

if TYPE_CHECKING:
    from monitor.reference import Reference
    from monitor.schema import Schema

__all__ = ["build_detectors", "detector_error"]

log = logging.getLogger("monitor")


def build_detectors(cfg: MonitorConfig, reference: "Reference | None", schema: "Schema", *,
                    kinds: "frozenset[str] | None" = None, errors: "list[ConfigError] | None" = None) -> list[Any]:
    """The detectors of ``cfg`` (its listed ones, else the defaults for its output kind and
    ``reference``), built on ``reference`` as the agent builds them.

    Parameters
    ----------
    cfg
        The model's config.
    reference
        The reference as loaded from ``reference.path`` (or given in code); None without one.
    schema
        The input features the monitor reads (:func:`monitor.reference_view.input_schema`).
    kinds
        Build only the detectors of these kinds (None: all). ``monitor config check`` builds
        those that read only the reference's scores and labels on raw reference data, which it
        does not profile; the others' entries keep their place, so an error names the entry's key
        and reads as the agent's start says it.
    errors
        When given, an entry's refusal is appended to it and the next entries are built
        (``monitor config check`` tells each); otherwise the first is raised, as at start.

    Raises
    ------
    ConfigError
        When a detector refuses its values (or the reference): see :func:`detector_error`.
    """
    from monitor.detectors.context import DetectorContext
    from monitor.detectors.defaults import default_detectors
    from monitor.detectors.registry import create
    from monitor.reference_view import InvalidReferenceScores, detector_reference, positional_names

    from monitor.schema import with_answers

    # a generative model's answers are one more text feature the detectors see (output.length...)
    schema = with_answers(schema, cfg.output)
    ctx = DetectorContext(schema, cfg.output, window_s=cfg.window_s, segment_cap=cfg.segment_cap, seed=cfg.seed)
    listed = cfg.detectors is not None
    # a partial build (the config check's, on raw data read without its profile) does not know what
    # the agent's reference will hold: what the defaults leave out is the agent's to say
    reference = positional_names(reference, schema)
    specs = cfg.detectors if cfg.detectors is not None else default_detectors(cfg.output, reference,
                                                                              report=kinds is None)
    try:
        det_reference = detector_reference(reference, cfg.output)
    except InvalidReferenceScores as err:
        raise ConfigError("reference.path", err.problem, err.fix, cfg.source) from err
    _check_score_columns(cfg, det_reference, specs, kinds)
    if kinds is None:
        for problem in _kind_mismatches(schema, reference):
            log.warning("model %r: %s", cfg.model, problem)
    unread = _unread_reference_features(schema, reference)
    everything = bool(unread) and len(unread) == len(reference.numeric_names) + len(reference.categorical_names)
    fix = _unread_fix(reference, unread) if unread else ""

    def blind(d: Any) -> bool:
        """Whether the detector of entry ``d`` would never see a row of the configured features."""
        if not unread:
            return False
        if d.kind == "input_drift":
            return everything and "features" not in d.params
        if d.kind == "pca_drift":
            return d.params.get("space", "input") == "input" and bool(set(unread) & set(reference.numeric_names))
        # probing reads the rows' numeric columns as the reference's, by position: with fewer of
        # them every update raised (its whole batch lost, a traceback each time), as pca_drift's
        return (d.kind == "probing" and d.params.get("space", "input") == "input"
                and _numeric_columns(schema, reference) != len(reference.numeric_names))

    if unread and kinds is None and any(d.kind in _INPUT_KINDS for d in specs):
        left_out = list(dict.fromkeys(d.kind for d in specs if blind(d)))
        log.warning("model %r: features the reference has and the config's features do not list: %s (the config lists "
                    "%s). They never arrive: input drift does not watch them (else read as \"no data\", drift for "
                    "good)%s. Fix: %s", cfg.model, ", ".join(unread), ", ".join(schema.names),
                    f"; left out: {', '.join(left_out)}" if left_out and cfg.detectors is None else "", fix)
    def built(i: int, d: Any) -> Any:
        """Entry ``i``'s detector; None for a default left out."""
        params = dict(d.params)
        _check_outputs_read(cfg, d, i)
        _check_multilabel_fit(cfg, d, i)
        if blind(d):
            if cfg.detectors is None:
                return None  # a default: left out, as the warning above says
            lacking = ", ".join(n for n in unread if d.kind == "input_drift" or n in reference.numeric_names)
            raise ConfigError(d.key or f"detectors[{i}]",
                              f"{d.kind}: it reads the reference's features by name, and the config's features "
                              f"({', '.join(schema.names)}) lack {lacking}: it would never see a row",
                              f"{fix}, or remove this entry", cfg.source)
        if unread and d.kind == "input_drift" and "features" not in params:
            params["features"] = [n for n in (*reference.numeric_names, *reference.categorical_names) if n not in unread]
        if d.kind == "probing":  # client ids leave the process hashed with the config's salt
            params.setdefault("client_id_salt", cfg.client_id_salt or None)
            params.setdefault("raw_client_ids", cfg.raw_client_ids)
        try:
            return create(d.kind, reference=det_reference, params=params, context=ctx)
        except ConfigError:
            raise
        except (ValueError, TypeError, ImportError) as err:  # ImportError: an optional extra (alibi-detect) missing
            if isinstance(err, TypeError) and not any(k in str(err) for k in d.params):
                raise  # a bug in the detector, not a value of the config: not to be blamed on the entry
            raise detector_error(cfg, i, d, err, listed=listed, has_reference=reference is not None) from err

    detectors = []
    for i, d in enumerate(specs):
        if kinds is not None and d.kind not in kinds:
            continue
        try:
            det = built(i, d)
        except ConfigError as err:
            if errors is None:
                raise
            errors.append(err)
            continue
        if det is not None:
            detectors.append(det)
    if not any(getattr(det, "kind", "") == "segments" for det in detectors):
        # rows folded into "other" are counted once per model: by the segments detector, else by
        # the first detector that slices by segment and can count them
        for det in detectors:
            count = getattr(det, "count_segment_overflow", None)
            if count is not None and count():
                break
    return detectors


#: Detectors that read each row as one answer (argmax, softmax confidence, the class mix, labels of
#: one class) or as a regression value: a multi-label model's rows are neither.
_SINGLE_ANSWER = frozenset({"confidence", "calibration", "segments", "confidence_drift", "prediction_drift",
                            "accuracy_estimation", "probing", "regression", "output_drift"})


def _check_multilabel_fit(cfg: MonitorConfig, d: Any, index: int) -> None:
    """Refuse a listed detector that misreads the model's outputs: a single-answer detector on a
    multi-label model (its argmax of independent labels, its confidence of a row that sums to 2,
    would be figures of another model), or ``multilabel`` on a model of another output kind."""
    multilabel = cfg.output.is_multilabel
    if multilabel and d.kind in _SINGLE_ANSWER:
        raise ConfigError(d.key or f"detectors[{index}]",
                          f"{d.kind} reads each row as one answer, and output.kind: multilabel rows hold one independent "
                          "probability per label", "remove this entry: the multilabel detector watches each label's rate, "
                          "cardinality and drift", cfg.source)
    if d.kind == "multilabel" and not multilabel:
        raise ConfigError(d.key or f"detectors[{index}]",
                          f"multilabel reads rows of independent label probabilities, and output.kind is {cfg.output.kind}",
                          "set output.kind: multilabel if each column is an independent probability, else remove this entry",
                          cfg.source)


def _check_outputs_read(cfg: MonitorConfig, d: Any, index: int) -> None:
    """Refuse a listed detector that reads scores (:data:`monitor.detectors.defaults.READS_SCORES`)
    on a model whose outputs are no scores (``output.kind: none`` or ``text``): built, it would
    wait for scores that never come and show nothing, as if the model were fine."""
    from monitor.detectors.defaults import INPUT_SIDE, READS_SCORES

    if cfg.output.scored or d.kind not in READS_SCORES:
        return
    kind = cfg.output.kind
    watchers = ", ".join(INPUT_SIDE)
    if kind == "none":
        fix = (f"remove this entry ({watchers} watch the inputs), or set the output.kind the model's answers have; "
               "for a figure of each answer (its length, its number of boxes) use output.kind: regression with "
               "watch(..., outputs=lambda out: [len(o) for o in out])")
    else:  # text: the answers' length, words and vocabulary are watched already
        fix = (f"remove this entry: {watchers} watch the inputs and the answers' descriptors (output.length, "
               "output.oov_share...), and a generated text has no scores to read")
    raise ConfigError(d.key or f"detectors[{index}]",
                      f"{d.kind} reads the model's outputs (scores, predictions or values), and output.kind: {kind} "
                      + ("monitors the inputs only" if kind == "none" else "has none (its answers are monitored as the "
                         "text feature output: input_drift and data_quality name output.length, output.oov_share...)"),
                      fix, cfg.source)


#: Detectors that read the inputs as the reference's features (by name; probing by position).
_INPUT_KINDS = frozenset({"input_drift", "pca_drift", "probing"})


def _unread_fix(reference: "Reference", unread: tuple[str, ...]) -> str:
    """What to do about reference features the configured ones do not list: a reference whose
    columns kept numpy's default names (``f0``.., from an array without names) is to be named."""
    names = tuple(reference.numeric_names)
    if names and names == tuple(f"f{i}" for i in range(len(names))):
        return ("name the reference's columns as the config's features, in the inputs' order "
                "(Reference.from_arrays(X, numeric_names=[...]), a file with a header row, or a profile built with "
                "'monitor reference build DATA --feature-names ...'), or list as many features as its columns")
    return "list them under features, or build the reference without them"


def _numeric_columns(schema: "Schema", reference: "Reference") -> int:
    """How many numeric columns live batches have: the numeric features and the text features'
    descriptors (``oov_share`` with the reference's vocabulary)."""
    from monitor.derived import input_columns

    return len(input_columns(schema, reference.vocabularies, _channels(schema, reference)))


def _channels(schema: "Schema", reference: "Reference") -> int | None:
    """The channels the reference describes the schema's tensor feature by (None without one)."""
    from monitor.tensor import channels_in

    return channels_in(schema.tensor_names[0], reference.numeric_names) if schema.tensor_names else None


def _kind_mismatches(schema: "Schema", reference: "Reference | None") -> list[str]:
    """The configured features the reference holds as another kind, each with its fix. Why: a
    feature configured ``kind: text`` that the reference held as categorical (a CSV profile built
    before free text was read as text, or with ``--categorical review``) was monitored on neither
    side, its live descriptors compared with nothing and the reference's categories never met,
    and no message said so."""
    if reference is None or not schema.features:
        return []
    from monitor.derived import TextDerived

    categorical, text = set(reference.categorical_names), set(reference.text_names)
    out = []
    for f in schema.features:
        if f.kind == "text" and f.name in categorical:
            out.append(f"feature {f.name!r} is kind: text in the config, but the reference holds it as categorical: its "
                       f"live texts are read as {', '.join(TextDerived(f.name).columns)}, which the reference lacks, "
                       "and its categories are never met, so the text is not monitored. Fix: rebuild the reference "
                       f"reading it as text ('monitor reference build DATA --text {f.name}', reference.text: [{f.name}] "
                       f"next to a raw CSV / Parquet reference.path, or Reference.from_arrays(df, text_names=[{f.name!r}])), "
                       "or declare it kind: categorical")
        elif f.kind != "text" and f.name in text:
            out.append(f"feature {f.name!r} is kind: {f.kind} in the config, but the reference holds it as free text "
                       f"({', '.join(TextDerived(f.name, frozenset()).columns)}), so its live values are compared with nothing. "
                       f"Fix: declare it kind: text, or rebuild the reference with it categorical ('monitor reference "
                       f"build DATA --categorical {f.name}', reference.categorical, or Reference.from_arrays(df, "
                       f"categorical_names=[{f.name!r}]))")
    return out


def _unread_reference_features(schema: "Schema", reference: "Reference | None") -> tuple[str, ...]:
    """The reference's features that the configured ``features`` do not list: inputs are read by
    that schema, so these never arrive. (Without configured features the schema is the
    reference's own, and nothing is left out.)"""
    if reference is None or not schema.features:
        return ()
    from monitor.derived import input_columns

    read = set(schema.names) | set(input_columns(schema, reference.vocabularies, _channels(schema, reference), every=True))
    return tuple(n for n in (*reference.numeric_names, *reference.categorical_names) if n not in read)


#: Detectors that compare the reference's class scores column by column with live ones.
_PER_CLASS = frozenset({"confidence_drift", "prediction_drift", "accuracy_estimation"})


def _check_score_columns(cfg: MonitorConfig, reference: "Reference | None", specs: Any, kinds: "frozenset[str] | None") -> None:
    """Refuse reference scores with another number of columns than ``output.classes`` names, when
    a detector that compares them class by class with live scores is built. Why: such a reference
    (scores of 4 classes for 3, or 2 that happen to sum to one) was accepted, and then the
    confidence drift and the accuracy estimate passed over every live batch (its width is not the
    reference's: no figure ever) and the prediction drift compared classes that are not the live
    ones, with nothing said. One score column (``(n,)`` or ``(n, 1)``) is P(positive) of a binary model."""
    classes = cfg.output.classes
    scores = None if reference is None else reference.scores
    if scores is None or not classes or cfg.output.kind not in ("probabilities", "logits") or cfg.output.samples_axis:
        return
    if not any(d.kind in _PER_CLASS and (kinds is None or d.kind in kinds) for d in specs):
        return
    shape = getattr(scores, "shape", None)
    if shape is None or len(shape) not in (1, 2):
        return  # another shape: the detectors' own errors say it
    one_column = len(shape) == 1 or int(shape[1]) == 1  # (n,) or a CSV's single output column (n, 1)
    width = 2 if one_column else int(shape[1])
    if width == len(classes):
        return
    given = "one column (read as P(positive) of a binary model)" if one_column else f"{width} columns"
    raise ConfigError("reference.path", f"the reference's scores have {given}, but output.classes names {len(classes)} classes "
                           f"({', '.join(classes)}): the detectors that compare them class by class with live scores "
                           f"({', '.join(sorted(_PER_CLASS))}) would compare nothing (live rows of another width are "
                           "passed over) or the wrong classes",
                      "give the model's outputs on the reference rows with one column per class of output.classes, in "
                      "its order (or correct output.classes)", cfg.source)


def detector_error(cfg: MonitorConfig, index: int, entry: DetectorConfig, err: Exception, *, listed: bool = True,
                   has_reference: bool = True) -> ConfigError:
    """``err``, raised by the detector of ``entry`` (the ``index``-th of ``cfg``) when it was
    built, as a :class:`ConfigError` at the entry's key path.

    The key names the parameter when the message names one of the entry's keys (the first it
    names: "min_labels and min_labels_calibration must be at least 2" is told at ``min_labels``);
    else the entry itself. The problem is the detector's message unchanged (tests and people
    search for it); the fix says what to write. ``listed`` is False for a detector the config did
    not list (the defaults for the output kind), told at ``detectors`` with its kind.
    """
    message = str(err) or type(err).__name__
    if not listed:
        return ConfigError("detectors", f"the default detector {entry.kind!r} cannot be built: {message}",
                           "list the detectors you want under detectors: (e.g. - kind: confidence), leaving this one "
                           "out, or give a reference it can use", cfg.source)
    entry_key = entry.key or f"detectors[{index}]"
    named = [(m.start(), name) for name in entry.params
             if (m := re.search(rf"(?<![A-Za-z0-9_]){re.escape(str(name))}(?![A-Za-z0-9_])", message))]
    if named:
        name = min(named)[1]
        from monitor.detectors.registry import parameter_defaults

        default = parameter_defaults(entry.kind).get(name)
        otherwise = (f"remove {name}: to use its default ({default!r})" if default is not None
                     else f"remove {name}: to leave it unset, as by default")
        fix = f"give {name} under {entry_key} (kind: {entry.kind}) a value the message allows, or {otherwise}"
        return ConfigError(f"{entry_key}.{name}", message, fix, cfg.source)
    if "reference" in message:
        fix = (f"build the reference with what the message asks for ('monitor reference build') and name it in "
               f"reference.path, or remove the entry {entry_key} (kind: {entry.kind})")
        if not has_reference:
            fix = f"the model has no reference: {fix}"
    else:
        fix = f"change the values of {entry_key} (kind: {entry.kind}) as the message says, or remove the entry"
    return ConfigError(entry_key, message, fix, cfg.source)
