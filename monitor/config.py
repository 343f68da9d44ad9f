"""``monitor.yaml``: loading and validation with errors that name the file, the key and the fix.

A config describes one model (top-level keys) or several (``models:`` list, for a sidecar that
serves more than one). See ``examples/monitor.yaml`` for a commented example of every key.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import re
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from monitor.config_keys import SECTION_KEYS, unknown_key_fix
from monitor.derived import clashes, reserved_names
from monitor.schema import FEATURE_KINDS, OUTPUT_KINDS, TEXT_OUTPUT, Feature, OutputSpec, Schema

__all__ = [
    "ConfigError",
    "ConfigErrors",
    "ConfigReader",
    "receiver_url_problem",
    "url_unreadable",
    "MonitorConfig",
    "QueueConfig",
    "RulesConfig",
    "CheckpointConfig",
    "ReferenceConfig",
    "DetectorConfig",
    "ServerConfig",
    "AgentConfig",
    "load_config",
    "parse_duration",
]


_T = TypeVar("_T")
_OWN_FIX = re.compile(r"\.? Fix: ")


class ConfigError(ValueError):
    """A config is invalid. The message reads ``<file>: <key>: <what is wrong>. Fix: <how>``.

    A ``problem`` that already ends in a fix of its own (a detector's refusal wrapped as the
    entry's error: ``... (row 3). Fix: drop those rows``) has it moved into ``fix``, first, with
    ``fix`` after it as the other way out: the message read ``... Fix: drop those rows. Fix: list
    the detectors you want...``, two fixes where the format promises one."""

    def __init__(self, key: str, problem: str, fix: str = "", source: str = "<config>") -> None:
        m = _OWN_FIX.search(problem)
        if m is not None:
            own = problem[m.end():].rstrip(". ")
            problem = problem[:m.start()]
            fix = f"{own}; or {fix}" if fix else own
        self.key, self.problem, self.fix, self.source = key, problem, fix, source
        msg = f"{source}: {key}: {problem}" if key else f"{source}: {problem}"
        super().__init__(msg + (f". Fix: {fix}" if fix else ""))


class ConfigErrors(ConfigError):
    """Every independent error of one config, each a :class:`ConfigError` (``errors``, in the
    order the file is read, one per key). It reads as the first of them, the error the agent's start
    raised before: ``Monitor(...)``, ``monitor serve`` and a reload say that one; ``monitor config
    check`` prints each (as promtool does a rule file's), and checks the rest of the file on
    ``partial``, the config read with each key in error left at its default (None when the file
    could not be read as a whole). ``blocked``: for each model of ``partial``, the sections in
    error that its detectors are built on (``output``, the features, the reference, the detector
    list): they are not built then, as their errors would be the consequence of those."""

    def __init__(self, errors: list[ConfigError], partial: "AgentConfig | None" = None,
                 blocked: tuple[frozenset[str], ...] = ()) -> None:
        first = errors[0]
        super().__init__(first.key, first.problem, first.fix, first.source)
        self.errors = tuple(errors)
        self.partial = partial
        self.blocked = blocked


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
#: The largest integer a config key takes (counts, bytes: a 64-bit signed integer).
_INT64_MAX = 2**63 - 1
#: An HTTP header name (RFC 9110 token characters).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: ``${NAME}``, ``$NAME`` or ``$$`` in a value of ``rules.external_labels`` (Prometheus's
#: ``expand-external-labels``): how replicas sharing one config tell their alerts apart.
_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))")


def parse_duration(value: Any, key: str = "duration", source: str = "<config>", *, allow_zero: bool = False) -> float:
    """Seconds from a number or a Prometheus-style duration string (``90s``, ``1h30m``); above
    zero unless ``allow_zero``."""
    if isinstance(value, bool):
        raise ConfigError(key, f"must be a duration, got {value!r}", "write e.g. 30s, 5m or 1h", source)
    try:
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str) and _DURATION.match(value.strip()):
            seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value.strip()))
        else:
            seconds = math.nan
    except OverflowError:  # an integer past a float's range
        seconds = math.nan
    if not math.isfinite(seconds):  # .inf (and 400 digits of seconds) passed, and every windowed detector then failed
        raise ConfigError(key, f"must be a duration, got {value!r}", "write e.g. 30s, 5m or 1h", source)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(key, f"must be positive, got {value!r}", "use a duration above zero", source)
    return seconds


@dataclass(frozen=True)
class QueueConfig:
    capacity: int = 100_000
    #: Bytes of large inputs (arrays of 16 KiB or more) queued at most: the capacity alone does not
    #: bound memory for image-sized inputs.
    max_bytes: int = 256 * 1024 * 1024
    sample_rate: float = 1.0
    batch_max: int = 8192
    #: How often the idle worker drains (wakes earlier on flush/close). Larger drains amortise the
    #: detectors' per-batch work; nothing waits on it (the caller only appends to the queue).
    poll_s: float = 0.25
    #: At low traffic the worker lets events gather until ``batch_min`` wait or they have waited
    #: ``linger_s`` (see :class:`monitor.worker.Worker`): a drain costs the detectors a few dozen
    #: array operations whatever its size, so drains of a few hundred events cost about twice as
    #: much per event as drains of a thousand. Figures are then up to ``linger_s`` later.
    batch_min: int = 1024
    linger_s: float = 1.0
    #: Wall-clock seconds between detector exports while events flow, for readers of the store
    #: other than a scrape (a scrape makes the detectors export first, see
    #: ``Monitor.export_for_scrape``; rule ticks and flush() always export). An export costs a few
    #: hundred microseconds whatever the traffic: at low traffic, paying it every second would
    #: cost more than the events themselves.
    export_interval_s: float = 10.0


@dataclass(frozen=True)
class RulesConfig:
    files: tuple[str, ...] = ()
    interval_s: float = 15.0
    alertmanager_urls: tuple[str, ...] = ()
    webhook_urls: tuple[str, ...] = ()
    log_alerts: bool = True
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    #: ``rules.dashboard_url``: the Grafana the bundled dashboards are in, whose links the shipped
    #: packs' alerts carry (``dashboard_url`` annotation, :mod:`monitor.dashboards.links`); "" none
    dashboard_url: str = ""
    #: How alerts pending at a restart resume (Prometheus's ``--rules.alert.for-outage-tolerance``
    #: and ``--rules.alert.for-grace-period``; see :class:`monitor.rules.evaluator.RuleEvaluator`).
    for_outage_tolerance_s: float = 3600.0
    for_grace_period_s: float = 600.0


@dataclass(frozen=True)
class CheckpointConfig:
    path: str | None = None
    interval_s: float = 60.0


@dataclass(frozen=True)
class ReferenceConfig:
    path: str | None = None
    #: Rows (a file: the training set) the multivariate drift detector's PCA takes its directions
    #: from when ``path`` is raw reference data (see :class:`monitor.profile.PCABasis`).
    pca_fit: str | None = None
    #: Roles of raw CSV / Parquet reference columns, as ``monitor reference build`` takes them
    #: (``--output-columns``, ``--label-column``, ``--exclude``, ``--categorical``): without
    #: them every column of such a file is read as an input feature, the model's outputs and
    #: labels included. An ``.npz`` names its ``scores`` and ``labels`` arrays itself, and a saved
    #: profile was given its roles when it was built.
    output_columns: tuple[str, ...] = ()
    label_column: str | None = None
    exclude: tuple[str, ...] = ()
    categorical: tuple[str, ...] | None = None
    #: The free-text columns (``--text``): None finds them (:func:`monitor.text.is_free_text`),
    #: ``()`` reads none as text.
    text: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DetectorConfig:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    #: The entry's key path as the file spells it (``models[0].detectors[2]``; empty for one
    #: built in code): a detector that refuses its values when it is built is told at this key.
    key: str = field(default="", compare=False)


@dataclass(frozen=True)
class MonitorConfig:
    """Everything one :class:`~monitor.core.Monitor` needs. Build it from YAML with
    :func:`load_config`, or directly in code."""

    model: str = "default"
    schema: Schema = field(default_factory=Schema)
    output: OutputSpec = field(default_factory=OutputSpec)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    window_s: float = 3600.0
    segment_cap: int = 20
    #: Predictions with a request id held for their label at most (``labels.pending``); the oldest
    #: are forgotten beyond it (counted in ``monitor_labels_evicted_total``).
    labels_pending: int = 100_000
    #: Labels held for a prediction not seen yet at most (``labels.early``; 0: none), and how long
    #: each waits from when it came, on the agent's clock (``labels.early_wait``): see
    #: :class:`monitor.labels.LabelJoiner`. Also the ids of refused prediction rows remembered, whose
    #: labels count ``prediction_refused``.
    labels_early: int = 10_000
    labels_early_wait_s: float = 600.0
    detectors: tuple[DetectorConfig, ...] | None = None  # None: the defaults for the output kind
    rules: RulesConfig = field(default_factory=RulesConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    client_id_salt: str = ""
    raw_client_ids: bool = False
    seed: int = 0
    source: str = "<config>"


@dataclass(frozen=True)
class ServerConfig:
    addr: str = "127.0.0.1"
    port: int = 9108
    max_body_bytes: int = 10 * 1024 * 1024
    max_batch_events: int = 10_000
    write_token_file: str | None = None
    write_token_env: str | None = None
    metrics_token_file: str | None = None
    metrics_token_env: str | None = None
    client_header: str | None = None
    segment_header: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentConfig:
    models: tuple[MonitorConfig, ...]
    server: ServerConfig = field(default_factory=ServerConfig)
    source: str = "<config>"

    def model(self, name: str | None = None) -> MonitorConfig:
        if name is None:
            if len(self.models) != 1:
                names = ", ".join(m.model for m in self.models)
                raise ConfigError("models", f"the config defines {len(self.models)} models ({names})",
                                  "pass model=NAME to choose one", self.source)
            return self.models[0]
        for m in self.models:
            if m.model == name:
                return m
        raise ConfigError("model", f"no model named {name!r}", f"choose one of {', '.join(m.model for m in self.models)}", self.source)


def section_mapping(value: Any, key: str, section: str, source: str) -> dict[str, Any]:
    """``value`` (written at ``key``) as a mapping of ``section``'s keys (:data:`SECTION_KEYS`); a
    key unknown there is refused saying where it belongs, or the nearest key, or the allowed ones."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}", f"write {key}: followed by indented keys",
                          source)
    unknown = _unknown_keys(value, key, section, source)
    if unknown:
        raise unknown[0]
    return value


def _unknown_keys(value: dict[Any, Any], key: str, section: str, source: str) -> list[ConfigError]:
    """The keys of ``value`` (written at ``key``) that ``section`` does not have (:data:`SECTION_KEYS`),
    each refused saying where it belongs, or the nearest key, or the allowed ones."""
    allowed = SECTION_KEYS[section]
    return [ConfigError(f"{key}.{k}" if key else str(k), "unknown key", unknown_key_fix(str(k), section), source)
            for k in value if not isinstance(k, str) or k not in allowed]


# -- validation helpers ----------------------------------------------------------------------------
class ConfigReader:
    """Reads one config document's values, keeping each key's first error (:meth:`attempt`,
    :meth:`add`) so that every independent error of the document is told at once; the sidecar's
    settings (:mod:`monitor.server.settings`) read the ``server:`` section with it too."""

    def __init__(self, source: str) -> None:
        self.source = source
        #: the errors met so far (:meth:`attempt`), each key's first only
        self.errors: list[ConfigError] = []
        self._keys: set[str] = set()

    def error(self, key: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(key, problem, fix, self.source)

    def add(self, err: ConfigError) -> None:
        """Keep ``err`` unless its key has one already: a second error at a key is the first's
        consequence (``${URL}`` refused, then the same value refused as no URL)."""
        if err.key not in self._keys or not err.key:
            self._keys.add(err.key)
            self.errors.append(err)

    def attempt(self, read: Callable[[], _T], default: _T) -> _T:
        """``read()``, or ``default`` with its error kept (:meth:`add`): the rest of the file is read
        on, so that every independent error of it is told at once."""
        try:
            return read()
        except ConfigError as err:
            self.add(err)
            return default

    def mapping(self, value: Any, key: str, section: str) -> dict[str, Any]:
        """``value``, a mapping whose keys are those of ``section`` (:data:`SECTION_KEYS`): an
        unknown key is an error kept (:meth:`add`) and left out; ``{}`` when ``value`` is no mapping
        (its error kept too)."""
        if not isinstance(value, dict):
            return self.attempt(lambda: section_mapping(value, key, section, self.source), {})
        unknown = _unknown_keys(value, key, section, self.source)
        if not unknown:
            return value
        for err in unknown:
            self.add(err)
        allowed = SECTION_KEYS[section]
        return {k: v for k, v in value.items() if isinstance(k, str) and k in allowed}

    def integer(self, value: Any, key: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer >= {minimum}, got {value!r}", f"write a whole number, at least {minimum}")
        if value > _INT64_MAX:  # passed the check, then OverflowError in Monitor() (a gauge is a float)
            raise self.error(key, f"must be at most {_INT64_MAX}, got an integer of {len(str(value))} digits",
                             f"write a whole number from {minimum} to {_INT64_MAX}")
        return value

    def number(self, value: Any, key: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self.error(key, f"must be a number in [{lo}, {hi}], got {value!r}", f"write a number between {lo} and {hi}")
        return float(value)

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, got {value!r}", "quote the value")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}", "write true or false")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}", f"write {key}: [a, b]")
        return tuple(value)

    def duration(self, value: Any, key: str, *, allow_zero: bool = False) -> float:
        return parse_duration(value, key, self.source, allow_zero=allow_zero)


def _reference_columns(r: ConfigReader, ref_raw: dict[str, Any], k: Callable[[str], str],
                       base: ReferenceConfig) -> ReferenceConfig:
    """The column roles of a raw CSV / Parquet reference, checked against each other here (a
    column given two roles would be read twice); whether the file has them is the reference
    loader's to say, at start and in ``monitor config check``."""
    outputs = r.strings(ref_raw["output_columns"], k("reference.output_columns")) if "output_columns" in ref_raw else ()
    label = r.string(ref_raw["label_column"], k("reference.label_column")) if "label_column" in ref_raw else None
    exclude = r.strings(ref_raw["exclude"], k("reference.exclude")) if "exclude" in ref_raw else ()
    categorical = r.strings(ref_raw["categorical"], k("reference.categorical")) if "categorical" in ref_raw else None
    text = r.strings(ref_raw["text"], k("reference.text")) if "text" in ref_raw else None
    cfg = dataclasses.replace(base, output_columns=outputs, label_column=label, exclude=exclude, categorical=categorical,
                              text=text)
    given = [key for key in ("output_columns", "label_column", "exclude", "categorical", "text") if key in ref_raw]
    if given and base.path is None:
        raise r.error(k(f"reference.{given[0]}"), "needs reference.path (the raw reference data whose columns it names)",
                      f"add reference.path, or remove {given[0]}")
    roles = [("output_columns", c) for c in outputs] + ([("label_column", label)] if label else []) + [("exclude", c) for c in exclude]
    seen: dict[str, str] = {}
    for key, col in roles:
        if col in seen:
            raise r.error(k(f"reference.{key}"), f"column {col!r} is also under reference.{seen[col]}",
                          "give each column one role")
        seen[col] = key
    for col in categorical or ():
        if col in seen:
            raise r.error(k("reference.categorical"), f"column {col!r} is under reference.{seen[col]}, not an input feature",
                          "list only input columns under categorical")
    for col in text or ():
        if col in seen:
            raise r.error(k("reference.text"), f"column {col!r} is under reference.{seen[col]}, not an input feature",
                          "list only input columns under text")
        if col in (categorical or ()):
            raise r.error(k("reference.text"), f"column {col!r} is also under reference.categorical",
                          "list a free-text column under text, a column of categories under categorical")
    return cfg

def _expand_env(r: ConfigReader, key: str, value: str) -> str:
    """``value`` with ``${NAME}`` / ``$NAME`` replaced by the environment variable and ``$$`` by ``$``.

    Why: the replicas of one Deployment share one config, and their alerts, with the same labels,
    were one alert to Alertmanager: a replica whose condition cleared resolved it while another's
    still held (``external_labels: {replica: "${POD_NAME}"}`` keeps them apart). A variable that is
    not set is refused, naming it: left empty (Prometheus's choice) the replicas collide again."""
    def repl(m: re.Match[str]) -> str:
        if m.group(3):
            return "$"
        name = m.group(1) or m.group(2)
        if name not in os.environ:
            raise r.error(key, f"names the environment variable {name}, which is not set",
                          f"set {name} in the process's environment (in Kubernetes: env with valueFrom: "
                          "{fieldRef: {fieldPath: metadata.name}}), or write $$ for a literal $")
        return os.environ[name]

    return _ENV_REF.sub(repl, value)


#: ``${NAME}`` anywhere: outside ``rules.external_labels`` it was taken as the literal text
_ENV_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: where ``${NAME}`` is expanded (:func:`_expand_env`), at the top level or in a model of ``models:``
_ENV_EXPANDED = re.compile(r"^(?:models\[\d+\]\.)?rules\.external_labels\.[^.]+$")


def _refuse_env_outside_labels(r: ConfigReader, value: Any, key: str = "") -> None:
    """Refuse ``${NAME}`` in a value the agent does not expand: ``checkpoint: {path:
    "${STATE_DIR}/fraud.ckpt"}`` wrote to a folder literally named ``${STATE_DIR}`` under the
    config's, and an Alertmanager URL of ``http://${AM_HOST}:9093`` failed every send, without a
    word at start. Only ``rules.external_labels`` expands variables (:func:`_expand_env`)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_env_outside_labels(r, v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_env_outside_labels(r, v, f"{key}[{i}]")
    elif isinstance(value, str) and not _ENV_EXPANDED.match(key):
        m = _ENV_BRACED.search(value)
        if m is not None:  # kept (each such value is told), and the value read on as written
            r.add(r.error(key, f"names the environment variable {m.group(1)} (as {m.group(0)}), which the agent expands "
                               "only in rules.external_labels: here it would be taken as the literal text",
                          "write the value itself, or fill the file in before the agent reads it (e.g. "
                          "envsubst < monitor.yaml.in > monitor.yaml, in an initContainer)"))


#: Parameters that a whole-window detector and the segments detector must share, with the kinds
#: that take each and what two values would break: given to one only, the other takes it too.
_SHARED_PARAMETERS = (
    # each had its own default of 0.5: abstain_threshold: 0.7 on one made the whole window's
    # abstain rate and the segments' count different rows
    ("abstain_threshold", ("confidence", "segments"), "the whole window's abstain rate and the segments' would count different rows"),
    # the segments fitted ATC-NE with a prior of 2 whatever accuracy_estimation was given: a
    # segment's estimate was another estimator's than the whole window's
    ("atc_score", ("accuracy_estimation", "segments"), "the whole window's estimated accuracy and the segments' would be different estimators"),
    ("prior_weight", ("accuracy_estimation", "segments"), "the whole window's estimated accuracy and the segments' would be different estimators"),
)


def _shared_parameters(r: ConfigReader, dets: tuple[DetectorConfig, ...]) -> tuple[DetectorConfig, ...]:
    """Each of :data:`_SHARED_PARAMETERS` given to one of its detectors only is given to the other
    too; two different values are refused."""
    for name, kinds, breaks in _SHARED_PARAMETERS:
        given = [(d.key, d.params[name]) for d in dets if d.kind in kinds and d.params.get(name) is not None]
        if not given:
            continue
        (first_key, first), *others = given
        for key, value in others:
            if value != first:
                raise r.error(f"{key}.{name}", f"{value!r} is not {first_key}.{name} ({first!r}): {breaks}",
                              "give one value, on one of them (the other takes it)")
        dets = tuple(DetectorConfig(d.kind, {**d.params, name: first}, d.key)
                     if d.kind in kinds and d.params.get(name) is None else d for d in dets)
    return dets


def _detector_value(r: "ConfigReader", key: str, name: str, value: Any, default: Any) -> Any:
    """A detector parameter's config value, checked against the type of its default: a number
    where the default is one (a duration such as ``1h`` for the ``..._s`` ones, as ``window:``
    takes; a number written as text, e.g. YAML's ``1e6``, as that number), true or false where
    it is a flag. Others (names, lists, None defaults) are the detector's to check."""
    if value is None or default is inspect.Parameter.empty or default is None:
        return value
    if name == "segment_cap":  # as segments.cap (the detectors that need the reference are built only at start)
        return _segment_cap(r, _detector_value(r, key, "cap", value, default) if isinstance(value, str) else value, key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise r.error(key, f"must be true or false, got {value!r}", "write true or false")
        return value
    if name.startswith("min_") and isinstance(default, int):
        # a least count (rows, labels, evidence) below which a figure is left out: the detectors
        # take max(count, 1), so `min_rows: -3` was taken silently as 1
        count = _detector_value(r, key, "count", value, default) if isinstance(value, str) else value
        if isinstance(count, float) and count.is_integer():  # YAML's 1e3
            count = int(count)
        return r.integer(count, key, minimum=0)
    if not isinstance(default, (int, float)) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        if name.endswith("_s"):
            return r.duration(value, key)
        try:
            return float(value) if isinstance(default, float) or not value.strip().lstrip("+-").isdigit() else int(value)
        except ValueError:
            pass
    fix = "write a number of seconds or a duration such as 30s, 5m or 1h" if name.endswith("_s") else f"write a number, e.g. {default}"
    raise r.error(key, f"must be a number, got {value!r}", fix)


def max_segment_cap() -> int:
    """The largest ``segments.cap``: each per-segment metric (one series per segment) holds at most
    its catalog ``max_series`` series, and a cap of ``n`` segments writes ``n + 1`` (the rows beyond
    the cap go to ``other``). A larger cap was accepted, and the segments past the metrics' limit,
    ``other`` among them, were refused series by series (``monitor_series_refused_total``)."""
    from monitor import catalog

    return min(s.max_series for s in catalog.CATALOG.values() if s.labels == ("segment",)) - 1


def _segment_cap(r: "ConfigReader", value: Any, key: str) -> int:
    cap = r.integer(value, key)
    most = max_segment_cap()
    if cap > most:
        raise r.error(key, f"must be at most {most}, got {cap}: a per-segment metric holds at most {most + 1} series, "
                           f"the {most} segments and 'other' (the rows of every segment beyond the cap)",
                      f"write {key.rsplit('.', 1)[-1]}: {most} or less")
    return cap


#: The ``server:`` keys the sidecar validates itself (:func:`monitor.server.settings.settings_from`).
_SIDECAR_SERVER_KEYS = frozenset({"proxy", "cloudevents", "forward", "max_queued_events", "shutdown_timeout",
                                  "client_body_timeout", "worker_nice", "unmonitored_models"})
#: Sections of agent settings that a model of ``models:`` merges key by key with the shared ones at
#: the top level (the model's keys win): a model giving ``rules: {files: [...]}`` kept no shared
#: ``rules.alertmanager`` (its alerts reached nobody) and ``checkpoint: {path: ...}`` lost the shared
#: ``interval``. The model's own description (features, output, reference, detectors) is replaced.
_MERGED_SECTIONS = ("queue", "segments", "labels", "rules", "checkpoint", "probing")


def _with_shared(shared: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    merged = {**shared, **own}
    for key in _MERGED_SECTIONS:
        if isinstance(shared.get(key), dict) and isinstance(own.get(key), dict):
            merged[key] = _merged(shared[key], own[key])
    return merged


def _merged(shared: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``own`` over ``shared``, mappings in both merged the same way (``rules.external_labels``:
    a model's ``{team: x}`` kept the shared ``{cluster: eu}``)."""
    out = {**shared, **own}
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(shared.get(key), dict):
            out[key] = _merged(shared[key], value)
    return out


def _named_where_written(err: ConfigError, own: dict[str, Any], index: int) -> ConfigError:
    """``err`` of model ``index`` named at the key the file spells, when the value came from the
    shared top level: ``queue: {capacity: -1}`` beside ``models:`` was reported as
    ``models[0].queue.capacity``, a key the user looked for under models: and did not find."""
    prefix = f"models[{index}]."
    if not err.key.startswith(prefix):
        return err
    rest = err.key[len(prefix):]
    path = re.match(r"([A-Za-z_]+)(?:\.([A-Za-z_]+))?", rest)
    if path is None:
        return err
    section, key = path.groups()
    if section in own:
        mine = own[section]
        if not (section in _MERGED_SECTIONS and isinstance(mine, dict) and key is not None and key not in mine):
            return err  # the model's own value (or a merged mapping both write: named as the model's)
    name = own.get("model")
    who = f"model {name!r} ({prefix[:-1]})" if isinstance(name, str) else prefix[:-1]
    return ConfigError(rest, f"{err.problem} (the shared value, as {who} takes it)", err.fix.replace(prefix, ""),
                       err.source)


def _external_url(r: ConfigReader, value: Any, key: str,
                  fix: str = "write the address of a Prometheus that scrapes the agent, e.g. http://prometheus:9090",
                  check: Callable[[str], str | None] | None = None) -> str:
    """``rules.external_url``, the base of each alert's link: any value was taken (``agent:9090``,
    a number), and every alert then carried a link that opened nothing. ``rules.dashboard_url``
    (Grafana's address, ``check``: :func:`dashboard_url_problem`) alike."""
    if value in ("", None):
        return ""
    problem = (check or receiver_url_problem)(value) if isinstance(value, str) else f"{value!r} is not an http(s) URL"
    if problem is not None:
        raise r.error(key, problem, fix)
    # as Prometheus reads its --web.external-url (computeExternalURL): the slashes ending the path
    # trimmed, so that $externalURL, {{ externalURL }} and {{ pathPrefix }} render as there (with
    # "http://prometheus:9090/" they read "...9090/" and "/", and "{{ $externalURL }}/graph" "//graph")
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(value)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def _salt(r: ConfigReader, value: Any, key: str) -> str:
    """``probing.client_id_salt``, which the client ids are hashed with: a number was taken as its
    text, so YAML's ``0123`` (the octal 83) salted with "83", not the "0123" written."""
    if not isinstance(value, str):
        # not the value read quoted: YAML's 0123 is 83, and "83" is not the salt written
        raise r.error(key, f"must be a string, got {value!r}",
                      'quote the salt as written in the file (client_id_salt: "0123": unquoted, YAML reads digits as a '
                      "number, 0123 as the octal 83), or leave client_id_salt out for a random salt")
    return value


#: The shortest ``rules.interval`` taken: below it the agent would spend its CPU evaluating rules
#: (a tenth of a second is for tests and demos that want an alert within moments).
_MIN_RULE_INTERVAL_S = 0.1


def _channel_axis(r: ConfigReader, feature: dict[str, Any], kind: str, key: str) -> int | None:
    """A tensor feature's ``channel_axis``: an axis of the call's array (1 for ``(n, c, h, w)``,
    3 or -1 for ``(n, h, w, c)``), ``none`` for rows without channels, absent to recognise it."""
    value = feature.get("channel_axis")
    if value is None:
        return None
    if kind != "tensor":
        raise r.error(f"{key}.channel_axis", f"only a tensor feature has channels, and this one is kind: {kind}",
                      "remove channel_axis, or declare the feature kind: tensor (images, audio, sequences)")
    if value == "none":
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise r.error(f"{key}.channel_axis", f"must be an axis of the model's input array or none, got {value!r}",
                      "write channel_axis: 1 for images (n, c, h, w), channel_axis: 3 (or -1) for (n, h, w, c), or "
                      "channel_axis: none for rows without channels (axis 0 is the rows)")
    return value


def _parse_model(r: ConfigReader, raw: dict[str, Any], prefix: str, base_dir: Path,
                 shared: frozenset[str] = frozenset()) -> MonitorConfig:
    """``shared``: the keys of ``raw`` that came whole from the top level of a ``models:`` file.

    Each key (or group of keys that is read as one) is read on its own (:meth:`ConfigReader.attempt`):
    one in error is kept at its default and the rest is read on, so that :func:`parse_config` tells
    every independent error of a file; the order is the file's sections', as the first error was
    the only one told before."""

    def k(key: str) -> str:
        return f"{prefix}{key}"

    written = raw.get("model")
    # a name in error is read on as written, and "" (told as "the model", :func:`model_named`) when no string
    model = r.attempt(lambda: _model_name(r, raw, k), written if isinstance(written, str) else "")
    feats, feature_keys = _features(r, raw, k)
    output = _output(r, raw, k, feats, feature_keys)
    reference = r.attempt(lambda: _reference(r, raw, k, base_dir), ReferenceConfig())

    q_raw = r.mapping(raw.get("queue"), k("queue"), "queue")
    default_queue = QueueConfig()

    def queue_value(read: Callable[[], Any], field_name: str) -> Any:
        return r.attempt(read, getattr(default_queue, field_name))

    queue = QueueConfig(
        capacity=queue_value(lambda: r.integer(q_raw.get("capacity", 100_000), k("queue.capacity")), "capacity"),
        max_bytes=queue_value(lambda: r.integer(q_raw.get("max_bytes", 256 * 1024 * 1024), k("queue.max_bytes")),
                              "max_bytes"),
        sample_rate=queue_value(lambda: r.number(q_raw.get("sample_rate", 1.0), k("queue.sample_rate"), 0.0, 1.0),
                                "sample_rate"),
        batch_max=queue_value(lambda: r.integer(q_raw.get("batch_max", 8192), k("queue.batch_max")), "batch_max"),
        poll_s=queue_value(lambda: r.duration(q_raw.get("poll", 0.25), k("queue.poll")), "poll_s"),
        batch_min=queue_value(lambda: r.integer(q_raw.get("batch_min", 1024), k("queue.batch_min")), "batch_min"),
        linger_s=queue_value(lambda: r.duration(q_raw.get("linger", 1.0), k("queue.linger")), "linger_s"),
        export_interval_s=queue_value(lambda: r.duration(q_raw.get("export_interval", 10.0), k("queue.export_interval")),
                                      "export_interval_s"),
    )
    if queue.sample_rate == 0:
        r.add(r.error(k("queue.sample_rate"), "0 would monitor nothing", "use a rate in (0, 1]"))
        queue = dataclasses.replace(queue, sample_rate=default_queue.sample_rate)

    seg_raw = r.mapping(raw.get("segments"), k("segments"), "segments")
    segment_cap = r.attempt(lambda: _segment_cap(r, seg_raw.get("cap", 20), k("segments.cap")), 20)
    lab_raw = r.mapping(raw.get("labels"), k("labels"), "labels")
    labels_pending = r.attempt(lambda: r.integer(lab_raw.get("pending", 100_000), k("labels.pending")), 100_000)
    labels_early = r.attempt(lambda: r.integer(lab_raw.get("early", 10_000), k("labels.early"), minimum=0),
                             10_000)  # 0: none held
    labels_early_wait_s = r.attempt(lambda: r.duration(lab_raw.get("early_wait", 600.0), k("labels.early_wait")), 600.0)

    detectors = _detectors(r, raw, k, shared)
    rules = _rules(r, raw, k, base_dir)
    checkpoint = r.attempt(lambda: _checkpoint(r, raw, k, base_dir), CheckpointConfig())
    pr_raw = r.mapping(raw.get("probing"), k("probing"), "probing")
    seed = r.attempt(lambda: _seed(r, raw, k), 0)
    return MonitorConfig(
        model=model,
        schema=Schema(tuple(feats)),
        output=output,
        reference=reference,
        queue=queue,
        window_s=r.attempt(lambda: r.duration(raw.get("window", "1h"), k("window")), 3600.0),
        segment_cap=segment_cap,
        labels_pending=labels_pending,
        labels_early=labels_early,
        labels_early_wait_s=labels_early_wait_s,
        detectors=detectors,
        rules=rules,
        checkpoint=checkpoint,
        client_id_salt=r.attempt(lambda: _salt(r, pr_raw.get("client_id_salt", ""), k("probing.client_id_salt")), ""),
        raw_client_ids=r.attempt(lambda: r.boolean(pr_raw.get("raw_client_ids", False), k("probing.raw_client_ids")),
                                 False),
        seed=seed,
        source=r.source,
    )


def model_named(name: str) -> str:
    """A model as messages name it: ``model 'fraud-v3'``, or ``the model`` for a name in error that
    is no string (``model: 5``), which ``monitor config check`` reads the rest of the file on as ``""``."""
    return f"model {name!r}" if name else "the model"


def _model_name(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str]) -> str:
    model = raw.get("model", "default")
    if not isinstance(model, str) or not _NAME.match(model):
        raise r.error(k("model"), f"must be a name of letters, digits and _.:- (at most 100), got {model!r}", "e.g. model: fraud-v3")
    return model


def _features(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str]) -> tuple[list[Feature], list[str]]:
    """The input features (``features:`` or ``schema.features``), each entry's error kept and the
    entry left out; and the key of each, as the file spells it (``features[2]``: errors name it so,
    at its place in the file, the entries left out counted)."""
    # schema: either schema.features or a top-level features list
    features_raw = raw.get("features")
    features_key = "features"  # errors name the key as the file spells it
    schema_raw = r.mapping(raw.get("schema"), k("schema"), "schema")
    if features_raw is None:
        features_raw, features_key = schema_raw.get("features", []), "schema.features"
    if not isinstance(features_raw, list):
        r.add(r.error(k(features_key), "must be a list of features", "write - {name: age, kind: numeric}"))
        return [], []
    feats: list[Feature] = []
    keys: list[str] = []
    seen: set[str] = set()

    def feature(i: int, f: Any) -> Feature:
        fk = k(f"{features_key}[{i}]")
        if isinstance(f, str):
            f = {"name": f}
        # no mapping: its error alone (a name then missing would be its consequence)
        f = r.mapping(f, fk, "features[]") if isinstance(f, dict) else section_mapping(f, fk, "features[]", r.source)
        name = r.string(f.get("name"), f"{fk}.name")
        kind = f.get("kind", f.get("type", "numeric"))
        if kind not in FEATURE_KINDS:
            raise r.error(f"{fk}.kind", f"must be numeric, categorical, text or tensor, got {kind!r}",
                          "write kind: numeric, kind: categorical (codes, labels), kind: text (free text) or kind: tensor "
                          "(images, audio, sequences: the whole input)")
        if name in seen:
            raise r.error(f"{fk}.name", f"duplicate feature name {name!r}", "give every feature a unique name")
        seen.add(name)
        return Feature(name, kind, _channel_axis(r, f, kind, fk))

    failed = len(r.errors)
    for i, f in enumerate(features_raw):
        got = r.attempt(lambda: feature(i, f), None)
        if got is not None:
            feats.append(got)
            keys.append(k(f"{features_key}[{i}]"))
    if len(r.errors) > failed:  # the checks of the whole list would read it without the entries in error
        return feats, keys
    clash = next(iter(clashes(Schema(tuple(feats)))), None)
    if clash is not None:
        at = next(i for i, f in enumerate(feats) if f.name == clash.name)
        r.add(r.error(f"{keys[at]}.name", clash.problem, clash.fix))
    elif len(feats) > 1 and any(f.kind == "tensor" for f in feats):
        tensor = next(f.name for f in feats if f.kind == "tensor")
        r.add(r.error(k(features_key), f"feature {tensor!r} is a tensor (the call's whole input, one array whose axis 0 "
                                       f"is the rows) and cannot share the inputs with {len(feats) - 1} other feature(s)",
                      "list the tensor feature alone; watch the model's other inputs under another model name, or pass "
                      "a grouping value as segment="))
    return feats, keys


def _output(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str], feats: list[Feature],
            feature_keys: list[str]) -> OutputSpec:
    """The ``output`` section, each key's error kept (:meth:`ConfigReader.add`) and the key left at its
    default; its kind in error, the keys read against the kind are not checked (their errors would
    be the wrong kind's), and the default output stands."""
    out_raw = r.mapping(raw.get("output"), k("output"), "output")
    kind = out_raw.get("kind", "probabilities")
    kind_known = kind in OUTPUT_KINDS
    if not kind_known:
        r.add(r.error(k("output.kind"), f"must be one of {', '.join(OUTPUT_KINDS)}, got {kind!r}",
                      "probabilities for predict_proba, logits for raw scores, multilabel for one independent probability "
                      "per label, text for one generated text per row (its answers monitored as the text feature output), "
                      "none for outputs that are not monitored (boxes, rankings: the inputs are)"))
    classes_raw = r.attempt(lambda: _classes(r, out_raw, k), [])
    if kind_known and kind in ("none", "text") and classes_raw:
        # the classes name score columns, and kind: none reads no outputs: a config meaning one kind
        # and saying another is told, not left to monitor nothing it expected
        r.add(r.error(k("output.classes"), f"names the columns of the model's scores, and output.kind: {kind} reads no "
                      "scores", "remove classes (the inputs alone are monitored), or set the output.kind the model's "
                      "answers have" if kind == "none" else "remove classes (the answers are monitored as the text "
                      "feature output)"))
        classes_raw = []
    if kind_known and kind in ("probabilities", "logits") and len(classes_raw) == 1:
        # one score column is P(positive) of a binary model, read as the columns [negative, positive]:
        # the one name took the negative column (the other was learned as "1"), so that the rows the
        # model scored as that class were counted as the other one, and labels naming it were inverted
        r.add(r.error(k("output.classes"), f"names one class ({classes_raw[0]!r}), and a classifier has two at least: "
                      "a model's one score column is P(positive) of a binary model, its classes [negative, positive]",
                      f"list both classes in column order, the positive one second (e.g. classes: [not_{classes_raw[0]}, "
                      f"{classes_raw[0]}])"))
        classes_raw = []
    if kind == "text":
        _text_output_names(r, feats, feature_keys)
    samples_axis = r.attempt(lambda: r.boolean(out_raw.get("samples_axis", False), k("output.samples_axis")), False)
    quantiles_raw = out_raw.get("quantiles", [])
    if not isinstance(quantiles_raw, list) or not all(isinstance(q, (int, float)) and not isinstance(q, bool) for q in quantiles_raw):
        r.add(r.error(k("output.quantiles"), f"must be a list of quantile levels, got {quantiles_raw!r}",
                      "write quantiles: [0.05, 0.5, 0.95]"))
        quantiles_raw = []
    if not kind_known:
        return OutputSpec()
    if samples_axis and kind not in ("probabilities", "logits"):
        r.add(r.error(k("output.samples_axis"), f"ensemble members per row apply to probabilities or logits, not to "
                      f"kind: {kind}", "remove samples_axis, or send the members' mean"))
        samples_axis = False
    classes = tuple(str(c) for c in classes_raw)
    try:
        return OutputSpec(kind, classes, samples_axis, tuple(float(q) for q in quantiles_raw))
    except ValueError as err:  # the quantiles' (the kind and samples_axis are checked above)
        r.add(r.error(k("output.quantiles"), str(err), "list increasing levels in (0, 1) around 0.5 with kind: regression"))
        return OutputSpec(kind, classes, samples_axis)


def _text_output_names(r: ConfigReader, feats: list[Feature], feature_keys: list[str]) -> None:
    """``output.kind: text`` monitors the answers as the text feature ``output``: an input of that
    name, or of one of its columns, would share its columns (output.length of the prompt and of the
    answer alike), each side read as the other. The first such input is told, at its name."""
    reserved = reserved_names(OutputSpec("text"))
    at = next((i for i, f in enumerate(feats) if f.name in reserved), None)
    if at is None:
        return
    name = feats[at].name
    r.add(r.error(f"{feature_keys[at]}.name",
                  f"{name!r} is the text feature output.kind: text monitors the model's answers as (output.length, "
                  "output.oov_share...)" if name == TEXT_OUTPUT else f"{name!r} is a column of the text feature "
                  "output.kind: text monitors the model's answers as (output.length, output.oov_share...)",
                  f"rename this input feature (e.g. {TEXT_OUTPUT}_in), sending its values under that key"))


def _classes(r: ConfigReader, out_raw: dict[str, Any], k: Callable[[str], str]) -> list[Any]:
    classes_raw = out_raw.get("classes", [])
    if hasattr(classes_raw, "tolist") and not isinstance(classes_raw, (str, bytes)):
        classes_raw = classes_raw.tolist()  # a model's classes_ as it is (numpy): Python ints and strings
    elif isinstance(classes_raw, tuple):
        classes_raw = list(classes_raw)
    if isinstance(classes_raw, list):
        # list(clf.classes_) holds numpy scalars (np.int64 is no int): refused, the code the fix gives
        classes_raw = [c.item() if hasattr(c, "item") and not isinstance(c, (str, int)) else c for c in classes_raw]
        # a model fitted on float labels (y of 0.0 and 1.0) has classes_ [0., 1.]: the classes 0 and 1
        classes_raw = [int(c) if isinstance(c, float) and c.is_integer() else c for c in classes_raw]
    if not isinstance(classes_raw, list) or not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in classes_raw):
        booleans = isinstance(classes_raw, list) and any(isinstance(c, bool) for c in classes_raw)
        # YAML reads bare yes/no, true/false, on/off as booleans: the class names were meant
        raise r.error(k("output.classes"), f"must be a list of class names, got {classes_raw!r}",
                      'quote names YAML reads as true/false: classes: ["no", "yes"]' if booleans else "write classes: [cat, dog]")
    if len(set(map(str, classes_raw))) != len(classes_raw):
        raise r.error(k("output.classes"), "class names must be unique", "remove the duplicate")
    return classes_raw


def _reference(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str], base_dir: Path) -> ReferenceConfig:
    ref_raw = r.mapping(raw.get("reference"), k("reference"), "reference")
    ref_path = ref_raw.get("path")
    if ref_path is not None:
        ref_path = str((base_dir / r.string(ref_path, k("reference.path"))))
    pca_fit = ref_raw.get("pca_fit")
    if pca_fit is not None:
        if ref_path is None:
            raise r.error(k("reference.pca_fit"), "needs reference.path (the reference whose PCA it fits)",
                          "add reference.path, or remove pca_fit")
        pca_fit = str(base_dir / r.string(pca_fit, k("reference.pca_fit")))
    return _reference_columns(r, ref_raw, k, ReferenceConfig(ref_path, pca_fit))


def _detectors(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str],
               shared: frozenset[str]) -> tuple[DetectorConfig, ...] | None:
    """The ``detectors`` list (None: the defaults), each entry's error kept and the entry left out."""
    det_raw = raw.get("detectors")
    if det_raw is None:
        return None
    if not isinstance(det_raw, list):
        r.add(r.error(k("detectors"), "must be a list of {kind: ..., <params>}", "write - kind: confidence"))
        return None
    from monitor.detectors.registry import KINDS, parameter_defaults

    def entry(i: int, d: Any) -> DetectorConfig:
        dk = k(f"detectors[{i}]")
        if isinstance(d, str):
            d = {"kind": d}
        if not isinstance(d, dict) or "kind" not in d:
            raise r.error(dk, "must be a mapping with a kind", "write - kind: drift")
        dkind = d["kind"]
        if not isinstance(dkind, str) or dkind not in KINDS:  # a list or a mapping here: TypeError (unhashable)
            close = difflib.get_close_matches(str(dkind), KINDS, n=1)
            raise r.error(f"{dk}.kind", f"unknown detector kind {dkind!r}",
                          f"did you mean {close[0]!r}?" if close else f"known kinds: {', '.join(sorted(KINDS)) or 'none'}")
        params = {key: v for key, v in d.items() if key != "kind"}
        defaults = parameter_defaults(dkind)
        known = tuple(defaults)
        for name in params:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                raise r.error(f"{dk}.{name}", f"detector {dkind!r} has no parameter {name!r}",
                              f"did you mean {close[0]!r}?" if close else f"its parameters: {', '.join(known)}")
            params[name] = _detector_value(r, f"{dk}.{name}", name, params[name], defaults[name])
        # the key a detector's own refusal is told at when it is built: the shared list's, when shared
        return DetectorConfig(dkind, params, f"detectors[{i}]" if "detectors" in shared else dk)

    dets = [d for d in (r.attempt(lambda: entry(i, d), None) for i, d in enumerate(det_raw)) if d is not None]
    return r.attempt(lambda: _shared_parameters(r, tuple(dets)), tuple(dets))


def _rules(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str], base_dir: Path) -> RulesConfig:
    rules_raw = r.mapping(raw.get("rules"), k("rules"), "rules")
    # named by absolute path, resolved against the config's folder: the file is the `file` label of
    # MonitorRuleReloadFailed, and one file spelt `team.yml` by a model and `/etc/monitor/team.yml`
    # by another (a sidecar started with a relative --config) paged once per spelling
    files = tuple(os.path.abspath(base_dir / f)
                  for f in r.attempt(lambda: r.strings(rules_raw.get("files", []), k("rules.files")), ()))
    if rules_raw.get("packs"):
        files = r.attempt(lambda: _packs(r, rules_raw["packs"], k), ()) + files
    # a file named twice (a.yml and ./a.yml, a pack also by its path) is loaded once, as Prometheus keys
    # groups by cleaned file path and name: twice, each of its alerts was listed and counted twice
    unique: dict[str, str] = {}
    for f in files:
        unique.setdefault(os.path.realpath(f), f)
    files = tuple(unique.values())
    ext = r.attempt(lambda: _external_labels(r, rules_raw, k), {})
    d = RulesConfig()
    rules = RulesConfig(
        files=files,
        interval_s=r.attempt(lambda: r.duration(rules_raw.get("interval", "15s"), k("rules.interval")), d.interval_s),
        alertmanager_urls=r.attempt(lambda: r.strings(rules_raw.get("alertmanager", []), k("rules.alertmanager")), ()),
        webhook_urls=r.attempt(lambda: r.strings(rules_raw.get("webhook", []), k("rules.webhook")), ()),
        log_alerts=r.attempt(lambda: r.boolean(rules_raw.get("log", True), k("rules.log")), True),
        external_labels=dict(ext),
        external_url=r.attempt(lambda: _external_url(r, rules_raw.get("external_url", ""), k("rules.external_url")), ""),
        dashboard_url=r.attempt(lambda: _external_url(r, rules_raw.get("dashboard_url", ""), k("rules.dashboard_url"),
                                                      "write the root URL of the Grafana that has the bundled dashboards "
                                                      "(grafana/dashboards/), e.g. https://grafana.example.com",
                                                      dashboard_url_problem), ""),
        for_outage_tolerance_s=r.attempt(lambda: r.duration(rules_raw.get("for_outage_tolerance", "1h"),
                                                            k("rules.for_outage_tolerance")), d.for_outage_tolerance_s),
        for_grace_period_s=r.attempt(lambda: r.duration(rules_raw.get("for_grace_period", "10m"), k("rules.for_grace_period"),
                                                        allow_zero=True), d.for_grace_period_s),
    )
    if rules.interval_s < _MIN_RULE_INTERVAL_S:
        # taken: every evaluation scrapes each series and runs every rule, 1,000 times a second at 1ms
        r.add(r.error(k("rules.interval"), f"{rules_raw.get('interval')!r} is below {_MIN_RULE_INTERVAL_S:g}s: each "
                      "evaluation reads every series and runs every rule, and the agent would spend its CPU on nothing else",
                      f"write 15s (the default), or at least {_MIN_RULE_INTERVAL_S * 1000:g}ms"))
        rules = dataclasses.replace(rules, interval_s=d.interval_s)
    for key, urls in (("rules.alertmanager", rules.alertmanager_urls), ("rules.webhook", rules.webhook_urls)):
        for url in urls:  # each list under its own key: a webhook's mistake was reported as rules.alertmanager's
            problem = receiver_url_problem(url)
            if problem is not None:
                r.add(r.error(k(key), problem, "write e.g. http://127.0.0.1:9093"))
                rules = dataclasses.replace(rules, **{"alertmanager_urls" if key == "rules.alertmanager" else
                                                      "webhook_urls": ()})
                break
    return rules


