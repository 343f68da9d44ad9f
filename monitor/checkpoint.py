"""Checkpoints of a monitor's state: atomic, versioned, and never pickle.

A checkpoint is a zip file holding

* ``manifest.json``: format name, format version, the monitor's state version, model, creation
  time, and (format 2) the fingerprint of the reference the detectors were calibrated on and
  whether its arrays are inside;
* ``state.json``: :meth:`Monitor.state_dict` with every numpy array replaced by a reference;
* ``arrays/<n>.npy``: those arrays, written with ``allow_pickle=False``.

Format 2 (state version 2) adds the reference itself (its rows or profile, bounded: see
:data:`monitor.reference.MAX_CHECKPOINT_REFERENCE_BYTES`) and the metric store's counters and
histograms to the state, so that a restart keeps the reference the detectors were calibrated on
(even if ``reference.path`` is gone) and, after a clean stop, counters continue instead of
resetting (a periodic checkpoint's counters are not restored: see :meth:`Monitor.state_dict`). Format 1 files
still load: their detector states are restored as before (unverified against the reference),
counters start at zero.

The state also holds the rules' sample history (:meth:`monitor.promql.storage.SeriesStore.state_dict`,
bounded by :data:`monitor.core.MAX_CHECKPOINT_SERIES_CELLS`); a state without it (written before it
was added) restores everything else.

Loading one can therefore never execute code, which matters because a checkpoint path may sit on a
shared volume. Writes go through :func:`monitor.atomic_file.atomic_output`: a temporary file in the
same folder, fsynced and then renamed over the old checkpoint (``os.replace`` is atomic on POSIX),
the folder fsynced, so a crash or ``kill -9`` mid-write leaves the previous checkpoint intact. A checkpoint that cannot be read (corrupt, truncated, another
format version, another model) raises :class:`CheckpointError` with a reason; the caller
(:func:`restore`) moves it aside and the monitor starts fresh, so a bad file can never cause a
crash loop.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.core import Monitor

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "READABLE_FORMAT_VERSIONS",
    "SAVE_FAILURE_REASONS",
    "CheckpointError",
    "CheckpointInfo",
    "encode_state",
    "decode_state",
    "save",
    "load",
    "read_manifest",
    "restore",
    "set_aside",
    "model_path",
    "process_path",
    "claim",
    "foreign_writer",
]

log = logging.getLogger("monitor.checkpoint")

FORMAT = "model-monitor-checkpoint"
#: Bumped when the container layout changes (not when a detector's state changes: those carry
#: their own versions inside the state and refuse to load on mismatch).
FORMAT_VERSION = 2
#: The reasons :func:`save` fails with (:class:`CheckpointError`): the folder or file cannot be
#: written (``io``), the state holds what the format cannot carry (``unserializable``); the sidecar
#: counts any other exception of a save as ``unexpected`` (its type and traceback go to the log: a
#: label value per exception type would be born at 1, and its first failure missed). The sidecar
#: exports ``monitor_checkpoint_failures_total{operation="save"}`` at 0 for each when a model has a
#: checkpoint path, so that MonitorCheckpointFailing counts the first failure too (a counter born at
#: 1 at its first failure shows an increase of one less); a test keeps this list complete.
#: ``shared`` is no failure to write: the save found the file written by another process since this
#: one last read or wrote it (two replicas on one volume, each restoring the other's state after a
#: restart); it is written all the same, said and counted (:func:`foreign_writer`).
SAVE_FAILURE_REASONS: tuple[str, ...] = ("io", "unserializable", "unexpected", "shared")
#: Versions :func:`load` accepts: 1 (no reference, no counters) and 2.
READABLE_FORMAT_VERSIONS = (1, 2)

_ARRAY = "__ndarray__"
_OBJECT_ARRAY = "__ndarray_object__"
_TUPLE = "__tuple__"
_PAIRS = "__pairs__"
_FLOAT = "__float__"
_MARKERS = {_ARRAY, _OBJECT_ARRAY, _TUPLE, _PAIRS, _FLOAT}


class CheckpointError(Exception):
    """A checkpoint cannot be written or read. ``reason`` is a short label for the failure counter
    (``missing``, ``corrupt``, ``format``, ``version``, ``model``, ``incompatible``, ``io``,
    ``unserializable``). Partial restores report ``reference_changed`` / ``reference_missing``
    (see :func:`restore`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`save` wrote."""

    path: Path
    size_bytes: int
    created: float
    arrays: int


# -- state <-> JSON + arrays ---------------------------------------------------------------------
def encode_state(state: Any) -> tuple[Any, list[Any]]:
    """Split a state tree into a JSON-safe tree and a list of numeric numpy arrays.

    Tuples, dicts with non-string keys and non-finite floats survive the round trip (they are
    tagged); object arrays of strings/numbers/None are stored as JSON lists with their shape.
    Anything else (an arbitrary object) raises ``CheckpointError('unserializable')``: a state
    that cannot be written safely is refused, not pickled.
    """
    import numpy as np

    arrays: list[Any] = []

    def enc(obj: Any, where: str) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {_FLOAT: repr(obj)}
        if isinstance(obj, np.generic):
            return enc(obj.item(), where)
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind in "biufcmM" or obj.dtype.kind == "U" or obj.dtype.kind == "S":
                arrays.append(np.ascontiguousarray(obj))
                return {_ARRAY: len(arrays) - 1}
            if obj.dtype.kind == "O":
                flat = [enc(v, f"{where}[]") for v in obj.ravel().tolist()]
                return {_OBJECT_ARRAY: flat, "shape": list(obj.shape)}
            raise CheckpointError("unserializable", f"{where}: numpy dtype {obj.dtype} cannot be checkpointed")
        if isinstance(obj, tuple):
            return {_TUPLE: [enc(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [enc(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and not (set(obj) & _MARKERS):
                return {k: enc(v, f"{where}.{k}") for k, v in obj.items()}
            return {_PAIRS: [[enc(k, f"{where}<key>"), enc(v, f"{where}[{k!r}]")] for k, v in obj.items()]}
        raise CheckpointError("unserializable", f"{where}: a {type(obj).__name__} cannot be checkpointed without pickle")

    return enc(state, "state"), arrays


def decode_state(tree: Any, arrays: list[Any]) -> Any:
    """Inverse of :func:`encode_state`."""
    import numpy as np

    def dec(obj: Any) -> Any:
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if _ARRAY in obj and len(obj) == 1:
            idx = obj[_ARRAY]
            if not isinstance(idx, int) or not 0 <= idx < len(arrays):
                raise CheckpointError("corrupt", f"array reference {idx!r} out of range")
            return arrays[idx]
        if _OBJECT_ARRAY in obj:
            flat = [dec(v) for v in obj[_OBJECT_ARRAY]]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            try:
                return out.reshape(tuple(obj.get("shape", [len(flat)])))
            except ValueError:
                raise CheckpointError("corrupt", "object array does not match its shape") from None
        if _TUPLE in obj and len(obj) == 1:
            return tuple(dec(v) for v in obj[_TUPLE])
        if _PAIRS in obj and len(obj) == 1:
            return {_hashable(dec(k)): dec(v) for k, v in obj[_PAIRS]}
        if _FLOAT in obj and len(obj) == 1:
            return float(obj[_FLOAT])
        return {k: dec(v) for k, v in obj.items()}

    return dec(tree)


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


# -- files ---------------------------------------------------------------------------------------
def save(path: str | Path, state: dict[str, Any], *, model: str, state_version: int,
         writer: str | None = None) -> CheckpointInfo:
    """Write ``state`` atomically to ``path`` (write to a temporary file, fsync, rename).
    ``writer`` names the process in the manifest (:func:`foreign_writer` reads it)."""
    import numpy as np

    path = Path(path)
    tree, arrays = encode_state(state)
    created = time.time()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_version": state_version,
        "model": model,
        "created": created,
        "arrays": len(arrays),
    }
    if writer is not None:
        manifest["writer"] = writer
    ref = state.get("reference") if isinstance(state, dict) else None
    if isinstance(ref, dict):
        manifest["reference_fingerprint"] = ref.get("fingerprint")
        manifest["reference_stored"] = ref.get("payload") is not None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError("io", f"cannot create the checkpoint folder {path.parent}: {err.strerror}") from None
    _sweep_stale_temporaries(path)
    from monitor.atomic_file import OutputFileError, atomic_output

    try:
        with atomic_output(path, "wb") as fh:  # its temporary file is the one the sweep above looks for
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                zf.writestr("manifest.json", json.dumps(manifest))
                zf.writestr("state.json", json.dumps(tree, separators=(",", ":")))
                for i, arr in enumerate(arrays):
                    buf = io.BytesIO()
                    np.save(buf, arr, allow_pickle=False)
                    zf.writestr(f"arrays/{i}.npy", buf.getvalue())
        size = path.stat().st_size
    except (OutputFileError, OSError) as err:
        raise CheckpointError("io", str(err) if isinstance(err, OutputFileError) else
                              f"cannot write {path}: {err.strerror or err}") from None
    return CheckpointInfo(path, size, created, len(arrays))


_swept: set[Path] = set()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (another user's counts as running: it is not ours to take)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sweep_stale_temporaries(path: Path) -> None:
    """Remove the half-written temporaries of processes that died while writing ``path`` (a
    kill -9 mid-save leaves one behind each time), once per process and path. A process still
    alive keeps its own; so does any temporary written in the last 10 minutes (a save takes
    seconds), since a pod sharing the volume has its own process ids."""
    if path in _swept:
        return
    _swept.add(path)
    prefix = f".{path.name}.tmp-"
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except OSError:
        return
    now = time.time()
    for name in names:
        pid = name[len(prefix):]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if now - (path.parent / name).stat().st_mtime < 600:
                continue
        except OSError:
            continue
        if _alive(int(pid)):
            continue  # (or another user's process): not ours to remove
        try:
            (path.parent / name).unlink()
        except OSError:
            pass


def _check_manifest(path: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    names = set(zf.namelist())
    if "manifest.json" not in names or "state.json" not in names:
        raise CheckpointError("format", f"{path} is not a monitor checkpoint (no manifest.json/state.json)")
    manifest = json.loads(zf.read("manifest.json"))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError("format", f"{path} is not a {FORMAT} file")
    if manifest.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise CheckpointError("version", f"{path} has format version {manifest.get('format_version')!r}, "
                                         f"this agent reads {', '.join(map(str, READABLE_FORMAT_VERSIONS))}")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Only the manifest (cheap: no arrays are read), e.g. to learn whether a checkpoint carries
    a reference before building a monitor. Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("missing", f"{path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_manifest(path, zf)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError, ValueError, OSError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError("corrupt", f"{path} cannot be read: {err}") from None


def foreign_writer(path: str | Path, known: set[str], since: float, touched: bool) -> dict[str, Any] | None:
    """The manifest of ``path`` when another process wrote it: its writer is none of ``known``
    (this process, and the one whose file it restored) and it was written after ``since`` (this
    process's start) or after this process last read or wrote it (``touched``). None otherwise,
    and for a file that is missing, unreadable or written before writers were named.

    Two processes on one path (replicas on a shared volume) overwrite each other's state, and a
    restarted one restores the other's: nothing said so."""
    try:
        manifest = read_manifest(path)
    except CheckpointError:
        return None
    writer = manifest.get("writer")
    if not isinstance(writer, str) or writer in known:
        return None
    created = manifest.get("created")
    recent = isinstance(created, (int, float)) and not isinstance(created, bool) and created >= since
    return manifest if touched or recent else None


def load(path: str | Path, *, model: str | None = None,
         state_version: int | tuple[int, ...] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint; returns ``(state, manifest)``. ``state_version`` is the version (or the
    versions) the caller can read. Raises :class:`CheckpointError`."""
    import numpy as np

    path = Path(path)
    if not path.exists():
        raise CheckpointError("missing", f"{path} does not exist")
    accepted = (state_version,) if isinstance(state_version, int) else state_version
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _check_manifest(path, zf)
            if accepted is not None and manifest.get("state_version") not in accepted:
                raise CheckpointError("version", f"{path} holds state version {manifest.get('state_version')!r}, "
                                                 f"this agent reads {', '.join(map(str, accepted))}")
            if model is not None and manifest.get("model") != model:
                raise CheckpointError("model", f"{path} belongs to model {manifest.get('model')!r}, not {model!r}")
            n = manifest.get("arrays", 0)
            if not isinstance(n, int) or n < 0:
                raise CheckpointError("corrupt", f"{path}: bad array count {n!r}")
            arrays = []
            for i in range(n):
                with zf.open(f"arrays/{i}.npy") as fh:
                    arrays.append(np.load(io.BytesIO(fh.read()), allow_pickle=False))
            tree = json.loads(zf.read("state.json"))
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError, ValueError, OSError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError("corrupt", f"{path} cannot be read: {err}") from None
    try:
        state = decode_state(tree, arrays)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as err:  # valid JSON, tags that do not decode
        raise CheckpointError("corrupt", f"{path}: the state does not decode ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict):
        raise CheckpointError("corrupt", f"{path}: the state is not a mapping")
    return state, manifest


def set_aside(path: str | Path, reason: str) -> Path | None:
    """Rename a bad checkpoint to ``<name>.<reason>-<utc time>`` so that the next start does not
    trip over it again (and an operator can inspect it). Returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.{reason}-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{reason}-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, target)
    except OSError as err:
        log.error("could not move the bad checkpoint %s aside: %s", path, err)
        return None
    return target


def model_path(raw: str, model: str) -> Path:
    """The checkpoint file of ``model`` for a configured ``checkpoint.path``: ``{model}`` in the
    path is replaced by the model name; a path that is a folder (or ends with ``/``) gets
    ``<model>.ckpt`` inside it."""
    if "{model}" in raw:
        return Path(raw.replace("{model}", model))
    if raw.endswith("/") or Path(raw).is_dir():
        return Path(raw) / f"{model}.ckpt"
    return Path(raw)


#: What names one process's checkpoint among several forked from one monitor: ``<file>.process-<pid>``.
PROCESS_INFIX = ".process-"


def process_path(path: str | Path, pid: int | None = None) -> Path:
    """The checkpoint file of process ``pid`` (default: this one) among the processes forked
    from one monitor (gunicorn ``--preload``): ``<file>.process-<pid>`` beside ``path``, as
    prometheus_client's multiprocess mode names one file per process. Sharing ``path`` itself,
    each process overwrote the others' states and after a restart every one restored the same."""
    path = Path(path)
    return path.with_name(f"{path.name}{PROCESS_INFIX}{os.getpid() if pid is None else pid}")


def claim(path: str | Path) -> Path | None:
    """Make one saved state of ``path``'s processes this process's own, for it to restore; returns
    its file (:func:`process_path`), or None when there is none to take.

    Process ids change with a restart, so a new process rarely finds a file of its own pid: it
    takes the newest file of a process that no longer runs (a worker that exited or the previous
    run's), else the file ``path`` itself (written by one process before several ran), renaming
    it to its own name. ``os.rename`` is atomic and the loser of a race finds the file gone and
    tries the next, so each saved state is restored by one process only, never by several."""
    path = Path(path)
    own = process_path(path)
    if own.exists():
        return own
    prefix = path.name + PROCESS_INFIX
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix) and n[len(prefix):].isdigit()]
    except OSError:
        names = []
    candidates = []
    for name in names:
        pid = int(name[len(prefix):])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            candidates.append(((path.parent / name).stat().st_mtime, path.parent / name))
        except OSError:
            continue
    candidates.sort(key=lambda c: c[0], reverse=True)
    for _, file in [*candidates, (0.0, path)]:
        try:
            os.rename(file, own)
        except FileNotFoundError:
            continue  # another process took it first, or there is none
        except OSError as err:
            log.warning("checkpoint %s could not be taken over as %s: %s", file, own, err)
            continue
        log.info("checkpoint %s taken over by process %d as %s", file, os.getpid(), own)
        return own
    return None


