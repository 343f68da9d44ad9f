"""alibi-detect as a drift backend (kind ``alibi_drift``), exported like the built-in detectors.

A config selects one of alibi-detect's online detectors (``CVMDriftOnline``, ``MMDDriftOnline``,
``LSDDDriftOnline``: thresholds from an expected run time, fed one row at a time) or batch
detectors (``KSDrift``, ``MMDDrift``: a test per window of ``window`` rows). Results go to the same
metrics as the built-in drift detectors with ``detector="alibi_drift"`` (or ``name``):
``monitor_drift_detected``, ``monitor_drift_alarms``, ``monitor_drift_statistic`` and
``..._threshold`` (online), ``monitor_drift_pvalue`` (batch), per-feature p-values (``KSDrift``) and
the ranked ``monitor_drift_top_feature`` explanation, so the shipped rules and dashboards work
unchanged.

alibi-detect is an optional extra (``pip install 'model-monitor[alibi]'``) and is imported only
when this detector is built. It is much slower per row than the built-in detectors (its online
detectors cost about 0.2-0.8 ms per row) and its calibration runs a bootstrap at construction whose
cost grows with ``ert`` (about ``10 * ert * window`` small tensor operations for MMD: seconds at
``ert`` = 200 to 1,000, hours at 100,000; run PyTorch with one thread for it, see
``tests/test_drift_alibi_torch.py``); use it to compare, or for its MMD/LSDD tests on embeddings.

``MMDDrift``, ``MMDDriftOnline`` and ``LSDDDriftOnline`` also need PyTorch (``backend="pytorch"``,
the default) or TensorFlow in the same environment. The calibration is seeded: the global numpy and
PyTorch generators alibi-detect draws from are seeded with ``seed`` for the duration of the
calibration (and of each ``MMDDrift`` permutation test) and restored afterwards, so two detectors
built from the same reference and seed have the same thresholds. That is what makes the online
state checkpointable: :meth:`AlibiDriftDetector.state_dict` holds alibi-detect's own online state
(the keys it lists in ``online_state_keys``: ``t``, the test window and its kernel values) as plain
arrays, without pickle (alibi-detect's ``save_state`` writes PyTorch state with ``torch.save``,
i.e. pickle, so it is not used), with a fingerprint of the calibration; a restore into a detector
calibrated differently restarts the test instead. Memory stays bounded: the per-row history
alibi-detect appends (``test_stats``, ``drift_preds``, and ``CVMDriftOnline``'s copy of every past
row) is trimmed to what its next update reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from monitor.detectors.base import Detector
from monitor.detectors.drift import Channel, _need_reference, channels_from_profile, describe_change, rank_label

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["AlibiDriftDetector", "ONLINE", "BATCH", "NEEDS_FRAMEWORK", "BACKENDS", "import_alibi"]

ONLINE = ("CVMDriftOnline", "MMDDriftOnline", "LSDDDriftOnline")
BATCH = ("KSDrift", "MMDDrift")
#: Methods that run on a deep-learning framework (``backend``); the others need numpy/scipy only.
NEEDS_FRAMEWORK = ("MMDDrift", "MMDDriftOnline", "LSDDDriftOnline")
#: ``backend`` value -> the module (and pip package) it needs.
BACKENDS = {"pytorch": "torch", "tensorflow": "tensorflow", "keops": "pykeops"}  # keops: MMDDrift only (alibi's rule)
EXTRA_HINT = "pip install 'model-monitor[alibi]'"


def import_alibi(method: str | None = None, backend: str = "pytorch") -> Any:
    """``alibi_detect.cd``, or one clear error naming everything to install.

    ``method`` in :data:`NEEDS_FRAMEWORK` also needs ``backend``'s framework (PyTorch by default),
    which the ``alibi`` extra does not install: the error then names it too, so that a user does
    not fix one missing package only to meet the next one after a reinstall.
    """
    missing: list[str] = []
    try:
        import alibi_detect.cd as cd
    except ImportError as err:
        cd = None
        missing.append(f"alibi-detect ({err})")
    framework = BACKENDS.get(backend) if method in NEEDS_FRAMEWORK else None
    if framework is not None:
        try:
            importlib.import_module(framework)
        except ImportError as err:
            missing.append(f"{framework} for method {method!r} with backend={backend!r} ({err})")
    if missing:
        install = EXTRA_HINT + (f" {framework}" if framework is not None else "")
        raise ValueError(
            f"detector 'alibi_drift' needs {' and '.join(missing)}; install the extra"
            + (f" and {framework}" if framework is not None else "") + f": {install} "
            "(alibi-detect requires numpy<2, so use a separate virtualenv if your application needs numpy 2"
            + ("; for PyTorch a CPU build is enough: pip install torch --index-url https://download.pytorch.org/whl/cpu"
               if framework == "torch" else "") + ")"
        ) from None
    return cd


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed the global generators alibi-detect draws from (numpy's, and PyTorch's when loaded) and
    restore them afterwards, so its bootstrap calibration and permutation tests are reproducible
    without changing the caller's random streams. (TensorFlow's global seed is not touched. A thread
    drawing from numpy's legacy global generator at the same moment would have its draws undone:
    only construction runs inside, and ``MMDDrift``'s per-window test with ``seed_windows``.)"""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    try:
        if torch is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        np.random.set_state(state)