def _packs(r: ConfigReader, packs: Any, k: Callable[[str], str]) -> tuple[str, ...]:
    from monitor.shipped import rule_pack_files

    try:
        return rule_pack_files(r.strings(packs, k("rules.packs")))
    except ValueError as err:
        raise r.error(k("rules.packs"), str(err), "write e.g. packs: [core, confidence], or packs: [all]") from None


def _external_labels(r: ConfigReader, rules_raw: dict[str, Any], k: Callable[[str], str]) -> dict[str, str]:
    ext = rules_raw.get("external_labels", {}) or {}
    if not isinstance(ext, dict) or not all(isinstance(a, str) and isinstance(b, str) for a, b in ext.items()):
        raise r.error(k("rules.external_labels"), "must map label names to string values", "write external_labels: {cluster: eu-1}")
    for name in ext:  # Alertmanager refuses an alert with another label name (400 invalid label set): every alert
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            raise r.error(k("rules.external_labels"), f"{name!r} is not a label name (letters, digits and _, not "
                          "starting with a digit): Alertmanager would refuse every alert",
                          f"write e.g. {re.sub(r'[^a-zA-Z0-9_]', '_', name).lstrip('0123456789') or 'cluster'}: ...")
    return {name: _expand_env(r, k(f"rules.external_labels.{name}"), value) for name, value in ext.items()}


