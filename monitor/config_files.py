"""The files a config points at, checked as the agent's start reads them.

One place for both readers of a config that must not disagree about its files: ``monitor config
check`` (which also parses the rule files) and a sidecar's reload of ``monitor.yaml`` (whose rule
files are reloaded, and reported, on their own). A file the start would refuse is a problem here,
so that a check or a reload that says success is never followed by a restart that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.config import model_named

if TYPE_CHECKING:
    from monitor.config import AgentConfig, MonitorConfig, ReferenceConfig

__all__ = ["AGENT_SAMPLE_ROWS", "TABLE_SUFFIXES", "file_problems", "read_reference_table", "reference_problems",
           "rule_file_problems"]

#: the suffixes of reference data read as a table of named columns (CSV, Parquet)
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq")

#: rows of raw reference data the agent keeps to calibrate on (``monitor reference build
#: --keep-rows``' default, which the in-memory profile of raw data uses); up to it, all of them
AGENT_SAMPLE_ROWS = 5000


def file_problems(agent: AgentConfig) -> list[str]:
    """Every model's rule files and reference files (:func:`rule_file_problems`,
    :func:`reference_problems`), each problem one line naming the model, the key and the fix."""
    out: list[str] = []
    for m in agent.models:
        out += rule_file_problems(m) + reference_problems(m)
    return out


def rule_file_problems(m: MonitorConfig) -> list[str]:
    """Every file of ``rules.files`` must load: a missing or invalid one stops the agent."""
    from monitor.rules.loader import parse_rule_file

    out: list[str] = []
    for f in m.rules.files:
        if not Path(f).is_file():
            what = "it is a folder, not a file" if Path(f).is_dir() else "it does not exist"
            out.append(f"{model_named(m.model)}: rules.files: {f}: cannot read rule file: {what}. Fix: correct the path (a relative "
                       "one resolves against the config file's folder); for the shipped packs, name them under rules.packs "
                       "instead (e.g. packs: [core]; `monitor rules packs` lists them), which a pip install carries too")
            continue
        _, errors = parse_rule_file(f)
        out.extend(f"{model_named(m.model)}: rules.files: {e}" for e in errors[:5])
    return out


def reference_problems(m: MonitorConfig) -> list[str]:
    """The reference (``reference.path``) must exist, and so must ``reference.pca_fit``; an
    ``.npz`` must load as the agent loads it (a profile is read; raw arrays are read and checked
    but not profiled: :func:`monitor.profile.check_npz_reference`); a CSV / Parquet table's header
    and first rows must carry the configured column roles. Other raw data is not read through (a
    large CSV takes minutes); ``monitor reference show`` reads a profile."""
    from monitor.profile import ProfileError

    out: list[str] = []
    ref, fit = m.reference.path, m.reference.pca_fit
    if fit is not None and not Path(fit).is_file():
        out.append(f"{model_named(m.model)}: reference.pca_fit: {fit} does not exist. Fix: correct the path (a relative "
                   "one resolves against the config file's folder)")
    elif fit is not None and ref is not None and Path(ref).is_file():
        from monitor.profile import check_pca_fit_target

        try:
            check_pca_fit_target(ref)
        except ProfileError as err:
            out.append(f"{model_named(m.model)}: {err}")
    if ref is None:
        return out
    if not Path(ref).is_file():
        what = "is a folder, not a file" if Path(ref).is_dir() else "does not exist"
        out.append(f"{model_named(m.model)}: reference.path: {ref} {what}. Fix: build one with "
                   "'monitor reference build' or correct the path")
        return out
    from monitor.profile import check_column_roles_target

    rc = m.reference
    try:
        check_column_roles_target(ref, output_columns=rc.output_columns, label_column=rc.label_column,
                                  exclude=rc.exclude, categorical=rc.categorical, text=rc.text)
    except ProfileError as err:
        out.append(f"{model_named(m.model)}: {err}")
    suffix = Path(ref).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        out.extend(f"{model_named(m.model)}: {problem}" for problem in _table_problems(rc))
    elif suffix == ".npz":
        # one that cannot be read passed the check, then `monitor serve` never became ready
        from monitor.profile import check_npz_reference

        try:
            check_npz_reference(ref)
        except ProfileError as err:  # its message names what is wrong and the fix
            out.append(f"{model_named(m.model)}: reference.path: {err}")
        except Exception as err:  # noqa: BLE001 - whatever stops the agent's start stops the check
            out.append(f"{model_named(m.model)}: reference.path: {ref} cannot be read ({type(err).__name__}: {err}). "
                       "Fix: build it with 'monitor reference build'")
    return out


def read_reference_table(config: ReferenceConfig) -> Any:
    """:func:`monitor.profile.read_table` of a CSV / Parquet reference with its configured column
    roles, as the agent's start reads it (chunks of the rows the agent keeps)."""
    from monitor.profile import read_table

    return read_table(config.path, output_columns=config.output_columns, label_column=config.label_column,
                      exclude=config.exclude, categorical=config.categorical, chunk_rows=AGENT_SAMPLE_ROWS,
                      progress=False, text=config.text, head_vocabulary=True)


def _table_problems(config: ReferenceConfig) -> list[str]:
    """What the agent's start would refuse in a CSV / Parquet reference's header and first rows:
    a configured column role naming no column, a ``pca_fit`` file lacking the reference's numeric
    features (their outputs and labels read as features unless named)."""
    from monitor.profile import ProfileError, check_pca_fit_columns

    try:
        num_names, _, _ = read_reference_table(config)
    except ProfileError as err:
        return [f"reference.path: {err}"]
    except Exception as err:  # noqa: BLE001 - whatever stops the agent's start stops the check (and the reload)
        return [f"reference.path: {config.path} cannot be read ({type(err).__name__}: {str(err)[:200]}). Fix: write it "
                "again, or point reference.path at the reference data"]
    if config.pca_fit is None or not Path(config.pca_fit).is_file():
        return []
    try:
        check_pca_fit_columns(config.pca_fit, num_names)
    except ProfileError as err:
        return [f"reference.pca_fit: {err}"]
    return []
