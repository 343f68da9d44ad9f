"""Checkpoints: lossless round trips without pickle, atomic writes, corrupt and incompatible files
reported and moved aside (never a crash loop), and a sidecar that restores its state on start."""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import checkpoint
from monitor.checkpoint import CheckpointError, decode_state, encode_state
from monitor.core import STATE_VERSION, Monitor
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

CFG = {"model": "iris", "features": ["a", "b", "c", "d"],
       "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def same(a, b) -> bool:
    """Deep equality that understands arrays, NaN and tuples."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
            (np.array_equal(a, b, equal_nan=a.dtype.kind == "f") if a.dtype.kind != "O" else all(same(x, y) for x, y in zip(a.ravel(), b.ravel())))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_state_trees_round_trip_exactly():
    state = {
        "ints": np.arange(6, dtype=np.int64).reshape(2, 3),
        "floats": np.array([1.5, np.nan, np.inf, -np.inf]),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 4)),
        "names": np.array(["a", "bc"]),
        "objects": np.array([["x", None], [3, 2.5]], dtype=object),
        "tuple": (1, "two", (3.0,)),
        "pairs": {1: "one", (2, "b"): [1, 2]},
        "specials": [float("nan"), float("inf"), -0.0, None, True],
        "marker_like": {"__ndarray__": 5},
        "scalar": np.float32(2.5),
    }
    tree, arrays = encode_state(state)
    json.dumps(tree, allow_nan=False)  # the tree is strict JSON: non-finite floats are tagged
    back = decode_state(json.loads(json.dumps(tree)), arrays)
    expected = {**state, "scalar": 2.5}
    assert same(back, expected)


def test_objects_that_would_need_pickle_are_refused():
    with pytest.raises(CheckpointError, match="state.detector.fn") as err:
        encode_state({"detector": {"fn": lambda x: x}})
    assert err.value.reason == "unserializable"


def test_save_is_atomic_and_load_reads_back(tmp_path):
    path = tmp_path / "sub" / "m.ckpt"
    state = {"version": STATE_VERSION, "w": np.ones(3)}
    info = checkpoint.save(path, state, model="m", state_version=STATE_VERSION)
    assert info.size_bytes == path.stat().st_size and info.arrays == 1
    assert sorted(os.listdir(path.parent)) == ["m.ckpt"]  # no temporary left behind
    back, manifest = checkpoint.load(path, model="m", state_version=STATE_VERSION)
    assert same(back, state) and manifest["format"] == checkpoint.FORMAT
    with zipfile.ZipFile(path) as zf:  # arrays are .npy without pickle, the rest JSON
        assert sorted(zf.namelist()) == ["arrays/0.npy", "manifest.json", "state.json"]
    # a crash between writing the temporary file and the rename leaves the old checkpoint intact
    (path.parent / ".m.ckpt.tmp-999").write_bytes(b"half-written")
    back, _ = checkpoint.load(path, model="m")
    assert same(back, state)


def test_a_save_keeps_the_files_mode_and_leaves_nothing_behind_when_interrupted(tmp_path, monkeypatch):
    """Checkpoints are written through monitor.atomic_file (they had their own copy of it): an
    operator's ``chmod 600`` of a checkpoint (it may hold the reference's rows) is kept by the next
    save, where the file was replaced by one of the default mode; and a save interrupted by
    anything (Ctrl-C mid-write) removes its temporary file and leaves the last checkpoint whole,
    where only an OSError did."""
    path = tmp_path / "m.ckpt"
    state = {"version": STATE_VERSION, "w": np.ones(3)}
    checkpoint.save(path, state, model="m", state_version=STATE_VERSION)
    os.chmod(path, 0o600)
    checkpoint.save(path, {**state, "w": np.zeros(3)}, model="m", state_version=STATE_VERSION)
    assert path.stat().st_mode & 0o777 == 0o600
    real_save = np.save

    def interrupted(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {**state, "w": np.full(3, 7.0)}, model="m", state_version=STATE_VERSION)
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]
    monkeypatch.setattr(np, "save", real_save)
    back, _ = checkpoint.load(path, model="m")
    assert same(back, {**state, "w": np.zeros(3)})


def test_a_checkpoint_that_cannot_be_written_is_an_io_error_naming_the_file_and_the_fix(tmp_path):
    target = tmp_path / "m.ckpt"
    target.mkdir()  # a folder where the file should be (root may write anywhere, not over a folder)
    with pytest.raises(CheckpointError) as err:
        checkpoint.save(target, {"version": STATE_VERSION}, model="m", state_version=STATE_VERSION)
    assert err.value.reason == "io" and str(target) in str(err.value) and "Fix:" in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(b"not a zip at all"), "corrupt"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt"),
    (lambda p: _rewrite_manifest(p, format_version=99), "version"),
    (lambda p: _rewrite_manifest(p, format="something-else"), "format"),
    (lambda p: _rewrite_manifest(p, model="other"), "model"),
    (lambda p: _rewrite_manifest(p, state_version=STATE_VERSION + 1), "version"),
])
def test_bad_checkpoints_are_reported_and_set_aside(tmp_path, damage, reason):
    path = tmp_path / "iris.ckpt"
    mon = Monitor(config=CFG, registry=CollectorRegistry(), start_worker=False)
    checkpoint.save(path, mon.state_dict(final=True), model="iris", state_version=STATE_VERSION)
    damage(path)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path, model="iris", state_version=STATE_VERSION)
    assert err.value.reason == reason
    restored, failure = checkpoint.restore(mon, path)
    assert (restored, failure) == (False, reason)
    assert not path.exists()
    (aside,) = list(tmp_path.glob(f"iris.ckpt.{reason}-*"))
    assert aside.stat().st_size > 0
    assert checkpoint.restore(mon, path) == (False, None)  # next start: nothing to trip over
    mon.close()


def _rewrite_manifest(path, **changes) -> None:
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest.update(changes)
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def _feed(mon: Monitor, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    p = rng.dirichlet(np.ones(3), size=n)
    for i in range(n):
        mon.observe(x[i : i + 1], p[i : i + 1], request_id=f"{seed}-{i}", client=f"c{i % 5}", timestamp=1_700_000_000.0 + i)
    mon.flush()


def test_a_monitor_restored_from_a_checkpoint_continues_where_it_stopped(tmp_path):
    path = tmp_path / "iris.ckpt"
    a = Monitor(config=CFG, registry=CollectorRegistry(), start_worker=False, live=False)
    _feed(a, 300, seed=1)
    checkpoint.save(path, a.state_dict(final=True), model="iris", state_version=STATE_VERSION)
    b = Monitor(config=CFG, registry=CollectorRegistry(), start_worker=False, live=False)
    assert checkpoint.restore(b, path) == (True, None)
    sa, _ = encode_state(a.state_dict(final=True))
    sb, _ = encode_state(b.state_dict(final=True))
    assert sa == sb  # same structure and scalars
    assert all(same(x, y) for x, y in zip(encode_state(a.state_dict(final=True))[1], encode_state(b.state_dict(final=True))[1]))
    # both continue identically on the same new traffic, and old request ids still join
    _feed(a, 50, seed=2)
    _feed(b, 50, seed=2)
    ta, tb = encode_state(a.state_dict(final=True))[0], encode_state(b.state_dict(final=True))[0]
    # histograms are flushed from the detectors at export, whose pacing is not checkpointed
    # (the restored one exports at once): compare them elsewhere, the counters here
    assert ta.pop("counters")["counters"] == tb.pop("counters")["counters"]
    assert ta == tb
    b.feedback(["1-0", "1-1"], ["setosa", "virginica"], timestamp=1_700_000_400.0)
    b.flush()
    assert b.store.value("monitor_feedback_labels", ("joined",)) == 2
    a.close()
    b.close()


def test_sidecar_restores_on_start_and_sets_a_corrupt_checkpoint_aside(tmp_path):
    raw = {**CFG, "checkpoint": {"path": "state/{model}.ckpt", "interval": "1h"}}
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    http("POST", s.url + "/v1/events", [{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}",
                                          "timestamp": 1_700_000_000 + i} for i in range(20)])
    s.flush()
    s.close()  # graceful shutdown writes the final checkpoint
    assert (tmp_path / "state" / "iris.ckpt").exists()
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    try:
        text = s.metrics()
        assert sample(text, "monitor_checkpoint_restored", model="iris") == 1
        assert http("GET", s.url + "/api/v1/status").json()["data"]["models"]["iris"]["restored_from_checkpoint"] is True
        http("POST", s.url + "/v1/feedback", {"request_ids": ["r3", "r4"], "labels": ["setosa", "setosa"], "timestamp": 1_700_000_100})
        s.flush()
        assert sample(s.metrics(), "monitor_feedback_labels_total", model="iris", outcome="joined") == 2
    finally:
        s.close()
    (tmp_path / "state" / "iris.ckpt").write_bytes(b"\x00garbage")
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    try:
        text = s.metrics()
        assert sample(text, "monitor_checkpoint_restored", model="iris") == 0
        assert sample(text, "monitor_checkpoint_failures_total", model="iris", operation="restore", reason="corrupt") == 1
        assert http("GET", s.url + "/readyz").status == 200
        assert len(list((tmp_path / "state").glob("iris.ckpt.corrupt-*"))) == 1
    finally:
        s.close()


def test_periodic_checkpoints_are_written_and_exported(tmp_path):
    from tests.sidecar_support import wait_until

    raw = {**CFG, "checkpoint": {"path": "ck/", "interval": "200ms"}}
    (tmp_path / "ck").mkdir()
    s = start_sidecar(raw, tmp_path)
    try:
        assert wait_until(lambda: (sample(s.metrics(), "monitor_checkpoint_last_success_timestamp_seconds", model="iris") or 0) > 0)
        assert (tmp_path / "ck" / "iris.ckpt").exists()
        assert sample(s.metrics(), "monitor_checkpoint_size_bytes", model="iris") > 0
    finally:
        s.close()


def test_two_models_may_not_share_a_checkpoint_file(tmp_path):
    from monitor.config import ConfigError, parse_config
    from monitor.server.sidecar import checkpoint_paths

    agent = parse_config({"checkpoint": {"path": "one.ckpt"}, "models": [CFG, {**CFG, "model": "b"}]}, "m.yaml", tmp_path)
    with pytest.raises(ConfigError, match="share the checkpoint"):
        checkpoint_paths(agent)
    agent = parse_config({"checkpoint": {"path": "ck/{model}.ckpt"}, "models": [CFG, {**CFG, "model": "b"}]}, "m.yaml", tmp_path)
    assert {k: v.name for k, v in checkpoint_paths(agent).items()} == {"iris": "iris.ckpt", "b": "b.ckpt"}


def test_half_written_temporaries_of_dead_processes_are_removed_on_the_first_save(tmp_path):
    """kill -9 during a save leaves ``.<file>.tmp-<pid>`` behind; the next process to save the same
    checkpoint removes those of dead processes, never one of a live process."""
    import subprocess
    import sys

    path = tmp_path / "m.ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no such process any more (the kernel does not reuse it at once)
    stale = tmp_path / f".m.ckpt.tmp-{dead_pid}"
    stale.write_bytes(b"half a zip")
    os.utime(stale, (os.path.getmtime(stale) - 3600,) * 2)  # written an hour ago
    recent = tmp_path / f".m.ckpt.tmp-{dead_pid + 1}"  # maybe another pod's save in progress
    recent.write_bytes(b"a save of a moment ago")
    live = tmp_path / f".m.ckpt.tmp-{os.getppid()}"
    live.write_bytes(b"someone else's save in progress")
    other = tmp_path / f".other.ckpt.tmp-{dead_pid}"
    other.write_bytes(b"another checkpoint's")
    checkpoint.save(path, {"x": np.arange(3)}, model="m", state_version=STATE_VERSION)
    assert path.exists()
    assert not stale.exists()
    assert live.exists() and other.exists() and recent.exists()
    assert not list(tmp_path.glob(f".m.ckpt.tmp-{os.getpid()}"))


def test_the_learned_output_width_survives_a_restart(tmp_path):
    """Without configured classes the width of the model's outputs is learned from the first
    batch; after a restart a malformed first batch must not decide it again."""
    path = tmp_path / "m.ckpt"
    cfg = {"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities"}, "detectors": [{"kind": "confidence"}]}
    from monitor.config import parse_config

    config = parse_config(cfg).model()
    a = Monitor(config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    a.observe([1.0, 2.0], [0.7, 0.2, 0.1], timestamp=1_700_000_000.0)
    a.flush()
    checkpoint.save(path, a.state_dict(final=True), model="m", state_version=STATE_VERSION)
    b = Monitor(config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    assert checkpoint.restore(b, path) == (True, None)
    for t in (1.0, 2.0):  # another width first (learned afresh, it would pin width 2)
        b.observe([1.0, 2.0], [0.5, 0.5], timestamp=1_700_000_000.0 + t)
    b.observe([1.0, 2.0], [0.6, 0.3, 0.1], timestamp=1_700_000_003.0)
    b.flush()
    assert b.store.value("monitor_rows_rejected", labels=("output_shape",)) == 2
    assert b.store.value("monitor_predictions") == 2  # 1 restored + the one of the model's width