def _checkpoint(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str], base_dir: Path) -> CheckpointConfig:
    ck_raw = r.mapping(raw.get("checkpoint"), k("checkpoint"), "checkpoint")
    ck_path = ck_raw.get("path")
    if ck_path is None and "interval" in ck_raw:  # a state never written, while the config says how often
        raise r.error(k("checkpoint.interval"), "needs checkpoint.path (where the state is written): without it "
                      "nothing is saved", "add checkpoint.path (e.g. state/{model}.ckpt), or remove interval")
    if ck_path is not None:
        # a trailing "/" says "a folder" (checkpoint.model_path: <model>.ckpt inside it) even before
        # it exists; joining with base_dir dropped it, so `path: state/` with several models was
        # refused as a shared file, and with one model the checkpoint was a file named "state"
        ck_path = str(base_dir / r.string(ck_path, k("checkpoint.path"))) + ("/" if ck_path.endswith("/") else "")
    return CheckpointConfig(
        path=ck_path,
        interval_s=r.duration(ck_raw.get("interval", "60s"), k("checkpoint.interval")),
    )


def _seed(r: ConfigReader, raw: dict[str, Any], k: Callable[[str], str]) -> int:
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        # negative seeds are refused here, not by the first detector built from this one (numpy's
        # generators take none), whose error sent the user to the detector's own seed
        raise r.error(k("seed"), f"must be a whole number, 0 or more, got {seed!r}", "write seed: 0")
    return seed


