"""``monitor config check FILE``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from monitor.config import AgentConfig, ConfigError, ReferenceConfig
    from monitor.reference import Reference

__all__ = ["config"]


@click.group()
def config() -> None:
    """Work with monitor.yaml files."""


@config.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(paths: tuple[str, ...]) -> None:
    """Validate config files as `monitor serve` reads them; each is checked, exit 1 if any is invalid."""
    from monitor.config import ConfigError, ConfigErrors, load_config, model_named
    from monitor.config_files import file_problems

    failed = False
    for path in paths:
        blocked: tuple[frozenset[str], ...] = ()
        errors: tuple[ConfigError, ...] = ()
        this_failed = False  # this file's: an earlier file's failure kept the next valid ones' SUCCESS line
        try:
            agent = load_config(path)
        except ConfigErrors as errs:
            # every independent error of the file (as promtool tells a rule file's), then the rest
            # of it checked on the config read with those keys at their defaults
            for err in errs.errors:
                click.echo(f"FAILED: {err}", err=True)
            failed = this_failed = True
            if errs.partial is None:
                continue
            agent, blocked, errors = errs.partial, errs.blocked, tuple(errs.errors)
        except ConfigError as err:
            click.echo(f"FAILED: {err}", err=True)
            failed = True
            continue
        problems = _server_problems(agent, errors) + file_problems(agent) + _detector_problems(agent, blocked)
        if problems:
            for problem in problems:
                click.echo(f"FAILED: {path}: {problem}", err=True)
            failed = this_failed = True
        if this_failed:
            continue
        for m in agent.models:
            if m.detectors == ():  # accepted, and the model then exports no figure any rule could alert on
                click.echo(f"NOTE: {model_named(m.model)}: detectors: [] runs no detector: only the agent's own counters "
                           "(events, queue) are exported, and no model alert can fire. Fix: leave detectors out for "
                           "the defaults of the output kind, or list the ones you want")
        names = ", ".join(m.model for m in agent.models)
        click.echo(f"SUCCESS: {path}: {len(agent.models)} model(s): {names}")
    if failed:
        raise SystemExit(1)


def _server_problems(agent: object, errors_before: "tuple[ConfigError, ...]" = ()) -> list[str]:
    """The ``server`` section as ``monitor serve`` reads it (its ``proxy``, ``cloudevents`` and
    ``forward`` parts, tokens, limits), each independent error of it: without this a file that the
    sidecar refuses to start with passed the check. Token files and variables are read as the sidecar would: run the
    check where (or with the environment with which) the sidecar runs. ``errors_before``: the file's
    errors met before, whose keys were read as their defaults."""
    from monitor.config import ConfigError, ConfigErrors
    from monitor.server.settings import settings_from

    from monitor.server.sidecar import checkpoint_paths

    out: list[str] = []
    # the checkpoint files are the sidecar's too: two models sharing one (a top-level
    # checkpoint.path without {model} under models:) passed the check and stopped `monitor serve`
    for check in (lambda a: settings_from(a, errors_before=errors_before), checkpoint_paths):
        try:
            check(agent)  # type: ignore[arg-type]
        except ConfigError as err:  # settings_from's: each independent error (ConfigErrors)
            for e in err.errors if isinstance(err, ConfigErrors) else (err,):
                out.append(f"{e.key}: {e.problem}" + (f". Fix: {e.fix}" if e.fix else ""))
    if not out:
        proxy = settings_from(agent).proxy  # type: ignore[arg-type]
        if proxy.port is not None and not proxy.upstream:
            # passed here, and `monitor serve --config` (without --proxy) then refused to start
            out.append("server.proxy.port: needs a model server to forward to (server.proxy.upstream); `monitor serve` "
                       "refuses to start without one. Fix: set server.proxy.upstream (e.g. http://127.0.0.1:8080), or "
                       "remove server.proxy.port and start with --proxy URL --proxy-port PORT")
    return out


#: the end of the check's note on detectors it did not build on raw reference data
_RAW_NOT_BUILT = ("not built: the reference is raw data, which the agent profiles at start and the check does not "
                  "(the detectors that read only its scores and labels were built on them). Fix: build a profile with "
                  "'monitor reference build' and name it in reference.path (the agent then starts faster too) for a "
                  "check of every detector")

#: Detectors that read only the reference's scores and labels, never its profile: the check builds
#: them on raw reference data as it is read (see :func:`_raw_reference`), without profiling it.
_SCORES_ONLY = frozenset({"confidence", "calibration", "segments", "regression", "confidence_drift", "prediction_drift",
                          "accuracy_estimation"})


def _detector_problems(agent: AgentConfig, blocked: tuple[frozenset[str], ...] = ()) -> list[str]:
    """Every model's detectors, built as the agent builds them at start
    (:func:`monitor.detector_build.build_detectors`, which ``Monitor`` uses): a value a detector
    refuses (``gap_level: 2``, a ``positive_class`` that is no class, an ``atc_score`` of
    ``accuracy_estimation``, which needs the reference) passed the check and then kept ``monitor
    serve`` from loading the model. Its error names the entry's key, the detector's message and
    the fix, as the agent's start says it.

    The reference is loaded as the agent loads it when it is a saved profile (in moments) and
    the detectors are built on it; without ``reference.path`` they are built without one, as the
    agent would. Raw reference data (CSV, Parquet, arrays in an ``.npz``) is not profiled here (it
    can take minutes, see :func:`monitor.config_files.file_problems`); the detectors that read only its scores and
    labels (:data:`_SCORES_ONLY`: the confidence and prediction drift, the accuracy estimate, the
    segments' estimates) are built on them as read (:func:`_raw_reference`), so that scores the
    agent would refuse at start (of 2 columns for 3 classes, outside [0, 1], NaN; labels that are
    no class) fail the check with the agent's words; the others that need the reference are not
    built, and a note says which. A reference that cannot be read is told by
    :func:`monitor.config_files.file_problems`; the detectors that need it are not built then.

    ``blocked``: for each model, the sections in error it was read without
    (:class:`monitor.config.ConfigErrors`): when its detectors are built on one of them (its
    output, features, reference, detector list), they are not built, and a note says so (their
    errors would be those of the defaults standing in). Each entry's refusal is told, not the
    first only."""
    import dataclasses

    from monitor.config import ConfigError, model_named
    from monitor.detector_build import build_detectors
    from monitor.detectors.defaults import DEFAULTS
    from monitor.reference_view import input_schema

    no_reference = frozenset(kind for kind, requirement, _ in DEFAULTS if requirement == "none")
    out: list[str] = []
    for i, m in enumerate(agent.models):
        if i < len(blocked) and blocked[i]:
            click.echo(f"NOTE: {model_named(m.model)}: its detectors were not built: they are built on its "
                       f"{', '.join(sorted(blocked[i]))}, in error above. Fix: fix those errors, then check again")
            continue
        state, reference = _reference_for_check(m.reference.path)
        builds: list[tuple[Reference | None, frozenset[str] | None]] = [(reference, None)]
        if state == "raw":
            reference = _raw_reference(m.reference, m.output.classes)
            state = "unreadable" if reference is None else state
        if state == "raw":
            if m.detectors is None:  # the default set depends on what the reference holds
                # said as for listed detectors: "SUCCESS" alone read as all checked
                click.echo(f"NOTE: {model_named(m.model)}: the default detectors that need the reference's profile (input, "
                           f"output and data-quality drift, probing) {_RAW_NOT_BUILT}")
                builds = [(reference, _SCORES_ONLY)]
            else:
                left = sorted({d.kind for d in m.detectors if d.kind not in no_reference | _SCORES_ONLY})
                if left:
                    click.echo(f"NOTE: {model_named(m.model)}: {', '.join(left)} {_RAW_NOT_BUILT}")
                builds = [(reference, _SCORES_ONLY), (None, no_reference - _SCORES_ONLY)]
        elif state == "unreadable":
            if m.detectors is None:
                continue
            m = dataclasses.replace(m, detectors=tuple(d for d in m.detectors if d.kind in no_reference))
            builds = [(None, None)]
        for ref, kinds in builds:
            errors: list[ConfigError] = []  # each entry's refusal
            try:
                with _warnings_told(m.model):
                    build_detectors(m, ref, input_schema(m.schema, ref, m.output), kinds=kinds, errors=errors)
            except ConfigError as err:  # the reference's, which every entry reads
                errors.append(err)
            # one per key, as for the file's keys: the default detectors are all told at `detectors`,
            # and a reference two of them refuse alike read as two errors
            told: set[str] = set()
            for err in errors:
                if err.key not in told:
                    told.add(err.key)
                    out.append(f"{model_named(m.model)}: {err.key}: {err.problem}" + (f". Fix: {err.fix}" if err.fix else ""))
            if errors:
                break
    return out


class _Told(logging.Handler):
    """Echoes the ``monitor`` logger's warnings as the check's ``WARNING:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"WARNING: {record.getMessage()}", err=True)


