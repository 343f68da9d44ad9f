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
detectors cost about 0.2-0.8 ms per row, and keep state that grows with the stream) and its
calibration runs a bootstrap at construction; use it to compare, or for its MMD/LSDD tests on
embeddings. Its state cannot be checkpointed without pickle, so after a restore the test restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from monitor.detectors.base import Detector
from monitor.detectors.drift import Channel, _need_reference, channels_from_profile, describe_change

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["AlibiDriftDetector", "ONLINE", "BATCH", "import_alibi"]

ONLINE = ("CVMDriftOnline", "MMDDriftOnline", "LSDDDriftOnline")
BATCH = ("KSDrift", "MMDDrift")
EXTRA_HINT = "pip install 'model-monitor[alibi]'"


def import_alibi() -> Any:
    """``alibi_detect.cd``, or a clear error naming the extra to install."""
    try:
        import alibi_detect.cd as cd
    except ImportError as err:
        raise ValueError(
            f"detector 'alibi_drift' needs the optional alibi-detect package ({err}); install the extra: {EXTRA_HINT} "
            "(it requires numpy<2, so use a separate virtualenv if your application needs numpy 2)"
        ) from None
    return cd


class AlibiDriftDetector(Detector):
    """Drift detection delegated to alibi-detect.

    Parameters
    ----------
    reference
        Reference rows (a profile's kept sample works); numeric features only.
    method
        One of :data:`ONLINE` or :data:`BATCH`.
    ert
        Expected run time of the online detectors, in rows.
    window_sizes
        Window size(s) of the online detectors (``CVMDriftOnline`` takes several, the others the first).
    window
        Rows per test of the batch detectors (non-overlapping windows).
    p_val, correction
        Significance and feature-wise correction of the batch detectors.
    n_bootstraps
        Bootstrap simulations of the online detectors' calibration (alibi-detect's own).
    backend
        ``pytorch`` or ``tensorflow`` for the MMD/LSDD detectors (must be installed).
    max_reference_rows
        Reference rows handed to alibi-detect (a uniform subsample; its cost grows with them).
    features
        Subset of numeric features.
    top_k, name
        Features named per alarm (``KSDrift``); value of the ``detector`` label.
    options
        Extra keyword arguments passed to the alibi-detect constructor.
    """

    kind = "alibi_drift"

    def __init__(
        self,
        reference: "Reference",
        *,
        method: str = "CVMDriftOnline",
        ert: float = 100_000.0,
        window_sizes: Sequence[int] = (100,),
        window: int = 500,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        n_bootstraps: int = 10_000,
        backend: str = "pytorch",
        max_reference_rows: int = 2000,
        features: Sequence[str] | None = None,
        top_k: int = 3,
        seed: int = 0,
        name: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if method not in ONLINE + BATCH:
            raise ValueError(f"alibi_drift: method must be one of {', '.join(ONLINE + BATCH)}, not {method!r}")
        self.method = method
        self.ert = float(ert)
        self.window_sizes = tuple(int(w) for w in window_sizes)
        self.window = int(window)
        self.p_val = float(p_val)
        self.correction = correction
        self.n_bootstraps = int(n_bootstraps)
        self.backend = backend
        self.max_reference_rows = int(max_reference_rows)
        self.features = None if features is None else tuple(features)
        self.top_k = int(top_k)
        self.seed = int(seed)
        self.name = name or self.kind
        self.options = dict(options or {})
        self._cd = import_alibi()
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

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "AlibiDriftDetector":
        from monitor.detectors._common import config_params

        if reference is None:
            _need_reference(cls.kind, reference)
        return cls(reference, **config_params(cls, context, params))  # type: ignore[arg-type]

    def _impute(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(x), x, self._fill[None, :])

    def _build(self) -> None:
        cd = self._cd
        cls = getattr(cd, self.method)
        opts = dict(self.options)
        if self.method == "CVMDriftOnline":
            self._det = cls(self._x_ref, ert=self.ert, window_sizes=list(self.window_sizes), n_bootstraps=self.n_bootstraps,
                            verbose=False, **opts)
        elif self.method in ("MMDDriftOnline", "LSDDDriftOnline"):
            self._det = cls(self._x_ref, ert=self.ert, window_size=self.window_sizes[0], backend=self.backend,
                            n_bootstraps=self.n_bootstraps, verbose=False, **opts)
        elif self.method == "KSDrift":
            self._det = cls(self._x_ref, p_val=self.p_val, correction=self.correction, **opts)
        else:
            self._det = cls(self._x_ref, p_val=self.p_val, backend=self.backend, **opts)

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
            for row in x.astype(np.float32):
                data = self._det.predict(row, return_test_stat=True)["data"]
                self._set_state(bool(data["is_drift"]))
                self.statistic = float(np.max(data.get("test_stat", np.nan)))
                self.threshold = float(np.max(data.get("threshold", np.nan)))
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
        data = self._det.predict(w)["data"]
        drift = bool(data["is_drift"])
        p = np.atleast_1d(np.asarray(data["p_val"], dtype=np.float64))
        self.pvalue = float(p.min())
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
            for name, v in (("monitor_drift_statistic", self.statistic), ("monitor_drift_statistic_threshold", self.threshold)):
                if np.isfinite(v):
                    out.set(name, v, (det,))
        elif np.isfinite(self.pvalue):
            out.set("monitor_drift_pvalue", self.pvalue, (det,))
        if self.feature_pvalues is not None:
            for f, p in zip(self.feature_names, self.feature_pvalues.tolist()):
                out.set("monitor_drift_feature_pvalue", p, (det, f, "ks"))
        for labels in self._top_written:
            out.remove("monitor_drift_top_feature", labels)
        self._top_written = []
        for rank, (f, change, score) in enumerate(self.top if self.in_alarm else [], start=1):
            labels = (det, str(rank), f, change, "")
            out.set("monitor_drift_top_feature", score, labels)
            self._top_written.append(labels)

    def state_dict(self) -> dict[str, Any]:
        """Counters only: alibi-detect's own state is not serialisable without pickle."""
        return {"version": self.state_version, "rows_seen": int(self.rows_seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._reset()
        self.rows_seen = int(state.get("rows_seen", 0))