def _parse_server(r: ConfigReader, raw: Any) -> ServerConfig:
    """The ``server`` section, each key in error kept (:meth:`ConfigReader.attempt`) and left at its default."""
    s = r.mapping(raw, "server", "server")
    d = ServerConfig()

    def port() -> int:
        value = s.get("port", 9108)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise r.error("server.port", f"must be a TCP port 0-65535, got {value!r}", "write port: 9108")
        return value

    def text(key: str, fix: str) -> str | None:
        value = s.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise r.error(f"server.{key}", f"must be a non-empty string, got {value!r}", fix)
        return value

    def header(key: str, fix: str) -> str | None:
        value = s.get(key)
        if value is not None and (not isinstance(value, str) or not _HEADER_NAME.match(value)):
            raise r.error(f"server.{key}", f"must be one HTTP header name, got {value!r}", fix)
        return value

    the_port = r.attempt(port, d.port)
    # a number or a list here crashed `monitor config check` and `monitor serve` with a traceback
    tokens = {key: r.attempt(lambda: text(key, fix), None) for key, fix in (
        ("write_token_file", "write the path of a file holding the tokens, one per line"),
        ("metrics_token_file", "write the path of a file holding the tokens, one per line"),
        ("write_token_env", "write the name of one environment variable, e.g. MONITOR_WRITE_TOKEN"),
        ("metrics_token_env", "write the name of one environment variable, e.g. MONITOR_METRICS_TOKEN"))}
    client_header = r.attempt(lambda: header("client_header", "write e.g. client_header: X-Api-Key (no spaces), or leave "
                                             "it out to use the peer address"), None)
    segment_header = r.attempt(lambda: header("segment_header", "write e.g. segment_header: X-Tenant (no spaces), or "
                                               "leave it out: the proxied and CloudEvents rows then have no segment"), None)
    return ServerConfig(
        addr=r.attempt(lambda: r.string(s.get("addr", "127.0.0.1"), "server.addr"), d.addr),
        port=the_port,
        max_body_bytes=r.attempt(lambda: r.integer(s.get("max_body_bytes", 10 * 1024 * 1024), "server.max_body_bytes"),
                                 d.max_body_bytes),
        max_batch_events=r.attempt(lambda: r.integer(s.get("max_batch_events", 10_000), "server.max_batch_events"),
                                   d.max_batch_events),
        client_header=client_header,
        segment_header=segment_header,
        extra={k: v for k, v in s.items() if k in _SIDECAR_SERVER_KEYS},
        **tokens,
    )