@contextmanager
def _warnings_told(model: str) -> Iterator[None]:
    """What building a model's detectors warns of (a ``temperature_rows`` under
    ``min_labels_calibration``, a reference too short for a figure), said as ``WARNING: model
    'name': ...`` lines of the check. Why: without a handler Python printed them bare, without
    the model's name, run into the check's own ``SUCCESS`` line."""
    from monitor.log_model import model_named_in_log

    logger = logging.getLogger("monitor")
    handler = _Told(logging.WARNING)
    logger.addHandler(handler)
    try:
        with model_named_in_log(model):
            yield
    finally:
        logger.removeHandler(handler)


def _raw_reference(config: ReferenceConfig, classes: tuple[str, ...] = ()) -> Reference | None:
    """Raw reference data as the agent's start reads its scores and labels, without profiling it:
    an ``.npz``'s arrays as they are up to 5,000 rows (the agent calibrates on all of them then), its
    in-memory profile beyond (the agent's sample of 5,000, the same rows); for CSV and Parquet
    data whose outputs or labels are named (``reference.output_columns``, ``label_column``), its
    first 5,000 rows (the agent samples them from the whole file, which the check does not read);
    otherwise no rows, no scores and no labels, which the agent does not read from them either.
    None when the file cannot be read (:func:`monitor.config_files.file_problems` says why)."""
    from pathlib import Path

    import numpy as np

    from monitor.config_files import AGENT_SAMPLE_ROWS, TABLE_SUFFIXES
    from monitor.reference import Reference

    path = config.path
    if path is None:
        return None
    p = Path(path)
    if p.suffix.lower() in TABLE_SUFFIXES and (config.output_columns or config.label_column):
        return _table_head(config, classes)
    if p.suffix.lower() != ".npz":
        return Reference(np.empty((0, 0)), np.empty((0, 0), dtype=object), ())
    from monitor.profile import _read_npz
    from monitor.tensor_reference import holds_tensor

    try:
        x, names, cat, cat_names, scores, labels = _read_npz(p, tensor=True)
    except Exception:  # noqa: BLE001 - file_problems tells what is wrong with the file
        return None
    if len(x) > AGENT_SAMPLE_ROWS or holds_tensor(p):  # images: described as the agent describes them
        # the agent calibrates on a sample of these rows: judged on all of them, a bad row the sample
        # leaves out failed a config the agent runs (the final review); profiled as the agent does
        from monitor.profile import load_reference

        try:
            return load_reference(p)
        except Exception:  # noqa: BLE001 - the agent's own error is file_problems' to tell
            return None
    return Reference(x, cat, names, cat_names, scores, labels)


