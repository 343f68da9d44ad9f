"""What differs between two loads of ``monitor.yaml``, in the file's own key names.

A reload (SIGHUP, ``POST /-/reload``) applies each model's ``rules:`` section and no other change
of the config; it says which other keys changed, so that an edit waiting for a restart is not taken
for one in force.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from monitor.config import (AgentConfig, CheckpointConfig, MonitorConfig, QueueConfig, ReferenceConfig, RulesConfig,
                            ServerConfig)
from monitor.schema import OutputSpec

__all__ = ["config_changes"]

#: Field names of the config dataclasses that the file spells otherwise (the ``_s`` of a duration
#: is dropped everywhere).
_KEYS = {"window_s": "window", "segment_cap": "segments.cap", "labels_pending": "labels.pending", "labels_early": "labels.early",
         "labels_early_wait_s": "labels.early_wait", "schema": "features",
         "client_id_salt": "probing.client_id_salt", "raw_client_ids": "probing.raw_client_ids",
         "alertmanager_urls": "alertmanager", "webhook_urls": "webhook", "log_alerts": "log",
         "files": "files/packs", "extra": ""}
#: The config dataclasses told key by key (others, as the features or the detectors, as a whole).
_SECTIONS = (MonitorConfig, QueueConfig, RulesConfig, CheckpointConfig, ReferenceConfig, OutputSpec, ServerConfig)
#: Fields that are no key of the file.
_SKIPPED = frozenset({"source", "key"})


def _key(name: str) -> str:
    if name in _KEYS:
        return _KEYS[name]
    return name[:-2] if name.endswith("_s") else name


def _changed(old: Any, new: Any, prefix: str) -> list[str]:
    """The key paths under ``prefix`` whose values differ: nested config dataclasses and mappings
    key by key, anything else as a whole."""
    if type(old) in _SECTIONS and type(old) is type(new):
        out: list[str] = []
        for f in dataclasses.fields(old):
            if f.name in _SKIPPED:
                continue
            key = _key(f.name)
            path = ".".join(p for p in (prefix, key) if p)
            out += _changed(getattr(old, f.name), getattr(new, f.name), path)
        return out
    if isinstance(old, dict) and isinstance(new, dict) and not prefix.endswith("external_labels"):
        return [".".join(p for p in (prefix, str(k)) if p) for k in sorted(set(old) | set(new), key=str)
                if old.get(k) != new.get(k)]
    return [] if old == new else [prefix]


def config_changes(old: AgentConfig, new: AgentConfig) -> list[str]:
    """What ``new`` changes of ``old``, one item per model or for the server, e.g. ``model 'fraud':
    rules.alertmanager, window``; empty when the two configs are the same."""
    before = {m.model: m for m in old.models}
    after = {m.model: m for m in new.models}
    out: list[str] = []
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    if added:
        out.append(f"models added: {', '.join(added)}")
    if removed:
        out.append(f"models removed: {', '.join(removed)}")
    for name, cfg in before.items():
        if name in after:
            keys = _changed(cfg, after[name], "")
            if keys:
                out.append(f"model {name!r}: {', '.join(keys)}")
    server = _changed(old.server, new.server, "server")
    if server:
        out.append(", ".join(server))
    return out