def url_unreadable(err: ValueError) -> str:
    """The problem of a URL that :func:`urllib.parse.urlsplit` refuses (its only refusal is of
    the brackets of an IPv6 host), in words that say how such a host is written."""
    return (f"the URL cannot be read ({err}): an IPv6 host is written in brackets, before the port "
            "(http://[::1]:9093)")


def dashboard_url_problem(url: str) -> str | None:
    """What is wrong with a Grafana root URL (``rules.dashboard_url``, ``monitor rules export
    --dashboard-url``), or None: it must be an http(s) URL with a host, and it is written into the
    alerts' ``dashboard_url`` templates, before ``/d/<uid>?var-model=...``, so neither template
    braces nor a query or fragment of its own."""
    from urllib.parse import urlsplit

    problem = receiver_url_problem(url)
    if problem is None and ("{{" in url or "}}" in url):
        problem = "the URL holds a template's braces"
    if problem is None and (urlsplit(url).query or urlsplit(url).fragment or url.endswith(("?", "#"))):
        problem = "the URL has a query or fragment: give Grafana's root URL (the links add /d/<uid>?var-model=...)"
    return problem


def receiver_url_problem(url: str) -> str | None:
    """What is wrong with an Alertmanager or webhook URL, or None. A URL without a host
    (``http://``) or with a port that is no number was taken, and every alert then failed to send
    five times, at run time; the URL is not repeated once it has a scheme (it may carry a password)."""
    from urllib.parse import urlsplit

    if not url.startswith(("http://", "https://")):
        return f"{url!r} is not an http(s) URL"
    try:
        parts = urlsplit(url)
    except ValueError as err:  # an unclosed IPv6 bracket: a bare ValueError out of load_config
        return url_unreadable(err)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or beyond 65535
        port_ok = False
    if not parts.hostname:
        return "the URL names no host"
    if not port_ok:
        return f"the URL has no valid port ({parts.netloc.rpartition(':')[2]!r}): a port is 1 to 65535"
    return None