def _table_head(config: ReferenceConfig, classes: tuple[str, ...]) -> Reference | None:
    """The first rows of a CSV / Parquet reference with its configured column roles, as a
    :class:`Reference` whose classes are named as the agent's start names them
    (:func:`monitor.profile.load_reference`: ``output.classes`` when as many, else the columns)."""
    from monitor.config_files import read_reference_table
    from monitor.reference import Reference

    try:
        num_names, cat_names, chunks = read_reference_table(config)
        head = next(chunks, None)
    except Exception:  # noqa: BLE001 - file_problems tells what is wrong with the file
        return None
    if head is None:
        return None
    outputs = tuple(config.output_columns)
    names = (classes if len(classes) == len(outputs) else outputs) if len(outputs) > 1 else ()
    return Reference(head.numeric, head.categorical, num_names, cat_names, head.scores, head.labels, names,
                     vocabularies=head.vocabularies)


def _reference_for_check(path: str | None) -> tuple[str, Reference | None]:
    """``("none", None)`` without a reference; ``("profile", reference)`` for a saved profile,
    loaded as the agent loads it; ``("raw", None)`` for raw reference data, which the check does
    not profile; ``("unreadable", None)`` for a file :func:`monitor.config_files.file_problems` reports."""
    from pathlib import Path

    from monitor.profile import is_profile, load_reference

    if path is None:
        return "none", None
    p = Path(path)
    try:
        if not p.is_file():
            return "unreadable", None
        if p.suffix.lower() != ".npz" or not is_profile(p):
            return "raw", None
        return "profile", load_reference(p)
    except Exception:  # noqa: BLE001 - file_problems tells what is wrong with the file
        return "unreadable", None
