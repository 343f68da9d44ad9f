"""The keys of every section of ``monitor.yaml``, in one place, and what to say of a key that is not one.

:mod:`monitor.config` (the models' sections) and :mod:`monitor.server.settings` (``server:`` and its
parts) both check a section's keys against :data:`SECTION_KEYS`: a key unknown where it is written
but known in another section is told where it belongs (``upstream`` written under ``server:``
instead of ``server.proxy:``), a near miss gets a did-you-mean, in every section alike.
"""

from __future__ import annotations

import difflib

__all__ = ["SECTION_KEYS", "MODEL_KEYS", "unknown_key_fix"]

#: The keys of one model's config: the top level of a one-model file, an entry of ``models:``.
MODEL_KEYS = frozenset({"model", "schema", "features", "output", "reference", "queue", "window", "segments", "labels",
                        "detectors", "rules", "checkpoint", "probing", "seed"})

#: The keys each section takes, by its path: ``""`` the top level, ``[]`` one entry of a list.
SECTION_KEYS: dict[str, frozenset[str]] = {
    "": MODEL_KEYS | {"models", "server"},
    "models[]": MODEL_KEYS,
    "schema": frozenset({"features"}),
    "features[]": frozenset({"name", "kind", "type", "channel_axis"}),
    "output": frozenset({"kind", "classes", "samples_axis", "quantiles"}),
    "reference": frozenset({"path", "pca_fit", "output_columns", "label_column", "exclude", "categorical", "text"}),
    "queue": frozenset({"capacity", "max_bytes", "sample_rate", "batch_max", "batch_min", "poll", "linger",
                        "export_interval"}),
    "segments": frozenset({"cap"}),
    "labels": frozenset({"pending", "early", "early_wait"}),
    "rules": frozenset({"packs", "files", "interval", "alertmanager", "webhook", "log", "external_labels", "external_url",
                        "dashboard_url", "for_outage_tolerance", "for_grace_period"}),
    "checkpoint": frozenset({"path", "interval"}),
    "probing": frozenset({"client_id_salt", "raw_client_ids"}),
    "server": frozenset({"addr", "port", "max_body_bytes", "max_batch_events", "write_token_file", "write_token_env",
                         "metrics_token_file", "metrics_token_env", "client_header", "segment_header", "proxy", "cloudevents", "forward",
                         "max_queued_events", "shutdown_timeout", "client_body_timeout", "worker_nice",
                         "unmonitored_models"}),
    "server.proxy": frozenset({"upstream", "port", "timeout", "routes", "oip_output", "max_connections", "engine",
                               "process"}),
    "server.proxy.routes[]": frozenset({"path", "model", "inputs", "outputs", "request_id"}),
    "server.cloudevents": frozenset({"max_pending", "max_pending_bytes", "pending_ttl", "require_token"}),
    "server.forward": frozenset({"unix", "udp", "receive_buffer_bytes"}),
}


def _sections_of(name: str) -> list[str]:
    """The sections (mappings, not list entries) whose keys include ``name``, the top level's
    ``models[]`` twin left out; each as its full key path (``rules.interval``)."""
    return [f"{section}.{name}" if section else name for section, keys in SECTION_KEYS.items()
            if name in keys and not section.endswith("[]")]


def unknown_key_fix(name: str, section: str) -> str:
    """The fix for ``name``, unknown in ``section`` (a key of :data:`SECTION_KEYS`): where it
    belongs when another section takes it (``timeout`` under ``server:`` read "did you mean
    'shutdown_timeout'?" where it is ``server.proxy.timeout``), else the nearest key of the
    section, else the section's keys."""
    allowed = SECTION_KEYS[section]
    elsewhere = [path for path in _sections_of(name) if path.rpartition(".")[0] != section]
    if elsewhere:
        places = " or ".join(f"{path.rpartition('.')[0] or 'the top level'} ({path})" for path in elsewhere)
        return f"{name} is a key of another section: move it under {places}"
    close = difflib.get_close_matches(name, sorted(allowed), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"allowed keys: {', '.join(sorted(allowed))}"