class AlibiDriftDetector(Detector):
    """Drift detection delegated to alibi-detect.

    Parameters
    ----------
    reference
        Reference rows (a profile's kept sample works); numeric features only.
    method
        One of :data:`ONLINE` or :data:`BATCH`.
    ert
        Expected run time of the online detectors, in rows. 1,000 by default, not the built-in
        detectors' 1,000,000: alibi-detect calibrates it by bootstrap simulation, which takes
        seconds at 1,000 and hours at 100,000 (see ``n_bootstraps``).
    window_sizes
        Window size(s) of the online detectors (``CVMDriftOnline`` takes several, the others the first).
    window
        Rows per test of the batch detectors (non-overlapping windows).
    p_val, correction
        Significance and feature-wise correction of the batch detectors.
    n_bootstraps
        Bootstrap simulations of the online detectors' calibration (alibi-detect's own). The MMD/LSDD
        online detectors estimate the ``1 - 1/ert`` quantile from them, window after window, so they
        need ``n_bootstraps >= ert`` (alibi-detect recommends ten times ``ert``); their calibration
        costs about ``n_bootstraps * window_sizes[0]`` small tensor operations (0.1 ms each here),
        which is what limits ``ert``: 1,000 rows takes about a second, 100,000 rows hours. None
        (the default) takes 1.25 times the minimum the quantile needs for the method and features.
    backend
        ``pytorch``, ``tensorflow`` (or ``keops``, ``MMDDrift`` only) for the MMD/LSDD detectors (installed beside the extra).
    max_reference_rows
        Reference rows handed to alibi-detect (a uniform subsample; its cost grows with them).
    features
        Subset of numeric features.
    top_k, name
        Features named per alarm (``KSDrift``); value of the ``detector`` label.
    seed_windows
        ``MMDDrift`` only: seed its permutation test per window (from ``seed`` and the window
        count) so that a replay or a restored checkpoint gives the same p-values. Off by default:
        alibi-detect draws from the process-wide numpy and PyTorch generators, so seeding them
        from the worker thread would briefly fix the random streams of any other thread of the
        process, the model's own (MC dropout, sampling) included.
    seed
        Seeds the reference subsample and alibi-detect's calibration (see the module docstring).
    options
        Extra keyword arguments passed to the alibi-detect constructor.
    """

    kind = "alibi_drift"
    #: 2: the online detectors' own state and the batch window are checkpointed (1: counters only).
    state_version = 2

    def __init__(
        self,
        reference: "Reference",
        *,
        method: str = "CVMDriftOnline",
        ert: float = 1_000.0,
        window_sizes: Sequence[int] = (100,),
        window: int = 500,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        n_bootstraps: int | None = None,
        backend: str = "pytorch",
        max_reference_rows: int = 2000,
        features: Sequence[str] | None = None,
        top_k: int = 3,
        seed: int = 0,
        seed_windows: bool = False,
        name: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if method not in ONLINE + BATCH:
            raise ValueError(f"alibi_drift: method must be one of {', '.join(ONLINE + BATCH)}, not {method!r}")
        if method in NEEDS_FRAMEWORK and backend not in BACKENDS:
            raise ValueError(f"alibi_drift: backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.method = method
        self.ert = float(ert)
        self.window_sizes = tuple(int(w) for w in window_sizes)
        self.window = int(window)
        self.p_val = float(p_val)
        self.correction = correction
        self.n_bootstraps = None if n_bootstraps is None else int(n_bootstraps)
        self.backend = backend
        self.max_reference_rows = int(max_reference_rows)
        self.features = None if features is None else tuple(features)
        self.top_k = int(top_k)
        self.seed = int(seed)
        self.seed_windows = bool(seed_windows)
        self.name = name or self.kind
        self.options = dict(options or {})
        self._cd = import_alibi(method, backend)
        profile = _need_reference(self.kind, reference)
        rows = reference if hasattr(reference, "numeric") and len(getattr(reference, "numeric", ())) else profile.sample
        if rows is None or rows.numeric.shape[0] < 10:
            raise ValueError("alibi_drift needs reference rows (a Reference, or a profile built with --keep-rows > 0)")
        names = list(rows.numeric_names)
        use = list(self.features) if self.features is not None else names
        unknown = [f for f in use if f not in names]
        if unknown:
            raise ValueError(f"alibi_drift: features {unknown} are not numeric reference features ({names})")
        self.feature_names = tuple(use)
        self._check_bootstraps()
        cols = [names.index(f) for f in use]
        rng = np.random.default_rng(self.seed)
        x = np.asarray(rows.numeric[:, cols], dtype=np.float64)
        if x.shape[0] > self.max_reference_rows:
            x = x[np.sort(rng.choice(x.shape[0], self.max_reference_rows, replace=False))]
        with np.errstate(all="ignore"):
            self._fill = np.where(np.isfinite(np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)),
                                  np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0), 0.0)
        self._x_ref = self._impute(x).astype(np.float32)
        chans = {c.name: c for c in channels_from_profile(profile, features=self.feature_names)}
        self._channels: list[Channel] = [chans[f] for f in self.feature_names]
        self._build()
        self._reset()

    def _check_bootstraps(self) -> None:
        """Refuse, before a long calibration, an ``n_bootstraps`` too small for ``ert``: alibi-detect
        estimates the ``1 - q`` quantile of the null statistic from the bootstrap samples, which
        needs at least ``1/q`` of them (``q = 1/ert``; ``CVMDriftOnline`` splits it over the
        features, ``q = 1 - (1 - 1/ert)^(1/features)``), and fails with a bare quantile error otherwise."""
        if self.method not in ONLINE:
            self.n_bootstraps = 10_000 if self.n_bootstraps is None else self.n_bootstraps
            return
        q = 1.0 / self.ert
        if self.method == "CVMDriftOnline":
            q = 1.0 - (1.0 - q) ** (1.0 / len(self.feature_names))
        if self.n_bootstraps is None:
            self.n_bootstraps = int(np.ceil(1.25 / q))
        if self.n_bootstraps < 1.0 / q:
            raise ValueError(
                f"alibi_drift: n_bootstraps={self.n_bootstraps} is too few for ert={self.ert:g}; {self.method} "
                f"estimates the 1-{q:.3g} quantile of its statistic from the bootstrap samples, so set n_bootstraps "
                f"to at least {int(np.ceil(1.2 / q))} (alibi-detect recommends {int(np.ceil(10 / q))}; calibration "
                f"time grows with it), or lower ert")

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "AlibiDriftDetector":
        from monitor.detectors._common import config_params

        if reference is None:
            _need_reference(cls.kind, reference)
        return cls(reference, **config_params(cls, context, params, seed="seed"))  # type: ignore[arg-type]

    def _impute(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), x, self._fill[None, :])

    def _build(self) -> None:
        cd = self._cd
        cls = getattr(cd, self.method)
        opts = dict(self.options)
        if self.method in NEEDS_FRAMEWORK and self.backend == "pytorch" and "device" not in opts:
            import torch  # noqa: PLC0415 - checked importable by import_alibi

            # what alibi-detect would pick, without the warning it logs at every build on a CPU machine
            opts["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        with _seeded(self.seed):
            if self.method in ONLINE:
                if self.method == "CVMDriftOnline":
                    opts.update(window_sizes=list(self.window_sizes))
                else:
                    opts.update(window_size=self.window_sizes[0], backend=self.backend)
                try:
                    self._det = cls(self._x_ref, ert=self.ert, n_bootstraps=self.n_bootstraps, verbose=False, **opts)
                except ValueError as err:
                    if "quantile" not in str(err):
                        raise
                    raise ValueError(
                        f"alibi_drift: {self.method} could not calibrate ert={self.ert:g} from n_bootstraps="
                        f"{self.n_bootstraps} with window_sizes={list(self.window_sizes)} ({err}); raise n_bootstraps "
                        f"(alibi-detect recommends 10x ert) or lower ert") from None
            elif self.method == "KSDrift":
                self._det = cls(self._x_ref, p_val=self.p_val, correction=self.correction, **opts)
            else:
                self._det = cls(self._x_ref, p_val=self.p_val, backend=self.backend, **opts)
        # the wrappers of the framework-backed detectors keep the state in ``_detector``
        self._inner = getattr(self._det, "_detector", self._det)
        self._fingerprint = self._calibration_fingerprint()
        # numpy (CVM) and PyTorch state round-trips as arrays; TensorFlow's is not handled (restarts)
        self._online_checkpointable = self.method in ONLINE and (
            self.method not in NEEDS_FRAMEWORK or self.backend == "pytorch")

    def _calibration_fingerprint(self) -> str:
        """Digest of what an online state is only valid against: the reference handed to
        alibi-detect, its thresholds and (MMD/LSDD) its random split of the reference."""
        h = hashlib.sha256(f"{self.method}|{self.backend}|{self.window_sizes}|{self.ert!r}".encode())
        h.update(np.ascontiguousarray(self._x_ref).tobytes())
        for key in ("thresholds", "ref_inds", "init_test_inds", "c_inds"):
            value = getattr(self._inner, key, None)
            if value is not None:
                h.update(key.encode())
                h.update(np.ascontiguousarray(_to_numpy(value), dtype=np.float64).tobytes())
        return h.hexdigest()

    def _reset(self) -> None:
        d = len(self.feature_names)
        self._buf = np.zeros((self.window, d), dtype=np.float32)  # batch detectors: one window, fixed size
        self._buf_n = 0
        self.in_alarm = False
        self.pending_alarms = 0
        self.statistic = float("nan")
        self.threshold = float("nan")
        self.pvalue = float("nan")
        self.feature_pvalues: np.ndarray | None = None
        self.top: list[tuple[str, str, float]] = []
        self._top_written: list[tuple[str, ...]] = []
        self.rows_seen = 0
        self.windows_tested = 0
        if hasattr(self, "_det") and self.method in ONLINE:
            self._det.reset_state()

    @property
    def drift_detected(self) -> bool:
        return self.in_alarm

    @property
    def top_features(self) -> list[tuple[str, str, float]]:
        return list(self.top) if self.in_alarm else []

    def _columns(self, batch: "Batch") -> np.ndarray | None:
        names = list(batch.numeric_names)
        if any(f not in names for f in self.feature_names):
            return None
        return self._impute(np.asarray(batch.numeric[:, [names.index(f) for f in self.feature_names]], dtype=np.float64))

    def update(self, batch: "Batch") -> None:
        x = self._columns(batch)
        if x is None or x.shape[0] == 0:
            return
        self.rows_seen += x.shape[0]
        if self.method in ONLINE:
            inner = self._inner
            for row in x.astype(np.float32):
                data = self._det.predict(row, return_test_stat=True)["data"]
                self._set_state(bool(data["is_drift"]))
                self.statistic = float(np.max(data.get("test_stat", np.nan)))
                self.threshold = float(np.max(data.get("threshold", np.nan)))
                # alibi-detect appends every row's statistic and decision (a copy per row: cost and
                # memory grow with the stream); nothing reads them back, so keep them empty.
                inner.test_stats = inner.test_stats[:0]
                inner.drift_preds = inner.drift_preds[:0]
            xs = getattr(inner, "xs", None)  # CVMDriftOnline keeps every past row; it reads the last max_ws
            if xs is not None and xs.shape[0] > inner.max_ws:
                inner.xs = xs[-inner.max_ws:].copy()
            return
        start = 0
        while start < x.shape[0]:
            take = min(self.window - self._buf_n, x.shape[0] - start)
            self._buf[self._buf_n:self._buf_n + take] = x[start:start + take]
            self._buf_n += take
            start += take
            if self._buf_n == self.window:
                self._test_window(self._buf.copy())
                self._buf_n = 0

    def _test_window(self, w: np.ndarray) -> None:
        if self.method == "MMDDrift" and self.seed_windows:
            # its permutation test draws from the global generators: seeded per window on request
            # (see ``seed_windows``), so that a replay or a restored checkpoint gives the same p-values
            with _seeded(int(np.random.SeedSequence([self.seed, self.windows_tested]).generate_state(1)[0])):
                data = self._det.predict(w)["data"]
        else:  # KSDrift is deterministic; MMDDrift's permutations then vary from run to run
            data = self._det.predict(w)["data"]
        self.windows_tested += 1
        drift = bool(data["is_drift"])
        p = np.atleast_1d(np.asarray(data["p_val"], dtype=np.float64))
        self.pvalue = float(p.min())
        if self.method == "MMDDrift":  # the squared MMD and the permutation quantile it is compared with
            self.statistic = float(data["distance"])
            self.threshold = float(data["distance_threshold"])
        if p.size == len(self.feature_names) and p.size > 1:
            self.feature_pvalues = p
        if drift and self.feature_pvalues is not None:
            order = np.argsort(self.feature_pvalues, kind="stable")[: self.top_k]
            top = []
            for j in order.tolist():
                ch = self._channels[j]
                v = w[:, j].astype(np.float64)
                counts = np.bincount(ch.bin_numeric(v), minlength=ch.n_bins).astype(np.float64)
                mom = np.array([v.size, v.sum(), (v * v).sum()])
                top.append((ch.name, describe_change(ch, counts, mom), float(-np.log10(max(self.feature_pvalues[j], 1e-300)))))
            self.top = top
        self._set_state(drift)

    def _set_state(self, drift: bool) -> None:
        if drift and not self.in_alarm:
            self.pending_alarms += 1
        self.in_alarm = drift

    def export(self, out: "MetricWriter") -> None:
        det = self.name
        out.set("monitor_drift_detected", 1.0 if self.in_alarm else 0.0, (det,))
        out.inc("monitor_drift_alarms", float(self.pending_alarms), (det,))
        self.pending_alarms = 0
        if self.method in ONLINE:
            out.set("monitor_drift_ert_events", self.ert, (det,))
        elif np.isfinite(self.pvalue):
            out.set("monitor_drift_pvalue", self.pvalue, (det,))
        for name, v in (("monitor_drift_statistic", self.statistic), ("monitor_drift_statistic_threshold", self.threshold)):
            if np.isfinite(v):
                out.set(name, v, (det,))
        if self.feature_pvalues is not None:
            for f, p in zip(self.feature_names, self.feature_pvalues.tolist()):
                out.set("monitor_drift_feature_pvalue", p, (det, f, "ks"))
        for labels in self._top_written:
            out.remove("monitor_drift_top_feature", labels)
        self._top_written = []
        for rank, (f, change, score) in enumerate(self.top if self.in_alarm else [], start=1):
            labels = (det, rank_label(rank, self.top_k), f, change, "")
            out.set("monitor_drift_top_feature", score, labels)
            self._top_written.append(labels)

    def state_dict(self) -> dict[str, Any]:
        """Counters, the alarm state, the batch detectors' partial window and the online detectors'
        own state (alibi-detect's ``online_state_keys`` as plain arrays), with the fingerprint of the
        calibration it belongs to. No pickle: torch tensors are stored as numpy arrays."""
        online: dict[str, Any] = {}
        if self._online_checkpointable:
            for key in self._inner.online_state_keys:
                if key in ("test_stats", "drift_preds"):  # per-row history, kept empty (see update)
                    continue
                value = getattr(self._inner, key, None)
                if value is None:  # CVMDriftOnline has no row window before its first row
                    continue
                online[key] = int(value) if key == "t" else _to_numpy(value)
        return {
            "version": self.state_version,
            "rows_seen": int(self.rows_seen),
            "windows_tested": int(self.windows_tested),
            "in_alarm": bool(self.in_alarm),
            "pending_alarms": int(self.pending_alarms),
            "statistic": float(self.statistic),
            "threshold": float(self.threshold),
            "pvalue": float(self.pvalue),
            "buffer": self._buf[: self._buf_n].copy(),
            "feature_pvalues": None if self.feature_pvalues is None else self.feature_pvalues.copy(),
            "top": [[f, change, float(score)] for f, change, score in self.top],
            "fingerprint": self._fingerprint,
            "online": online,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. A state from another calibration (other reference rows, seed,
        ``ert``, window or alibi-detect/PyTorch release) or an older layout restarts the test and
        keeps only the row count, as before checkpoints held alibi-detect's state."""
        self._reset()
        self.rows_seen = int(state.get("rows_seen", 0))
        if state.get("version") != self.state_version or state.get("fingerprint") != self._fingerprint:
            return
        buf = np.asarray(state["buffer"], dtype=np.float32)
        if buf.ndim != 2 or buf.shape[1] != self._buf.shape[1] or buf.shape[0] >= self.window:
            raise ValueError(f"alibi_drift: checkpointed window of shape {buf.shape} does not fit window={self.window} "
                             f"over {self._buf.shape[1]} features")
        self._buf[: buf.shape[0]] = buf
        self._buf_n = buf.shape[0]
        self.windows_tested = int(state["windows_tested"])
        self.in_alarm = bool(state["in_alarm"])
        self.pending_alarms = int(state["pending_alarms"])
        self.statistic, self.threshold, self.pvalue = (float(state[k]) for k in ("statistic", "threshold", "pvalue"))
        fp = state.get("feature_pvalues")
        self.feature_pvalues = None if fp is None else np.asarray(fp, dtype=np.float64)
        self.top = [(str(f), str(change), float(score)) for f, change, score in state.get("top", [])]
        for key, value in state.get("online", {}).items():
            if key not in self._inner.online_state_keys:
                raise ValueError(f"alibi_drift: checkpoint holds {key!r}, not a state key of {self.method}")
            current = getattr(self._inner, key, None)
            if key == "t":
                value = int(value)
            elif _is_tensor(current):
                import torch  # noqa: PLC0415 - present whenever the detector holds tensors

                value = torch.from_numpy(np.asarray(value)).to(current.device)
            else:
                value = np.asarray(value)
            setattr(self._inner, key, value)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _to_numpy(value: Any) -> np.ndarray:
    """A numpy copy of an array or a PyTorch tensor (on whatever device)."""
    if _is_tensor(value):
        return value.detach().cpu().numpy().copy()
    return np.array(value)