def parse_config(raw: Any, source: str = "<config>", base_dir: str | Path = ".") -> AgentConfig:
    """Validate an already-decoded config document.

    Raises
    ------
    ConfigErrors
        Every independent error of the document (:class:`ConfigErrors`), read as the first one.
    """
    r = ConfigReader(source)
    partial: AgentConfig | None = None
    blocked: list[frozenset[str]] = []
    try:
        partial = _parse_agent(r, raw, source, Path(base_dir), blocked)
    except ConfigError as err:  # one that stops the reading of the whole document
        r.add(err)
    except Exception:
        # reading on past an error met a value no check before expected (the detector kind that
        # was a list, 7bf39c5): the errors kept are the file's, said as before, not a traceback
        if not r.errors:
            raise
    if r.errors:
        raise ConfigErrors(r.errors, partial, tuple(blocked))
    assert partial is not None
    return partial


#: The sections of a model whose errors keep its detectors from being built (:class:`ConfigErrors`'s
#: ``blocked``): they are built on them, and would be built on the defaults standing for them.
_DETECTORS_READ = frozenset({"features", "schema", "output", "reference", "detectors"})


def _blocked(errors: list[ConfigError], prefix: str) -> frozenset[str]:
    """The sections of :data:`_DETECTORS_READ` that ``errors`` (of the model whose keys start with
    ``prefix``) are in. An entry of ``detectors`` in error does not count (it is left out, and the
    other entries are built), but the list itself does, and so does a shared abstain threshold."""
    out = set()
    for err in errors:
        key = err.key[len(prefix):] if err.key.startswith(prefix) else err.key
        section = re.match(r"[A-Za-z_]*", key).group()  # type: ignore[union-attr]
        if section == "detectors" and key != "detectors" and not key.endswith(".abstain_threshold"):
            continue
        if section in _DETECTORS_READ:
            out.add(section)
    return frozenset(out)