def _consume_final(monitor: "Monitor", path: str | Path) -> None:
    """Rewrite a final checkpoint whose counters were just restored as a periodic one: a crash
    before the next save would restore the same counters again, below what was scraped since (a
    reset to a non-zero value, counted twice by ``increase()``). A failure is logged, not raised:
    the restore itself succeeded."""
    from monitor.core import STATE_VERSION

    try:
        save(path, monitor.state_dict(), model=monitor.model, state_version=STATE_VERSION,
             writer=monitor.checkpoint_writer)
        monitor.checkpoint_written(None)
    except CheckpointError as err:
        log.warning("checkpoint %s of %s could not be rewritten after its counters were restored (%s): a crash before "
                    "the next checkpoint would restore them again", path, monitor.model, err)


def restore(monitor: "Monitor", path: str | Path) -> tuple[bool, str | None]:
    """Load ``path`` into ``monitor``. Returns ``(restored, failure_reason)``: ``(False, None)``
    when there is no checkpoint yet; on any failure the file is moved aside, the reason returned
    and logged. The monitor may have been partly loaded on failure: callers that care rebuild it
    (the sidecar does).

    The reference decides how much is restored (see :meth:`Monitor.load_state_dict`): with the
    checkpoint's reference (same fingerprint, or none configured: the checkpoint's is adopted)
    everything; with another one (``reference_changed``), or none anywhere
    (``reference_missing``), the detector states calibrated on the old one are set aside while
    alert states, the event clock, label joins and (from a final checkpoint) counters are restored. That partial restore
    counts as restored, is logged as a warning and counted in
    ``monitor_checkpoint_failures_total{operation="restore",reason=...}``; the details are in
    ``monitor.restore_report``."""
    from monitor.core import READABLE_STATE_VERSIONS

    try:
        state, manifest = load(path, model=monitor.model, state_version=READABLE_STATE_VERSIONS)
    except CheckpointError as err:
        if err.reason == "missing":
            return False, None
        moved = set_aside(path, err.reason)
        log.error("checkpoint %s not restored (%s): %s; moved to %s, starting fresh", path, err.reason, err, moved)
        return False, err.reason
    try:
        report = monitor.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - any mismatch in a detector's state is "incompatible"
        moved = set_aside(path, "incompatible")
        log.error("checkpoint %s does not fit this configuration: %s; moved to %s, starting fresh", path, err, moved)
        return False, "incompatible"
    # its writer's later saves to this file are no other process's (see Monitor.save_checkpoint)
    monitor.checkpoint_written(manifest.get("writer") if isinstance(manifest.get("writer"), str) else None)
    created = manifest.get("created")
    age = time.time() - created if isinstance(created, (int, float)) and not isinstance(created, bool) else float("nan")
    if report.set_aside_reason is not None:
        kept = ["alert states", "event clock"] + (["label joins"] if not report.labels_dropped else []) + \
            (["counters"] if report.counters_restored else [])
        dropped = (f"; the {report.labels_dropped} predictions waiting for their label were dropped (their columns are of "
                   "the old outputs' layout), counted in monitor_labels_evicted_total") if report.labels_dropped else ""
        log.warning("checkpoint %s of %s restored without its detector states (%s): %s; %s and %s restored%s", path,
                    monitor.model, report.set_aside_reason.replace("_", " "), report.detail, ", ".join(kept[:-1]),
                    kept[-1], dropped)
        monitor.store.inc("monitor_checkpoint_failures", labels=("restore", report.set_aside_reason))
    if report.detectors_set_aside:
        log.warning("checkpoint %s of %s: the saved state of %s did not fit the configuration; they start empty and "
                    "refill over one window, everything else is restored", path, monitor.model,
                    "; ".join(report.detectors_set_aside))
        monitor.store.inc("monitor_checkpoint_failures", labels=("restore", "detector_changed"))
    if report.partly_refilled:
        log.warning("checkpoint %s of %s: %s; those per-segment figures start empty and refill over one window, "
                    "everything else is restored", path, monitor.model, "; ".join(report.partly_refilled))
    if not report.counters_restored and report.state_version >= 2:
        log.info("checkpoint %s of %s was not written at a clean stop (a periodic one: the process crashed; or one "
                 "written before counters were marked): counters start at zero, as Prometheus expects after a crash "
                 "(its values are older than what was already scraped)", path, monitor.model)
    elif report.counters_restored:
        _consume_final(monitor, path)
    if report.counter_families_skipped:
        log.warning("checkpoint %s: counters of %s not restored (the catalog changed them)", path,
                    ", ".join(report.counter_families_skipped))
    if age == age:  # the restored file is the last checkpoint that succeeded (age panels, alerts read it at once)
        monitor.store.set("monitor_checkpoint_last_success_timestamp_seconds", float(created))
    log.info("restored %s from %s (format %s, written %.0f s ago; reference %s)", monitor.model, path,
             manifest.get("format_version"), age, report.reference)
    return True, None