def _parse_agent(r: ConfigReader, raw: Any, source: str, base: Path, blocked: list[frozenset[str]]) -> AgentConfig:
    """The document read as :func:`parse_config` reads it, each error kept in ``r``; ``blocked``
    gets each model's :func:`_blocked` sections."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        section_mapping(raw, "", "", source)  # raises: no document to read on
    top = r.mapping(raw, "", "")
    _refuse_env_outside_labels(r, top)
    if "models" in top:
        models_raw = top["models"]
        if not isinstance(models_raw, list) or not models_raw:
            raise r.error("models", "must be a non-empty list of model configs", "write models: [- model: a ...]")
        shared = {k: v for k, v in top.items() if k not in ("models", "server")}
        models = []
        for i, m in enumerate(models_raw):
            if isinstance(m, dict) and "server" in m:  # difflib's nearest key was 'seed'
                r.add(r.error(f"models[{i}].server", "the sidecar's settings are shared by every model",
                              "move server: to the top level of the file, beside models:"))
                m = {key: v for key, v in m.items() if key != "server"}
            if m is not None and not isinstance(m, dict):  # an empty entry (-) is a model of the defaults, as before
                r.attempt(lambda: section_mapping(m, f"models[{i}]", "models[]", source), {})
                continue
            m = r.mapping(m, f"models[{i}]", "models[]")
            own = ConfigReader(source)
            _read_model(own, _with_shared(shared, m), f"models[{i}].", base, models, blocked, frozenset(shared) - set(m))
            for err in own.errors:
                r.add(_named_where_written(err, m, i))
        names = [m.model for m in models if _NAME.match(m.model)]  # a name in error is told at its key
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            r.add(r.error("models", f"duplicate model names {sorted(dup)}", "give every model a unique name"))
    else:
        own = ConfigReader(source)
        models = []
        _read_model(own, {k: v for k, v in top.items() if k != "server"}, "", base, models, blocked)
        for err in own.errors:
            r.add(err)
    return AgentConfig(tuple(models), _parse_server(r, top.get("server")), source)


def _read_model(own: ConfigReader, raw: dict[str, Any], prefix: str, base: Path, models: list[MonitorConfig],
                blocked: list[frozenset[str]], shared: frozenset[str] = frozenset()) -> None:
    """Read one model with its own reader ``own`` into ``models`` (and the sections its detectors
    may not be built on, :func:`_blocked`, into ``blocked``), its errors kept in ``own``: an error
    that stops its reading is one of them; a failure other than a ConfigError met while reading on
    past an error is left out (see :func:`parse_config`), one with none kept is raised."""
    try:
        models.append(_parse_model(own, raw, prefix, base, shared))
        blocked.append(_blocked(own.errors, prefix))
    except ConfigError as err:  # not kept by the model's reader: none is read past it
        own.add(err)
    except Exception:
        if not own.errors:
            raise


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate ``monitor.yaml``; relative paths inside resolve against its folder."""
    from monitor.config_yaml import read_config_document

    p = Path(path)
    return parse_config(read_config_document(p), str(p), p.parent)
