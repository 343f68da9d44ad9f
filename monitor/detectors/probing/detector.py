"""The probing detector: per-client signals of query-based attacks and model stealing.

It ties together, per client (see the sibling modules for each idea and its calibration):

* exact repeats (retries), counted apart and kept out of every similarity state;
* near-duplicate bursts, by nearest neighbours (Chen et al.) or segment hashes (Blacklight);
* boundary probing: small-margin queries and label flips between near-duplicates;
* model stealing: PRADA's normality test on minimum distances, and out-of-distribution queries;
* campaigns: near-duplicate clusters spread over several accounts (a small global ring);
* the population: a sample of every client's queries, so that a client is judged against the
  clients around it as well as the reference (a population-wide drift moves the yardstick);
* a verdict with its evidence, and low-cardinality metrics (counts by signal, a hashed top-k).

It runs in the monitor's worker, on copies of what the model already answered: it never changes
an answer, so an attacker cannot learn from a refusal that it is being watched.

Cost. Everything that can be is vectorised over the batch (standardising, sketching, OOD scores,
margins, hashes). The similarity work is per client, one matrix product of the client's new
queries against its stored ones; to keep that product large, a client's queries wait in a small
pending buffer until ``flush_rows`` of them are there, or until ``max_delay_s`` of event time has
passed (checked at every batch and every :meth:`advance`). Verdicts are computed query by query
in order, so waiting changes *when* a verdict appears, never which query raised it.

Memory is bounded by the configuration: at most ``max_clients`` clients (LRU, evictions counted),
each with at most ``history`` stored queries of ``bytes_per_query`` bytes, plus ``flush_rows``
pending rows per client and a global ring of ``campaign_window`` queries; see :attr:`memory_bound_bytes`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors.base import Detector
from monitor.detectors.probing.boundary import BoundaryCalibration, calibrate_boundary, margins
from monitor.detectors.probing.clients import ClientRing, ClientTable
from monitor.detectors.probing.current import CurrentRates
from monitor.detectors.probing.fpindex import FingerprintIndex, group_close_counts
from monitor.detectors.probing.hashing import Fingerprinter, exact_hash, shared_counts
from monitor.detectors.probing.neighbours import (
    STATISTICS,
    GroupNeighbours,
    KnnCalibration,
    Sketcher,
    calibrate_knn,
    group_neighbours,
    pairwise_sq,
)
from monitor.detectors.probing.ood import OODModel, fit_ood
from monitor.detectors.probing.pending import PendingQueue, Rows
from monitor.detectors.probing.population import STRETCH_STEP, PopulationScale, population_stretch, reference_spacing
from monitor.detectors.probing.regimes import PradaRegimes
from monitor.detectors.probing.stealing import PradaCalibration, calibrate_prada, shapiro_coefficients, shapiro_w
from monitor.detectors.probing.verdict import SIGNALS, Campaign, CampaignIndex, ClientVerdict, SignalEvidence, critical_counts
from monitor.windows import SlidingWindow

log = logging.getLogger("monitor")

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["ProbingDetector", "ProbingCalibration", "population_null"]

# per-query flag bits kept in each client's ring (windowed counts are sums of these)
_HIT, _SMALL, _OOD, _NEAR, _FLIP = 1, 2, 4, 8, 16
_BITS = np.array([_HIT, _SMALL, _OOD, _NEAR, _FLIP], dtype=np.uint8)
#: flag byte -> its five bits as counts (one fancy index instead of mask-compare-cast per group)
_BIT_TABLE = ((np.arange(256, dtype=np.uint8)[:, None] & _BITS) > 0).astype(np.int64)
# signal index in SIGNALS
_S_NEAR, _S_BOUNDARY, _S_FLIPS, _S_STEALING, _S_OOD, _S_CAMPAIGN = range(6)
#: columns of the windowed counts tested per client, and the signals they raise
_COUNT_COLUMNS = np.array([0, 1, 2, 4])
_COUNT_SIGNALS = np.array([_S_NEAR, _S_BOUNDARY, _S_OOD, _S_FLIPS])
_ROWS4 = np.arange(4)
#: per-query flag counters exported by name
#: PRADA's window when the config does not set one, and the reference rows its calibration needs
#: beyond the window (see :meth:`ProbingDetector.min_reference_rows`)
DEFAULT_PRADA_WINDOW = 100
_PRADA_CALIBRATION_EXTRA = 10
#: reference rows below which ``prada: auto`` (the default) leaves PRADA off: its simulated
#: benign clients are then permutations of the same rows, the spread of W between them misses
#: the reference's own sampling, and the 1e-4 threshold came out anywhere between W 0.25 and 0.91
#: by the reference's seed (false alarms per test up to 29% at 200 rows, 0.5% at 600, none seen
#: at 1,000: tests/test_probing_prada_small_reference_s27e.py)
PRADA_AUTO_MIN_ROWS = 1000
#: ``max_delay_s`` when the config does not set one; also the length of the population's periods
#: (and six bins of the current rates) with ``max_delay_s: 0``, where queries do not wait at all
DEFAULT_MAX_DELAY_S = 30.0

#: flag bits whose population rates the per-client tests take into account, and their signals
_POP_BITS = (_HIT, _SMALL, _OOD)
_POP_SIGNALS = (_S_NEAR, _S_BOUNDARY, _S_OOD)
#: flag bits known at intake whose current population rates are read per query (see :mod:`.current`),
#: and their signals (the columns of the pending queue's ``live``); the small-margin bit is left out
#: (see :mod:`.current`)
_LIVE_BITS = (_OOD,)
_LIVE_SIGNALS = (_S_OOD,)
#: bins of ``max_delay_s`` the current rates are read over, and their length in ``max_delay_s``
_LIVE_BINS = 12
_LIVE_BIN_SHARE = 1.0 / 6.0
#: the current rates' null moves in steps of this factor (few distinct critical-count tables)
_LIVE_STEP = 1.1
#: copy-cluster numbers are stored as uint32 (:class:`.clients.ClientRing`)
_CLUSTER_WRAP = 1 << 32
_FLAG_NAMES = ("near_duplicate", "small_margin", "ood", "near_pair", "label_flip")
_NEAR_DUPLICATES = ("knn", "hash", "both")
#: Python objects per tracked client (LRU entry, id strings, ring object and its array headers),
#: budgeted in the memory bound (tracemalloc shows about 2.5 KB on CPython 3.11)
_OBJECT_BYTES_PER_CLIENT = 4096
#: per-slot arrays (``self._<name>``), saved and restored as they are
_SLOT_ARRAYS = ("queries", "retries", "first_ts", "last_ts", "counts", "since_ts", "since_q", "evidence", "prada_w",
                "flagged_q", "flagged_ts", "campaign", "campaign_hits")


def population_null(rate: "float | np.ndarray", slack: float) -> "np.ndarray | np.float64":
    """The null rate of a count test at a population's ``rate``: ``slack x rate``, but at most
    halfway from the rate to 1.

    Why: it was ``min(0.5, slack x rate)``. A shift that made two thirds of everybody's queries
    out of distribution left the null at 0.5, and every client whose window had filled with shifted
    queries (the busiest first) was flagged ``ood`` for as long as the shift lasted: 27 of 40 benign
    clients at up to 5 queries/s (tests/test_probing_shift_onset_s33e.py). Halfway to 1 still
    flags a client whose every query is odd among a population at two thirds.

    Examples
    --------
    >>> float(population_null(0.01, 2.0)), float(population_null(0.6, 2.0))
    (0.02, 0.8)

    A float gives a NumPy scalar, an array an array of its shape.
    """
    r = np.asarray(rate, dtype=np.float64)
    return np.minimum(slack * r, (1.0 + r) / 2.0)


def population_rate(null: float, slack: float) -> float:
    """The population's rate whose :func:`population_null` is ``null`` (its inverse).

    Why: the benign share a client's verdict states was ``null / slack``, which halved the
    population's rate once the null was capped halfway to 1 (0.48 where the population showed
    0.96: on-call read a client at 0.97 as twice the benign share).

    Examples
    --------
    >>> population_rate(0.02, 2.0), population_rate(0.8, 2.0), population_rate(0.98, 2.0)
    (0.01, 0.6000000000000001, 0.96)
    """
    low = null / slack
    return low if low <= 1.0 / (2.0 * slack - 1.0) else 2.0 * null - 1.0


@dataclass(frozen=True)
class ProbingCalibration:
    """Thresholds the detector derived from the reference (read-only, for reports and tests)."""

    knn: KnnCalibration
    ood: OODModel
    boundary: BoundaryCalibration | None
    prada: PradaCalibration | None
    hash_min_shared: int | None
    reference_rows: int


class ProbingDetector(Detector):
    """Per-client detection of query-based adversarial attacks and model stealing.

    Similarity, hashes and the OOD score use the numeric features (or the embedding);
    categorical columns only enter the exact-repeat hash. Regression models and label-only
    outputs get every signal but the boundary ones (no margins).

    Parameters
    ----------
    reference
        Held-out in-distribution rows with the model's probabilities on them (``scores``);
        every threshold is calibrated from it at construction. Without scores the boundary
        signals are off.
    history
        Distinct queries remembered per client (ring buffer; retries are not stored).
    max_clients
        Clients tracked at once (LRU; evictions counted in ``monitor_probing_clients_evicted_total``).
    k
        Neighbours in the mean-kNN statistic; also the number of earlier near-duplicates the
        hash family needs. Keep it above the number of times a benign client resubmits one item.
    knn_statistic
        ``"kth"`` (default): distance to the ``k``-th nearest earlier query, so that fewer than
        ``k`` resubmissions of one item can never make a hit, copies of neighbouring items counted
        once (copy clusters); ``"mean"``: Chen et al.'s mean distance to the ``k`` nearest, every
        copy counted (see :mod:`.neighbours`).
    near_duplicates
        ``"knn"`` (default), ``"hash"`` (Blacklight-style fingerprints) or ``"both"`` (either).
    space
        ``"input"`` (default): similarity, hashes and the OOD score on the standardised numeric
        features; ``"embedding"``: on a user-supplied representation (e.g. the model's penultimate
        layer returned with each prediction), calibrated on ``reference.embedding``.
    sketch_dim
        Width of the sketch the distances are computed in (principal axes of the standardised
        reference; the full standardised input when the input is narrower).
    query_fpr
        False-positive rate per query of the kNN / hash thresholds on the reference.
    client_alpha
        Level of the per-client binomial tests (per query, per signal).
    null_slack
        The null rate of each per-client test is ``null_slack x`` the reference rate, leaving
        room for benign clients whose traffic is narrower than the reference (of the population's
        rate where that is higher, at most halfway from it to 1: :func:`population_null`).
    min_evidence
        Minimum flagged queries before any count-based signal is raised.
    margin_quantile
        Reference quantile of the margin below which a query counts as on the boundary.
    ood_fpr, ood_backend, ood_shrinkage
        False-positive rate of the per-query OOD score (threshold on held-out reference rows),
        its backend (``"mahalanobis"`` or ``"alibi:<Detector>"``, the ``alibi`` extra) and the
        covariance shrinkage of the built-in score.
    prada, prada_window, prada_every, prada_fpr
        PRADA's Shapiro-Wilk test on the last ``prada_window`` minimum distances, run every
        ``prada_every`` new distances, ``delta`` at ``prada_fpr`` per test on simulated benign clients;
        the distances of a client's first ``prada_window / 2`` queries are left out (a cold
        history's spacings failed benign clients' first tests at 27x ``prada_fpr``).
        ``prada``: ``"auto"`` (default) runs it on a reference of at least
        :data:`PRADA_AUTO_MIN_ROWS` rows only (below, its threshold is not reliable; the reason is
        logged and kept in ``prada_off_reason``), ``True`` always, ``False`` never.
    campaign_window, campaign_min_queries, campaign_min_clients, max_campaigns
        Global ring size (near-duplicate queries of all clients); a query is a campaign hit when
        its neighbourhood (within the near-duplicate radius) in the ring holds ``campaign_min_queries`` queries,
        one of them a per-client near-duplicate hit, from each of ``campaign_min_clients``
        accounts (see :class:`.verdict.CampaignIndex`); bound on the campaign table.
    hash_step, hash_window
        Quantisation step (reference standard deviations) and segment width of the hash family.
    hash_lookup, hash_bucket_cap
        How the hash family finds the stored queries sharing a fingerprint: ``"index"`` (default)
        walks a per-client inverted index (:mod:`.fpindex`, hash chains with lazy deletion): work
        per query bounded by ``n_segments x hash_bucket_cap`` whatever the history; ``"scan"``
        compares with every stored query (``O(history)`` per query; the reference the index is
        tested against). The index looks at the ``hash_bucket_cap`` most recent holders of each
        fingerprint's bucket: beyond that an old match may be missed, which only ever lowers
        the count (sensitivity, never a false positive); it answers exactly as the scan when no
        more than ``hash_bucket_cap`` earlier queries hold one fingerprint.
    population_window, population_stride
        Queries of all clients kept to measure the current population (every
        ``population_stride``-th analysed query of each client; 0 turns it off, the
        reference-only behaviour). Each query's sketch is divided by the ratio of the population's
        spacing (k-th nearest query of *other* clients) to the reference's, at most 1, which is
        the same as contracting ``tau``, the near-duplicate radius and the campaign radius; the
        hit, small-margin and OOD tests use the larger of the reference's rate and the
        population's. A population-wide drift that squeezes the inputs then moves the yardstick
        with it instead of making every client a prober (see :mod:`.population`). Event time is
        cut in periods of ``max_delay_s``; a query is analysed with the population as it stood
        two periods before the one it arrived in (the sample of every earlier period added in
        time order, its waiting queries analysed first), whenever its group is analysed: a replay
        in large batches flags the clients live traffic flagged, and the wait costs no extra
        similarity steps (a query two periods old has waited ``max_delay_s`` already).
        The OOD test also uses the population's OOD rate over the ``2 x max_delay_s`` of event
        time before each query arrived (bins of a sixth of ``max_delay_s``), when three established
        clients in four stepped up from their own earlier share (see :mod:`.current`): at the
        onset of a shift every client shares, the periods' population lags, and busy benign
        clients were flagged ``ood`` for a minute or two. The same bins begin a regime when the
        population's OOD share moves by 0.1 or more: PRADA's windows restart in it, and a failing
        PRADA test raises ``stealing`` a minute of event time later unless one set in since (see
        :mod:`.regimes`).
    flush_rows, max_delay_s
        Pending-buffer size per client, and the most event time a query waits for its similarity step
        (0: none; the population's periods are then :data:`DEFAULT_MAX_DELAY_S` long).
    top_k
        Suspicious clients / campaigns exported with an id label.
    raw_client_ids, client_id_salt
        Export raw ids instead of salted hashes; the salt (random per detector and kept in its
        state when not given or empty). Give the same salt to every replica that should agree
        on the exported ids.
    window_s
        Window of the global OOD share.
    seed
        Seeds every random choice (subsamples, splits, hash constants).
    """

    kind = "probing"
    #: 2: the population ring (session 11); a version-1 state loads with a fresh ring (scale 1)
    state_version = 2
    #: with ``hash_lookup: index``, a client's fingerprints are compared directly while it stores
    #: at most this many queries (faster than walking an index at that size, and no index memory
    #: for the many clients that never send more), then through its index, built at that point
    hash_scan_up_to = 256

    @staticmethod
    def min_reference_rows(prada_window: int = DEFAULT_PRADA_WINDOW) -> int:
        """Reference rows the detector calibrates on at least, with PRADA on (its test needs a
        window of distances plus a few rows before it); the defaults leave the detector out
        below it (:func:`monitor.detectors.defaults.default_detectors`)."""
        return int(prada_window) + _PRADA_CALIBRATION_EXTRA

    def __init__(
        self,
        reference: "Reference",
        *,
        history: int = 1000,
        max_clients: int = 10_000,
        k: int = 10,
        knn_statistic: str = "kth",
        near_duplicates: str = "knn",
        space: str = "input",
        sketch_dim: int = 16,
        query_fpr: float = 0.01,
        client_alpha: float = 1e-6,
        null_slack: float = 2.0,
        min_evidence: int = 5,
        margin_quantile: float = 0.05,
        ood_fpr: float = 0.01,
        ood_backend: str = "mahalanobis",
        ood_shrinkage: float = 0.1,
        prada: bool | str = "auto",
        prada_window: int = DEFAULT_PRADA_WINDOW,
        prada_every: int = 50,
        prada_fpr: float = 1e-4,
        campaign_window: int = 2048,
        campaign_min_queries: int = 5,
        campaign_min_clients: int = 3,
        max_campaigns: int = 64,
        hash_step: float = 0.5,
        hash_window: int = 8,
        hash_lookup: str = "index",
        hash_bucket_cap: int = 32,
        population_window: int = 512,
        population_stride: int = 4,
        flush_rows: int = 64,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        top_k: int = 20,
        raw_client_ids: bool = False,
        client_id_salt: str | None = None,
        window_s: float = 3600.0,
        seed: int = 0,
    ) -> None:
        self.history = int(history)
        self.max_clients = int(max_clients)
        self.k = int(k)
        self.knn_statistic = knn_statistic
        self.near_duplicates = near_duplicates
        self.space = space
        self.sketch_dim = int(sketch_dim)
        self.query_fpr = float(query_fpr)
        self.client_alpha = float(client_alpha)
        self.null_slack = float(null_slack)
        self.min_evidence = int(min_evidence)
        self.margin_quantile = float(margin_quantile)
        self.ood_fpr = float(ood_fpr)
        self.ood_backend = ood_backend
        self.ood_shrinkage = float(ood_shrinkage)
        if not (isinstance(prada, bool) or prada == "auto"):
            raise ValueError(f"detector 'probing': prada must be true, false or auto, got {prada!r}")
        #: resolved at calibration (``"auto"``: on with a large enough reference)
        self.prada = prada is not False
        self._prada_auto = prada == "auto"
        #: why PRADA is off ("" when it runs), for the operator
        self.prada_off_reason = "" if prada is not False else "prada: false in the detector's settings"
        self.prada_window = int(prada_window)
        self.prada_every = int(prada_every)
        self.prada_fpr = float(prada_fpr)
        #: distances to a history of fewer queries are left out of PRADA's window: a client's first
        #: ones mix spacings to a history of 1, 2, 3... queries, and failed 27x prada_fpr (stealing.py)
        self._prada_cold = int(prada_window) // 2
        self.campaign_window = int(campaign_window)
        self.campaign_min_queries = int(campaign_min_queries)
        self.campaign_min_clients = int(campaign_min_clients)
        self.max_campaigns = int(max_campaigns)
        self.hash_step = float(hash_step)
        self.hash_window = int(hash_window)
        self.hash_lookup = hash_lookup
        self.hash_bucket_cap = int(hash_bucket_cap)
        self.population_window = int(population_window)
        self.population_stride = int(population_stride)
        self.flush_rows = int(flush_rows)
        self.max_delay_s = float(max_delay_s)
        #: length of the population's periods in event time: ``max_delay_s``, or the default with 0
        self._period_s = self.max_delay_s if self.max_delay_s > 0 else DEFAULT_MAX_DELAY_S
        self.top_k = int(top_k)
        self.raw_client_ids = bool(raw_client_ids)
        self.client_id_salt = client_id_salt
        self.window_s = float(window_s)
        self.seed = int(seed)
        self._validate()
        # no salt (or an empty one, which would make the hashes guessable): a random one, kept in the state
        self._salt = client_id_salt if client_id_salt else secrets.token_hex(16)
        self._lock = threading.RLock()
        self._calibrate(reference)
        self._reset()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None, **params: Any) -> "ProbingDetector":
        """Build from a config section; ``window_s`` and ``seed`` default to the monitor's context."""
        if reference is None:
            raise ValueError(
                "detector 'probing' needs a reference (held-out in-distribution rows with the model's "
                "probabilities): set `reference:` in the config"
            )
        known = set(cls.__init__.__code__.co_varnames[2: cls.__init__.__code__.co_argcount + cls.__init__.__code__.co_kwonlyargcount])
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"detector 'probing': unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if context is not None:
            params.setdefault("window_s", context.window_s)
            params.setdefault("seed", context.seed)
        return cls(reference, **params)

    def _validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(f"detector 'probing': {msg}")

        need(self.history >= 2, f"history must be >= 2, got {self.history}")
        need(self.max_clients >= 1, f"max_clients must be >= 1, got {self.max_clients}")
        need(1 <= self.k < self.history, f"k must be in [1, history), got k={self.k}, history={self.history}")
        need(self.knn_statistic in STATISTICS, f"knn_statistic must be one of {', '.join(STATISTICS)}, not {self.knn_statistic!r}")
        need(self.near_duplicates in _NEAR_DUPLICATES, f"near_duplicates must be one of {', '.join(_NEAR_DUPLICATES)}, not {self.near_duplicates!r}")
        need(self.space in ("input", "embedding"), f"space must be 'input' or 'embedding', not {self.space!r}")
        need(self.sketch_dim >= 1, f"sketch_dim must be >= 1, got {self.sketch_dim}")
        need(0.0 < self.query_fpr < 0.5, f"query_fpr must be in (0, 0.5), got {self.query_fpr}")
        need(self.null_slack >= 1.0, f"null_slack must be >= 1, got {self.null_slack}")
        need(self.min_evidence >= 1, f"min_evidence must be >= 1, got {self.min_evidence}")
        need(1 <= self.flush_rows <= self.history, f"flush_rows must be in [1, history], got {self.flush_rows}")
        need(self.max_delay_s >= 0, f"max_delay_s must be >= 0, got {self.max_delay_s}")
        need(3 <= self.prada_window <= self.history, f"prada_window must be in [3, history], got {self.prada_window}")
        need(self.prada_every >= 1, f"prada_every must be >= 1, got {self.prada_every}")
        need(self.campaign_window >= 2 and self.campaign_min_queries >= 1 and self.campaign_min_clients >= 2,
             "campaign_window >= 2, campaign_min_queries >= 1 and campaign_min_clients >= 2 are required")
        need(self.campaign_min_queries * self.campaign_min_clients <= self.campaign_window,
             "campaign_min_queries x campaign_min_clients must fit in campaign_window")
        need(self.top_k >= 0, f"top_k must be >= 0, got {self.top_k}")
        need(self.hash_lookup in ("index", "scan"), f"hash_lookup must be 'index' or 'scan', not {self.hash_lookup!r}")
        need(self.hash_bucket_cap >= 1, f"hash_bucket_cap must be >= 1, got {self.hash_bucket_cap}")
        need(self.population_window == 0 or self.population_window > 2 * self.k,
             f"population_window must be 0 (off) or > 2k = {2 * self.k}, got {self.population_window}")
        need(self.population_stride >= 1, f"population_stride must be >= 1, got {self.population_stride}")
        need(self.window_s > 0, f"window_s must be > 0, got {self.window_s}")

    def _calibrate(self, reference: "Reference") -> None:
        """Every threshold, from the reference, seeded; seconds at most."""
        rng = np.random.default_rng(self.seed)
        if self.space == "embedding":
            emb = getattr(reference, "embedding", None)
            if emb is None:
                raise ValueError("detector 'probing' with space: embedding needs reference embeddings "
                                 "(Reference.from_arrays(..., embedding=...)), or use space: input")
            rows = np.asarray(emb, dtype=np.float64)
        else:
            rows = np.asarray(reference.numeric, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] == 0:
            raise ValueError("detector 'probing' needs numeric features in the reference (similarity is measured on them)")
        if rows.shape[0] <= max(self.k + 1, 20):
            raise ValueError(f"detector 'probing': the reference has {rows.shape[0]} rows; at least {max(self.k + 2, 21)} are needed. "
                             "Fix: a larger held-out reference, or leave 'probing' out of detectors:")
        self.n_features_ = rows.shape[1]
        #: the reference's numeric feature names, in its column order: live rows are read by these
        #: names (see :meth:`_columns`); empty for the embedding space or a reference without names
        self.feature_names_: tuple[str, ...] = () if self.space == "embedding" else tuple(
            str(n) for n in getattr(reference, "numeric_names", ()) or ())
        if len(self.feature_names_) != self.n_features_:
            self.feature_names_ = ()
        self._columns_of: dict[tuple[str, ...], np.ndarray | None] = {}
        self._sketcher = Sketcher(rows, dim=self.sketch_dim)
        z = self._sketcher.standardise(rows)
        sk = self._sketcher.project(z)
        knn = calibrate_knn(sk, self.k, self.query_fpr, rng, statistic=self.knn_statistic, history=self.history)
        self._tau = knn.tau
        self._near = knn.near
        # the population's spacing is compared with the reference's at the same number of rows
        self._pop_size = min(self.population_window, sk.shape[0])
        #: rows after which a population period ends even if event time has not moved on
        self._pop_period_cap = 2 * max(self.population_window, 1) * self.population_stride
        self._pop_baseline = reference_spacing(sk, self._pop_size, self.k, rng) if self.population_window else float("nan")
        #: the reference's spread per sketch axis (median absolute deviation), what the population's
        #: stretch is measured against (see :meth:`_population_stretch`)
        self._ref_spread = _mad(np.asarray(sk, dtype=np.float64))
        self._no_stretch = np.ones(sk.shape[1])
        self._stretch, self._stretch_epoch = self._no_stretch, 0
        ood = fit_ood(z, self.ood_fpr, rng, backend=self.ood_backend, shrinkage=self.ood_shrinkage)
        self._ood = ood
        # boundary: margins and labels of the reference, flips among its closest natural pairs
        boundary = None
        self._has_scores = reference.scores is not None and np.ndim(reference.scores) == 2
        if self._has_scores:
            sc = np.asarray(reference.scores, dtype=np.float64)
            pred = sc.argmax(axis=1) if sc.shape[1] > 1 else (sc[:, 0] >= 0.5).astype(np.int64)
            sub = rng.choice(sk.shape[0], min(sk.shape[0], 2000), replace=False)
            s_sub = sk[sub]
            n_sub = (s_sub * s_sub).sum(axis=1)
            d2 = pairwise_sq(s_sub, n_sub, s_sub, n_sub).astype(np.float64)
            np.fill_diagonal(d2, np.inf)
            nn = d2.argmin(axis=1)
            boundary = calibrate_boundary(sc[sub], np.sqrt(d2[np.arange(sub.size), nn]), pred[sub] == pred[sub][nn],
                                          margin_quantile=self.margin_quantile)
        self._boundary = boundary
        prada_cal = None
        if self.prada and self._prada_auto and sk.shape[0] < PRADA_AUTO_MIN_ROWS:
            self.prada = False
            self.prada_off_reason = (
                f"detector 'probing': PRADA (the model-stealing normality test) is off: its threshold is calibrated on "
                f"simulated clients drawn from the reference, and with {sk.shape[0]} reference rows (under "
                f"{PRADA_AUTO_MIN_ROWS}) they are too alike for it to hold its false-alarm rate (benign clients were "
                f"flagged as stealing). The other signals run. Fix: a reference of at least {PRADA_AUTO_MIN_ROWS} held-out "
                f"rows, or prada: true to run it anyway")
            log.warning("%s", self.prada_off_reason)
        if self.prada:
            need = self.min_reference_rows(self.prada_window)
            if sk.shape[0] < need:
                raise ValueError(
                    f"detector 'probing': PRADA (model-stealing test) calibrates on at least prada_window + "
                    f"{_PRADA_CALIBRATION_EXTRA} = {need} reference rows, the reference has {sk.shape[0]}. Fix: a larger "
                    f"reference (held-out rows), or prada_window: {max(3, sk.shape[0] - _PRADA_CALIBRATION_EXTRA)} "
                    f"(at most rows - {_PRADA_CALIBRATION_EXTRA}), or prada: false")
            prada_cal = calibrate_prada(sk, self.prada_window, self.history, self._near, self.prada_fpr, rng)
            self._prada_a = shapiro_coefficients(self.prada_window)
        self._prada_cal = prada_cal
        self._fingerprinter: Fingerprinter | None = None
        self._hash_t: int | None = None
        if self.near_duplicates in ("hash", "both"):
            self._fingerprinter = Fingerprinter(self.n_features_, step=self.hash_step, window=self.hash_window, seed=self.seed)
            self._hash_t = self._fingerprinter.calibrate(self._fingerprinter.transform(z), self.k, self.query_fpr)
        self._n_fps = 0 if self._fingerprinter is None else self._fingerprinter.n_segments
        self._uses_index = self._n_fps > 0 and self.hash_lookup == "index"
        self.calibration_ = ProbingCalibration(knn=knn, ood=ood, boundary=boundary, prada=prada_cal,
                                               hash_min_shared=self._hash_t, reference_rows=int(rows.shape[0]))
        # null rates and critical counts of the per-client binomial tests
        slack = self.null_slack
        self._null = np.array([
            min(0.5, slack * self.query_fpr),
            min(0.5, slack * (boundary.small_rate if boundary else 0.5)),
            min(0.5, slack * (boundary.flip_rate if boundary else 0.5)),
            np.nan,
            min(0.5, slack * self.ood_fpr),
            np.nan,
        ])
        self._crit = np.stack([critical_counts(self.history, self._null[s], self.client_alpha, self.min_evidence)
                               for s in _COUNT_SIGNALS.tolist()])
        self._count_enabled = np.array([True, boundary is not None, True, boundary is not None])
        self._null_ref, self._crit_ref = self._null.copy(), self._crit.copy()
        #: the benign rates the reference nulls stand for (a null is capped at one half)
        self._rate_ref = np.array([self.query_fpr, boundary.small_rate if boundary else 0.5,
                                   boundary.flip_rate if boundary else 0.5, np.nan, self.ood_fpr, np.nan])

    def _reset(self) -> None:
        mc = self.max_clients
        self._clients = ClientTable(mc, salt=self._salt, raw_ids=self.raw_client_ids)
        self._rings: list[ClientRing | None] = [None] * mc
        self._ring_bytes = 0  # sum of the rings' (and fingerprint indexes') nbytes, kept as they are made, grown and dropped
        #: per-slot inverted index of the ring's fingerprints (hash family with hash_lookup "index")
        self._fp_index: list[FingerprintIndex | None] = [None] * mc
        self._pending = PendingQueue(mc, self._sketcher.dim, self._n_fps, start=min(1024, mc * (self.flush_rows + 1)))
        self._queries = np.zeros(mc, dtype=np.int64)
        self._retries = np.zeros(mc, dtype=np.int64)
        self._first_ts = np.full(mc, np.nan)
        self._last_ts = np.full(mc, np.nan)
        self._counts = np.zeros((mc, 5), dtype=np.int64)  # windowed counts of the flag bits
        self._since_ts = np.full((mc, len(SIGNALS)), np.nan)
        self._since_q = np.zeros((mc, len(SIGNALS)), dtype=np.int64)  # 0: signal not raised
        self._evidence = np.zeros((mc, len(SIGNALS)), dtype=np.int64)
        self._prada_w = np.full(mc, np.nan)
        self._flagged_q = np.zeros(mc, dtype=np.int64)  # query number of the client's first raised signal (0: never)
        self._flagged_ts = np.full(mc, np.nan)
        self._campaign = np.full(mc, -1, dtype=np.int64)
        self._campaign_hits = np.zeros(mc, dtype=np.int64)
        #: the highest null rates a client's queries were judged at while the population raised
        #: them, and the query number until which its window may still hold such queries
        #: (see :meth:`_held_crit`; 0: none held)
        self._held_null = np.full((mc, len(SIGNALS)), np.nan)
        self._held_until = np.zeros(mc, dtype=np.int64)
        self._held_crits: dict[bytes, np.ndarray] = {}
        self._suspicious: set[int] = set()
        self._evicted_verdicts: deque[ClientVerdict] = deque(maxlen=max(self.top_k, 100))
        self._campaigns = CampaignIndex(self.campaign_window, self._sketcher.dim, self._near, self.campaign_min_queries,
                                        self.campaign_min_clients, self.max_campaigns)
        self._campaign_rows: list[tuple[np.ndarray, ...]] = []
        self._flag_totals = np.zeros(5, dtype=np.int64)
        self._analysed = 0
        self._retry_total = 0
        self._no_embedding = 0
        self._told_no_embedding = False
        self._ood_window = SlidingWindow(self.window_s, shape=(2,), n_slots=12)
        self._clock = -np.inf
        self._pop = (PopulationScale(self._pop_size, self._sketcher.dim, self.k, self._pop_baseline, every=128, bits=_POP_BITS,
                                     distinct_bits=(_SMALL, _OOD), near_bit=_NEAR) if self.population_window else None)
        self._pop_gen = 0
        self._current = (CurrentRates(self._period_s * _LIVE_BIN_SHARE, _LIVE_BINS, _LIVE_BITS, max_owners=mc) if self.population_window else None)
        #: PRADA's windows judged within one regime of the population's inputs (see :mod:`.regimes`)
        self._regimes = (PradaRegimes(mc, self._current.bins * self._current.bin_s, self._current.bin_s, warm=self.prada_window)
                         if self.prada and self._current is not None else None)
        self._live_crits: dict[bytes, np.ndarray] = {}
        #: sampled queries (sketch, owner, flags, ts, query number) by the period they arrived in,
        #: added to the population when that period is closed (:meth:`_close_through`)
        self._pop_rows: dict[float, list[tuple[np.ndarray, ...]]] = {}
        #: the period event time is in (arrival order)
        self._pop_period: float | None = None
        self._pop_period_end: float | None = None  # event time from which the next period begins
        self._pop_period_rows = 0  # rows that arrived in the current period
        #: the population's (scale, null rates, critical counts, PRADA's stretch and its number) for
        #: queries of each period from the key on (after closing the key minus 2); older periods: the
        #: reference's
        self._pop_stats: dict[float, tuple[float, np.ndarray, np.ndarray, np.ndarray, int]] = {}
        self._null, self._crit = self._null_ref.copy(), self._crit_ref.copy()

    # -- read-only results -----------------------------------------------------------------------
    @property
    def population_scale(self) -> float:
        """The current population's spacing over the reference's, in [:data:`.population.MIN_SCALE`, 1]
        (1 when off): queries are divided by it before the per-client step, which is the same as
        multiplying ``tau`` and the near-duplicate radius by it, and keeps queries stored under one
        scale comparable with later ones."""
        return 1.0 if self._pop is None else self._pop.scale

    @property
    def tau(self) -> float:
        """kNN statistic threshold (sketch units, divided by :attr:`population_scale`), at ``query_fpr`` on the reference."""
        return self._tau

    @property
    def near_radius(self) -> float:
        """Near-duplicate radius (sketch units, divided by :attr:`population_scale`)."""
        return self._near

    @property
    def clients_tracked(self) -> int:
        return len(self._clients)

    @property
    def evictions(self) -> int:
        return self._clients.evictions

    @property
    def bytes_per_query(self) -> int:
        """Bytes one stored query costs in a client's ring (with the hash family's index, its
        links and its share of the bucket heads at full history, rounded up)."""
        ring = 4 * self._sketcher.dim + 4 + 2 + 4 + 1 + 4 + 4 * self._n_fps  # sketch, norm, label, hash, flags, cluster
        if not self._uses_index:
            return ring
        return ring - (-FingerprintIndex.bytes_at_full(self._n_fps, self.history) // self.history)

    @property
    def memory_bound_bytes(self) -> int:
        """Upper bound of the state's memory under the configured caps: arrays at full history
        plus the Python objects of each tracked client (ids, ring objects; measured at about
        2.5 KB per client on CPython 3.11, budgeted at 4 KB)."""
        pending_row = self._pending.row_bytes
        per_client = (self.history * self.bytes_per_query + 4 * self.prada_window
                      + 2 * (self.flush_rows + 1) * pending_row  # the shared pending buffer doubles up to its bound
                      + 8 * (9 + 4 * len(SIGNALS) + 5)  # per-slot scalars (and the rates held, _held_crit)
                      + (0 if self._regimes is None else self._regimes.bytes_per_client())
                      + _OBJECT_BYTES_PER_CLIENT)
        pop = 0 if self._pop is None else self._pop.nbytes
        if self._pop is not None:  # samples waiting for their period to close: at most 2 x size in each of 3 periods
            pop += 3 * 2 * (self._pop.size + 1) * (4 * self._sketcher.dim + 8 + 1 + 8 + 8)
        if self._current is not None:
            pop += self._current.bound_bytes()
        return int(self.max_clients * per_client + self._campaigns.nbytes + pop)

    @property
    def state_nbytes(self) -> int:
        """Array memory held now (rings, pending buffers, per-slot arrays, campaign and population rings)."""
        rings = self._ring_bytes  # kept incrementally: summing 10,000 rings at every export cost ~6 ms
        pend = self._pending.nbytes
        slots = sum(getattr(self, "_" + a).nbytes for a in _SLOT_ARRAYS) + self._held_null.nbytes + self._held_until.nbytes
        slots += 0 if self._regimes is None else self._regimes.nbytes
        pop = (0 if self._pop is None else self._pop.nbytes) + (0 if self._current is None else self._current.nbytes)
        return int(rings + pend + slots + self._campaigns.nbytes + pop + self.population_waiting_bytes)

    @property
    def population_waiting_bytes(self) -> int:
        """Sampled queries waiting for their period to close (at most twice ``population_window``
        in each of the three open periods): they come and go with the periods."""
        return int(sum(a.nbytes for parts in self._pop_rows.values() for part in parts for a in part))

    @property
    def pending_queries(self) -> int:
        return len(self._pending)

    def client_key(self, client: Any) -> str:
        """The id under which ``client`` appears in metrics and verdicts (salted hash or raw),
        through the client table's own key, so that an id longer than
        :data:`monitor.labels.MAX_ID_CHARS` (a bearer token) maps to the digest it is tracked by."""
        return self._clients.display_key(client)

    # -- update ----------------------------------------------------------------------------------
    def update(self, batch: "Batch") -> None:
        if len(batch) == 0:
            return
        with self._lock:
            if self.space == "embedding":
                batch = self._with_embedding(batch)
                if len(batch) == 0:
                    return
            step = self.max_clients  # a batch never holds more distinct clients than the LRU
            for part, period in self._periods(np.asarray(batch.ts, dtype=np.float64)):
                if period is not None:
                    self._enter_period(period)
                for start in range(part.start, part.stop, step):
                    self._update_rows(batch, slice(start, min(start + step, part.stop)))
            self._campaign_step()
            self._flush_due(float(np.max(batch.ts)))

    def _periods(self, ts: np.ndarray) -> list[tuple[slice, float | None]]:
        """The batch's rows cut where a new population period begins, each part with the period it
        starts (None: the current one). Periods are numbered 0, 1, 2... in arrival order; one ends
        when a row's timestamp reaches the period's end (the next multiple of ``max_delay_s``, and
        one ``max_delay_s`` later at most than the previous end, so that one row stamped hours ahead
        does not move the periods hours on), or when it has taken :attr:`_pop_period_cap` rows (a
        clock that stalls). Only the arrival order decides, never the batching."""
        n = ts.shape[0]
        if self._pop is None or n == 0:
            return [(slice(0, n), None)]
        length = self._period_s
        if self._pop_period is None:
            self._pop_period, self._pop_period_rows = 0.0, 0
        if self._pop_period_end is None:  # the first row (or a state saved without it)
            t0 = float(ts[0])
            self._pop_period_end = (np.floor(t0 / length) + 1.0) * length if np.isfinite(t0) else np.inf
        cap = self._pop_period_cap
        last = float(ts.max()) if n > 1 else float(ts[0])
        if not last >= self._pop_period_end and self._pop_period_rows + n < cap:  # the usual case
            self._pop_period_rows += n
            return [(slice(0, n), None)]
        out: list[tuple[slice, float | None]] = []
        period, end, rows = self._pop_period, self._pop_period_end, self._pop_period_rows
        start, new = 0, None
        while True:
            hits = np.flatnonzero(ts[start:] >= end)
            stop = min(start + int(hits[0]) if hits.size else n, start + cap - rows)
            if stop > start:
                out.append((slice(start, stop), new))
            rows += stop - start
            if stop >= n:
                break
            period += 1.0  # a new period begins with row ``stop``
            if ts[stop] >= end:
                # one period of event time at most: a row stamped hours ahead (a client's clock) ends
                # one period, not the next few hundred; after a real gap, time catches up a period a row
                end = min((np.floor(float(ts[stop]) / length) + 1.0) * length, end + length)
            rows, start, new = 0, stop, period
        self._pop_period_end, self._pop_period_rows = end, rows
        return out

    def _enter_period(self, period: float) -> None:
        """Event time entered ``period``: the periods up to two before it are closed."""
        self._pop_period = period
        self._close_through(period - 2.0)

    def _close_through(self, last: float) -> None:
        """Close every period up to ``last``: its waiting queries analysed (each with its own
        period's population), then its sample added to the population in time order, and the
        population that results recorded for the queries of two periods later."""
        if self._pop is None:
            return
        todo = sorted({p for p in self._pop_rows if p <= last} | set(self._pending.periods_upto(last)))
        for p in todo:
            self._run(self._pending.slots_upto(p))
            self._population_step(p)
            self._pop_stats[p + 2.0] = (self._pop.scale, self._null, self._crit, self._stretch, self._stretch_epoch)
        # what queries still to be analysed can need: periods from last + 1 on, and the one before
        keep = [k for k in self._pop_stats if k > last + 1.0]
        older = [k for k in self._pop_stats if k <= last + 1.0]
        if older:
            keep.append(max(older))
        self._pop_stats = {k: self._pop_stats[k] for k in sorted(keep)}

    def _stats_for(self, period: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
        """(scale, null rates, critical counts, PRADA's stretch and its number) for queries that
        arrived in ``period``."""
        best = None
        for k in self._pop_stats:  # a handful of keys, in increasing order
            if k > period:
                break
            best = k
        if best is None:
            return 1.0, self._null_ref, self._crit_ref, self._no_stretch, 0
        return self._pop_stats[best]

    def _with_embedding(self, batch: "Batch") -> "Batch":
        """The rows that came with a usable embedding (all of them finite); the others are counted
        (``monitor_probing_queries_total{outcome="no_embedding"}``) and not analysed. A drain
        without any used to fail the whole update, a detector error per drain."""
        emb = batch.embedding
        keep = np.zeros(len(batch), dtype=bool) if emb is None else np.isfinite(emb).all(axis=1)
        if keep.all():
            return batch
        missing = int(len(batch) - keep.sum())
        if not self._told_no_embedding:  # once a process (the count goes on): it pages nobody
            self._told_no_embedding = True
            log.warning("detector 'probing' (space: embedding): %d of %d queries came without a usable embedding and are "
                        "not analysed (counted in monitor_probing_queries_total{outcome=\"no_embedding\"}). Fix: return "
                        "an embedding with each prediction (watch(embedding=...), or the event's \"embedding\"), or use "
                        "space: input", missing, len(batch))
        self._no_embedding += missing
        return batch.rows(np.flatnonzero(keep))

    def _columns(self, batch: "Batch") -> np.ndarray | None:
        """The batch's numeric columns holding the reference's features, in the reference's order
        (None: read as they are). Why: the rows were read by position, and a DataFrame whose
        columns came in another order than the reference's (its schema is learned from the first
        live one) was standardised column by column against the wrong features: every query out
        of distribution, silently; one with an extra numeric column (an id a ColumnTransformer
        drops) failed every update. Inputs without the reference's names (arrays read as ``f0``..)
        keep the positional reading (their width checked by :meth:`_inputs`)."""
        names = tuple(str(n) for n in getattr(batch, "numeric_names", ()) or ())
        if not self.feature_names_ or names == self.feature_names_ or names == tuple(f"f{i}" for i in range(len(names))):
            return None  # unnamed arrays (f0..): their columns are the reference's by position
        if names in self._columns_of:
            return self._columns_of[names]
        where = {n: j for j, n in enumerate(names)}
        missing = [n for n in self.feature_names_ if n not in where]
        if not missing:
            cols: np.ndarray | None = np.array([where[n] for n in self.feature_names_], dtype=np.intp)
        elif len(names) == self.n_features_:
            # other names for some of as many columns (arrays against a named reference; unnamed
            # numeric columns, f0.., beside a text feature's descriptors named alike): the names
            # both have by name, the others by position among the rest. All by position, a
            # reference's texts in another order than the live ones compared one text's
            # descriptors with another's, and every query read as out of distribution
            known = set(self.feature_names_)
            rest = iter(j for j, n in enumerate(names) if n not in known)
            cols = np.array([where[n] if n in where else next(rest) for n in self.feature_names_], dtype=np.intp)
        else:
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            raise ValueError(
                f"detector 'probing': the inputs lack the reference's numeric features {shown} (their numeric features: "
                f"{', '.join(names[:8]) or 'none'}{'...' if len(names) > 8 else ''}). Fix: send every feature the "
                "reference has, under its name, or build the reference from the columns the model receives")
        if len(self._columns_of) < 64:  # a few layouts in practice; bounded whatever arrives
            self._columns_of[names] = cols
        return cols

    def _inputs(self, batch: "Batch", rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """The rows in the similarity space, and what the exact-repeat hash reads."""
        raw = np.asarray(batch.numeric[rows], dtype=np.float64)
        if self.space == "embedding":
            assert batch.embedding is not None  # rows without one are left out in update()
            x = np.asarray(batch.embedding[rows], dtype=np.float64)
            what = "embedding columns"
            exact_of = np.hstack([raw.reshape(x.shape[0], -1), x])
        else:
            cols = self._columns(batch)
            if cols is not None:
                raw = raw[:, cols]
            x, what, exact_of = raw, "numeric features", raw
        if x.ndim != 2 or x.shape[1] != self.n_features_:
            raise ValueError(
                f"detector 'probing': batch has {x.shape[1] if x.ndim == 2 else '?'} {what}, the reference "
                f"has {self.n_features_}; the reference must have the model's columns in the same order"
            )
        return x, exact_of

    def _update_rows(self, batch: "Batch", rows: slice) -> None:
        x, exact_of = self._inputs(batch, rows)
        n = x.shape[0]
        ts = np.asarray(batch.ts[rows], dtype=np.float64)
        z = self._sketcher.standardise(x)
        sk = self._sketcher.project(z)
        skn = np.einsum("ij,ij->i", sk, sk)
        cat = batch.categorical[rows] if batch.categorical is not None and batch.categorical.size else None
        ex = exact_hash(exact_of, cat, seed=self.seed)
        flags = np.zeros(n, dtype=np.uint8)
        ood = self._ood.flags(z)
        flags[ood] |= _OOD
        labels = np.full(n, -1, dtype=np.int16)
        scores = batch.scores[rows] if batch.scores is not None else None
        if self._boundary is not None and scores is not None and np.ndim(scores) == 2 and scores.shape[0] == n:
            flags[margins(scores) < self._boundary.small_margin] |= _SMALL
            pred = batch.predicted[rows] if batch.predicted is not None else scores.argmax(axis=1)
            labels = np.asarray(pred, dtype=np.int64).clip(-1, 32767).astype(np.int16)
        fps = self._fingerprinter.transform(z) if self._fingerprinter is not None else np.zeros((n, 0), dtype=np.uint32)
        self._ood_window.add(ts, ood.astype(np.int64))
        lookup = self._clients.lookup(np.asarray(batch.client[rows], dtype=object))
        for slot, serial, name in lookup.evicted:
            self._evict(slot, serial, name)
        for slot in lookup.created:
            self._fresh(slot)
        slots = lookup.slots
        np.fmin.at(self._first_ts, slots, ts)
        np.fmax.at(self._last_ts, slots, ts)
        self._pending.append(slots, ts, sk, skn, ex, labels, flags, fps,
                             0.0 if self._pop_period is None else self._pop_period, self._live_nulls(ts, slots, flags))
        self._run(self._pending.due(self.flush_rows, -np.inf))

    def _live_nulls(self, ts: np.ndarray, slots: np.ndarray, flags: np.ndarray) -> np.ndarray | None:
        """The null rates of the :data:`_LIVE_SIGNALS` tests the current population sets for each
        arriving query (``null_slack x`` its rate, on a grid of :data:`_LIVE_STEP` above the
        reference's null; NaN where not above it): see :mod:`.current`; and, last, the regimes begun
        when it arrived."""
        if self._current is None:
            return None
        rates, regime = self._current.stamp_regimes(ts, self._clients.serial[slots], flags)
        ref = self._null_ref[list(_LIVE_SIGNALS)]
        with np.errstate(invalid="ignore", divide="ignore"):
            live = population_null(rates, self.null_slack)
            steps = np.floor(np.log(live / ref) / np.log(_LIVE_STEP))
            # not redundant: within an ulp or two of a grid point, ref x step**steps rounds above
            # ``live`` (1,419 of 18.7 million values checked, none of them from shares of <= 400 rows);
            # the minimum keeps the null at or below the population's own
            nulls = np.where(steps > 0, np.minimum(live, ref * _LIVE_STEP ** steps), np.nan)
        return np.hstack([nulls, regime[:, None].astype(np.float64)])  # the regime: PRADA's (see :mod:`.regimes`)

    def _fresh(self, slot: int) -> None:
        ring = self._rings[slot]
        if ring is not None:
            self._ring_bytes -= ring.nbytes
        self._rings[slot] = None
        index = self._fp_index[slot]
        if index is not None:
            self._ring_bytes -= index.nbytes
        self._fp_index[slot] = None
        self._pending.drop(slot)
        self._queries[slot] = 0
        self._retries[slot] = 0
        self._first_ts[slot] = np.nan
        self._last_ts[slot] = np.nan
        self._counts[slot] = 0
        self._since_ts[slot] = np.nan
        self._since_q[slot] = 0
        self._evidence[slot] = 0
        self._prada_w[slot] = np.nan
        if self._regimes is not None:
            self._regimes.reset(slot)
        self._flagged_q[slot] = 0
        self._flagged_ts[slot] = np.nan
        self._campaign[slot] = -1
        self._campaign_hits[slot] = 0
        self._held_null[slot] = np.nan
        self._held_until[slot] = 0
        self._suspicious.discard(slot)

    def _evict(self, slot: int, serial: int, name: str) -> None:
        """The LRU gives this slot to a new client: finish its queries, keep its last verdict."""
        if self._pending.count[slot]:
            for s, rows in self._pending.take(np.array([slot])):
                self._process(s, rows, serial)
            self._campaign_step()
        if self._regimes is not None:
            for w, _, qn, ts in self._regimes.take(slot, self._current.regime, self._current.regime_starts):  # type: ignore[union-attr]
                self._prada_apply(slot, w, ts, qn)
        if slot in self._suspicious:
            v = self._verdict(slot)
            self._evicted_verdicts.append(ClientVerdict(**{**v.__dict__, "client": name, "evicted": True}))
        self._fresh(slot)

    def _run(self, slots: np.ndarray) -> None:
        """The similarity step of the given clients' waiting queries (in chunks of at most ``history``)."""
        if slots.size == 0:
            return
        for slot, rows in self._pending.take(slots):
            n = len(rows)
            for start in range(0, n, self.history):
                self._process(slot, rows if n <= self.history else rows.part(slice(start, start + self.history)))

    def _flush_due(self, now: float) -> None:
        """Run the similarity step of clients whose oldest pending query waited ``max_delay_s``."""
        self._clock = max(self._clock, now)
        self._run(self._pending.due(self.flush_rows, now - self.max_delay_s))
        self._campaign_step()
        self._prada_due()

    def flush(self) -> None:
        """Run the similarity step of every pending query now (tests, checkpoints, shutdown). PRADA
        tests held for the population's regime stay held (:mod:`.regimes`): a flush decides nothing
        that arrivals would decide otherwise."""
        with self._lock:
            self._run(self._pending.waiting())
            self._campaign_step()
            self._prada_due()

    # -- the per-client similarity step ------------------------------------------------------------
    def _process(self, slot: int, rows: Rows, serial: int | None = None) -> None:
        """The similarity step of one client's waiting queries (``serial``: its id when the slot
        was just given to another client), each with the population of the period it arrived in
        (queries arrive in order, so a group is at most a few runs of one period each; analysing
        a client's queries in several groups gives what one group gives)."""
        # where the period or the stamp changes, a NaN stamp (no current rate) equal to another:
        # compared in place (it was a nan_to_num(nan=-1) copy of the stamps: the same, as none is -1)
        period, before, after = rows.period, rows.live[:-1], rows.live[1:]
        change = (np.diff(period) != 0) | ((after != before) & ~(np.isnan(after) & np.isnan(before))).any(axis=1)
        if change.any():
            cuts = (np.flatnonzero(change) + 1).tolist()
            for a, b in zip([0, *cuts], [*cuts, period.shape[0]]):
                self._process_part(slot, rows.part(slice(a, b)), serial)
        else:
            self._process_part(slot, rows, serial)

    def _process_part(self, slot: int, rows: Rows, serial: int | None) -> None:
        m = len(rows)
        if m == 0:
            return
        period = float(rows.period[0])
        scale, null, crit, stretch, units = self._stats_for(period)
        crit = self._held_crit(slot, int(self._queries[slot]), m, null, crit)
        live = self._live_crit(null, rows.live[0, :len(_LIVE_SIGNALS)])
        if live is not None:  # not held: the periods' population takes over within a few periods, and holds
            crit = np.maximum(crit, live)
        ring = self._rings[slot]
        if ring is None:
            ring = self._rings[slot] = ClientRing(self.history, self._sketcher.dim, self._n_fps, self.prada_window)
            self._ring_bytes += ring.nbytes
        ts, ex = rows.ts, rows.exact
        q0 = int(self._queries[slot])
        self._queries[slot] = q0 + m
        f = ring.filled
        # in the population's units: a drift that squeezes everybody's inputs leaves the spacing the
        # thresholds were calibrated on (and the stored queries were divided by the scale of their time)
        raw = rows.sketch
        x, xn = (raw, rows.norm) if scale == 1.0 else (raw * np.float32(1.0 / scale), rows.norm * np.float32(1.0 / scale ** 2))
        # 1. neighbours among the client's earlier distinct queries; exact repeats (retries) are
        # recognised on the way and kept out of everything but their own counter
        nb = group_neighbours(x, xn, ring.sketch_t[:, :f], ring.norm[:f], self.k, self._tau, self.knn_statistic,
                              exact=ex, stored_exact=ring.exact[:f], near=self._near, stored_cluster=ring.cluster[:f],
                              next_cluster=ring.next_cluster)
        cluster = nb.cluster
        ring.next_cluster = nb.next_cluster % _CLUSTER_WRAP
        n_rep = int(nb.repeat.sum())
        flags = rows.flags.copy()
        lab = rows.label
        fps = rows.fps if self._n_fps else None
        qn_k = q0 + 1 + np.arange(m)
        ts_k, ex_k = ts, ex
        if n_rep:
            self._retries[slot] += n_rep
            self._retry_total += n_rep
            keep = np.flatnonzero(~nb.repeat)
            if keep.size == 0:
                return
            x, xn, flags, lab, ts_k, qn_k, ex_k = x[keep], xn[keep], flags[keep], lab[keep], ts[keep], qn_k[keep], ex[keep]
            raw = raw[keep]
            fps = fps[keep] if fps is not None else None
            # group positions shift once repeats are dropped: re-map nearest indices into the kept rows
            shift = np.cumsum(nb.repeat)
            nearest = nb.nearest[keep]
            in_group = nearest >= f
            nearest = np.where(in_group, nearest - shift[np.clip(nearest - f, 0, m - 1)], nearest)
            nb = GroupNeighbours(dmin=nb.dmin[keep], nearest=nearest, hit=nb.hit[keep], knn=nb.knn[keep], repeat=nb.repeat[keep])
            cluster = cluster[keep]  # type: ignore[index]
        mk = x.shape[0]
        self._analysed += mk
        if self.near_duplicates != "hash":
            flags[nb.hit] |= _HIT
        index = self._index_of(slot, ring)
        if fps is not None:
            flags[self._hash_close(fps, ring, f, index) >= self.k] |= _HIT
        near = nb.dmin < self._near
        any_near = bool(near.any())
        flags[near] |= _NEAR
        if self._boundary is not None and any_near:
            in_group = lab[np.clip(nb.nearest - f, 0, mk - 1)]
            nn_lab = np.where(nb.nearest < f, ring.label[np.minimum(nb.nearest, f - 1)], in_group) if f else in_group
            flags[near & (lab >= 0) & (nn_lab != lab)] |= _FLIP
        # 3. PRADA's distance set: minimum distances that are not near-duplicates, tested at the
        # query where ``prada_every`` new ones are in (as if queries came one at a time: where a
        # client's queries are cut into groups must not move the test)
        prada_tests: list[tuple[float, int]] = []
        regime = -1 if self._regimes is None else _regime_of(rows.live[0, -1], int(self._regimes.regime[slot]))
        if self.prada:
            far = (~near) & np.isfinite(nb.dmin)
            if f < self._prada_cold:  # distances to a history of fewer than _prada_cold queries stay out
                far &= f + np.arange(mk) >= self._prada_cold
            if self._regimes is not None:  # a window within the population's regime (see :mod:`.regimes`)
                self._regimes.enter(slot, ring, regime, units)
                far &= self._regimes.keep(slot, mk)
            far_idx = np.flatnonzero(far)
            if far_idx.size and stretch is not self._no_stretch and (stretch != 1.0).any():  # the population's units
                dist = _stretched_dmin(x, ring.sketch_t[:, :f], stretch, far_idx)
            else:
                dist = nb.dmin[far_idx].astype(np.float32)
            start = 0
            while start < dist.size:
                stop = min(dist.size, start + max(self.prada_every - ring.prada_new, self.prada_window - ring.prada_n, 1))
                ring.push_prada(dist[start:stop])
                start = stop
                if ring.prada_n >= self.prada_window and ring.prada_new >= self.prada_every:
                    ring.prada_new = 0
                    prada_tests.append((float(shapiro_w(ring.prada, self._prada_a)), int(far_idx[stop - 1])))
        # 4. store, and windowed counts query by query
        self._ring_bytes += ring.reserve(mk)
        if index is not None:
            self._ring_bytes += index.reserve(ring.cap, ring.fps, f)
        pos = ring.positions(mk)
        wraps = f + mk > self.history  # rows being overwritten leave the window counts
        old = np.where(pos < f, ring.flags[pos], 0).astype(np.uint8) if wraps else None
        ring.sketch_t[:, pos] = x.T
        # a near-duplicate adds no independent evidence of an odd input: a client resubmitting one
        # out-of-distribution or borderline item six times has one such item, not six
        stored_flags = np.where(near, flags & ~np.uint8(_SMALL | _OOD), flags) if any_near else flags
        ring.norm[pos], ring.label[pos], ring.exact[pos], ring.flags[pos] = xn, lab, ex_k, stored_flags
        ring.cluster[pos] = cluster % _CLUSTER_WRAP  # type: ignore[operator]
        if fps is not None:
            if index is not None:
                index.insert(fps)
            ring.fps[pos] = fps
        ring.commit(mk)
        self._flag_totals += _BIT_TABLE[flags].sum(axis=0)
        new_b = _BIT_TABLE[stored_flags]
        run = self._counts[slot] + np.cumsum(new_b if old is None else new_b - _BIT_TABLE[old], axis=0)
        self._counts[slot] = run[-1]
        self._test(slot, run, np.minimum(f + 1 + np.arange(mk), self.history), ts_k, qn_k, crit)
        for w, i in prada_tests:
            if self._regimes is None:
                self._prada_apply(slot, w, float(ts_k[i]), int(qn_k[i]))
                continue
            failed = w < self._prada_cal.delta  # type: ignore[union-attr]
            cur = self._current
            for w_, _, qn_, ts_ in self._regimes.result(slot, w, failed, int(qn_k[i]), float(ts_k[i]), regime,
                                                        cur.regime, cur.regime_starts):  # type: ignore[union-attr]
                self._prada_apply(slot, w_, ts_, qn_)
        owner = self._clients.serial[slot] if serial is None else serial
        if self._pop is not None:  # a sample of what everybody sends, for the thresholds of later periods
            take = np.flatnonzero(qn_k % self.population_stride == 0)  # by query number: whatever the grouping
            if take.size:
                bucket = self._pop_rows.setdefault(period, [])
                bucket.append((raw[take], np.full(take.size, owner, dtype=np.int64), stored_flags[take],
                                       np.asarray(ts_k, dtype=np.float64)[take], np.asarray(qn_k, dtype=np.int64)[take]))
                if sum(len(part[3]) for part in bucket) > 2 * self._pop.size:
                    # the ring keeps the last ``size`` of a period's sample in time order: the rest never counts
                    bucket[:] = [_last_in_time_order(bucket, self._pop.size)]
        # 5. candidates for the global campaign ring: queries with a near-duplicate in their own
        # client's history (natural traffic rarely has one, so the ring keeps a long memory of
        # what matters and the global step stays cheap)
        if any_near:
            self._campaign_rows.append((x[near], xn[near], np.full(int(near.sum()), owner, dtype=np.int64),
                                        ts_k[near], np.full(int(near.sum()), slot, dtype=np.int64),
                                        (flags[near] & _HIT) > 0))

    def _prada_apply(self, slot: int, w: float, ts: float, qn: int) -> None:
        """A PRADA test's result (W at query ``qn``, time ``ts``) on the ``stealing`` signal."""
        self._prada_w[slot] = w
        self._set(slot, _S_STEALING, w < self._prada_cal.delta, self.prada_window, ts, qn)  # type: ignore[union-attr]

    def _prada_due(self) -> None:
        """Apply the PRADA tests held until no regime began within ``hold_s`` after them (see :mod:`.regimes`)."""
        if self._regimes is None or not self._regimes.held:
            return
        cur = self._current
        for slot, w, _, qn, ts in self._regimes.due(cur.closed_until, cur.regime, cur.regime_starts):  # type: ignore[union-attr]
            self._prada_apply(slot, w, ts, qn)

    def _population_step(self, period: float) -> None:
        """The sampled queries of ``period`` (and any earlier one left) into the population ring,
        in one call, in event-time order (then client, then query number): the order the clients'
        groups were analysed in depends on the batching, this one does not."""
        if self._pop is None:
            return
        parts = [part for p in sorted(k for k in self._pop_rows if k <= period) for part in self._pop_rows.pop(p)]
        if not parts:
            return
        sketch, owner, flags, ts, qn = _last_in_time_order(parts, self._pop.size)
        self._pop.add(sketch, owner, flags)
        if self._pop.generation != self._pop_gen:
            self._population_nulls()
            self._population_stretch()

    def _population_stretch(self) -> None:
        """PRADA's units: each sketch axis divided by how far three owners in four of the population
        ring spread along it beyond the reference (at least :data:`.population.STRETCH_MIN` times,
        else 1), once a regime has begun (the population moved as a whole); a stretch that moved by
        more than :data:`.population.STRETCH_STEP` restarts the windows (:mod:`.regimes`).

        Why: along a feature every client's inputs stretched (one feature read x40 upstream) the
        minimum distances of natural queries are heavy-tailed, and 14% of benign PRADA windows fell
        below ``delta`` for as long as the shift lasted (4% at x10, 0.04% unshifted; calibrated
        1e-4; 12 clients, five seeds, tests from 6 minutes after the onset); in these units 0.1%
        (x10 and x40), and a Jacobian thief sent into the stretched
        population is flagged at its 200th query, as without a shift (tests/test_probing_unit_change_s39g.py).
        Gated on a regime (three established clients in four stepped in OOD share together), as
        the regimes are: accounts made for an attack, odd from their first query, move nothing alone.
        Limits: the stretch is per sketch axis (the principal axes of the standardised reference
        when the input is wider than ``sketch_dim``: a single stretched feature of a wide input
        spreads over several axes and is only partly undone); it is read from the ring's owners,
        about ``size x stride`` analysed queries after the onset; an attacker holding three in four
        of the ring's owners can set it, as it can begin regimes."""
        if self._regimes is None or self._current is None or self._current.regime == 0:
            return
        new = population_stretch(self._pop.sketch[: self._pop.filled], self._pop.owner[: self._pop.filled],  # type: ignore[union-attr]
                                 self._ref_spread)
        if np.any(np.abs(np.log(new / self._stretch)) > np.log(STRETCH_STEP)):
            self._stretch = self._no_stretch if (new == 1.0).all() else new
            self._stretch_epoch += 1

    def _units(self, stretch: Any) -> np.ndarray:
        """A saved stretch, checked against the sketch's width."""
        out = np.asarray(stretch, dtype=np.float64).reshape(-1)
        if out.shape != self._no_stretch.shape or not (np.isfinite(out) & (out >= 1.0)).all():
            raise ValueError(f"probing state: PRADA's stretch has {out.shape[0]} axes (or values below 1), "
                             f"expected {self._no_stretch.shape[0]} of at least 1")
        return out.copy()

    def _live_crit(self, null: np.ndarray, live: np.ndarray) -> np.ndarray | None:
        """Critical counts at the period's null rates raised to the current population's (see
        :mod:`.current`); None where it is not higher.

        Why not held like the periods' rates (:meth:`_held_crit`): a current rate raised for a
        minute by a few accounts early in the evaluation's run (attack accounts, most of the
        clients then) was held for the next ``history`` queries of every client that saw it, and
        the Jacobian stealing client (320 queries) was never flagged. A shift that lasts is taken
        over by the periods' population, whose rates are held."""
        sig = list(_LIVE_SIGNALS)
        if not (live > null[sig]).any():
            return None
        null = null.copy()
        null[sig] = np.fmax(null[sig], live)
        key = null.tobytes()
        table = self._live_crits.get(key)
        if table is None:
            if len(self._live_crits) >= 64:  # a grid of steps of 10%: few distinct rates in practice
                self._live_crits.clear()
            table = self._live_crits[key] = self._crit_for(null)
        return table

    def _population_nulls(self) -> None:
        """Null rates of the hit, small-margin and OOD tests: ``null_slack x max(reference rate,
        population rate)``; critical counts recomputed where the null moved by more than 10% (of the
        null, or of its complement to 1 above one half).

        Why: a client is a prober when it differs from the clients around it, not only from the
        reference; when a drift makes everybody's queries small-margin (or OOD, or near-duplicate),
        the share every client shows is the population's, and a test against the reference's
        rate would flag them all. Probing does not move the population's rate unless three accounts
        in four show it (a low quantile over accounts, :data:`.population.RATE_QUANTILE`)."""
        self._pop_gen = self._pop.generation  # type: ignore[union-attr]
        rates = self._pop.rates  # type: ignore[union-attr]
        # new arrays, never changed in place: the periods' recorded populations hold the old ones
        self._null, self._crit = self._null.copy(), self._crit.copy()
        for j, s in enumerate(_POP_SIGNALS):
            ref = self._null_ref[s]
            live = float(population_null(float(rates[j]), self.null_slack)) if np.isfinite(rates[j]) else ref
            new = max(ref, live)
            old = float(self._null[s])
            # a move of 10% of the null, or of its complement above one half. Near 1, 10% of the null
            # is more than the room left to 1: one feature read x40 made 96% of the inputs OOD, the
            # null stayed at its first refresh's 0.928 (not 0.98), and benign windows of ~964 OOD
            # queries in 1,000 crossed its critical count (967): 32 of 60 benign clients flagged
            # `ood` for the rest of the shift over 5 seeds (tests/test_probing_unit_change_s39g.py)
            if new == old or (new != ref and abs(new - old) <= 0.1 * min(old, 1.0 - old)):
                continue
            self._null[s] = new
            row = int(np.flatnonzero(_COUNT_SIGNALS == s)[0])
            self._crit[row] = self._crit_ref[row] if new == ref else critical_counts(self.history, new, self.client_alpha, self.min_evidence)

    @property
    def population_rates(self) -> dict[str, float]:
        """The benign rate each count test's null stands for now (the reference's, or the
        population's when higher), by signal."""
        return {SIGNALS[s]: self._benign_rate(s) for s in _POP_SIGNALS}

    def _benign_rate(self, s: int) -> float:
        null = float(self._null[s])
        if not np.isfinite(null):
            return float("nan")
        return float(self._rate_ref[s]) if null == self._null_ref[s] else population_rate(null, self.null_slack)

    def _index_of(self, slot: int, ring: ClientRing) -> FingerprintIndex | None:
        """The client's fingerprint index, built from its ring once it stores more than
        :attr:`hash_scan_up_to` queries (None before, and with ``hash_lookup: scan``)."""
        index = self._fp_index[slot]
        if index is None and self._uses_index and ring.filled > self.hash_scan_up_to:
            index = self._fp_index[slot] = FingerprintIndex(self._n_fps, self.history, self.hash_bucket_cap)
            index.rebuild(ring.fps, ring.filled, ring.head, ring.cap)
            self._ring_bytes += index.nbytes
        return index

    def _hash_close(self, fps: np.ndarray, ring: ClientRing, f: int, index: FingerprintIndex | None) -> np.ndarray:
        """For each of a group's new queries, how many earlier queries of the client (its ``f``
        stored ones, and the group's earlier ones) share at least ``hash_min_shared`` fingerprints."""
        t = int(self._hash_t)  # type: ignore[arg-type]
        if not self._uses_index:  # hash_lookup "scan": every pair, O(history) per query (the reference)
            close = ((shared_counts(fps, fps) >= t) & np.tri(fps.shape[0], k=-1, dtype=bool)).sum(axis=1)
            if f:
                close += (shared_counts(fps, ring.fps[:f]) >= t).sum(axis=1)
            return close
        close = group_close_counts(fps, t, self.hash_bucket_cap)
        if f and index is not None:
            close += index.close_counts(fps, ring.fps, f, t)
        elif f:  # a short ring (at most hash_scan_up_to queries): compare directly, in blocks of rows
            for start in range(0, fps.shape[0], 256):
                close[start:start + 256] += (shared_counts(fps[start:start + 256], ring.fps[:f]) >= t).sum(axis=1)
        return close

    def _held_crit(self, slot: int, q0: int, m: int, null: np.ndarray, crit: np.ndarray) -> np.ndarray:
        """Critical counts for a client's next ``m`` queries (after its ``q0`` first): those of
        their period, or stricter ones while the client's window may still hold queries judged
        when the population's rates were higher.

        Why: the population's rates follow a drift's end within a ring of sampled queries, while a
        client's window holds its last ``history`` queries, for hours at a query a few seconds.
        Judged against the reference's rates again, the drifted queries still in every window
        flagged every benign client (30 of 30 in the on-call study, session 31, after an input
        shift ended: ModelProbingManySuspiciousClients, critical, for as long as the windows took
        to forget). A rate raised for a client's queries is held until ``history`` queries later.
        """
        held_until = int(self._held_until[slot])
        pop = list(_POP_SIGNALS)
        if (null[pop] > self._null_ref[pop]).any():
            held = self._held_null[slot] if held_until > q0 else null
            self._held_null[slot] = np.fmax(held, null)
            self._held_until[slot] = q0 + m + self.history
        elif held_until <= q0:
            return crit
        floor = self._held_null[slot]
        if not (floor > null).any():
            return crit
        key = np.fmax(floor, null).tobytes()
        table = self._held_crits.get(key)
        if table is None:
            if len(self._held_crits) >= 64:  # distinct rates are few (a null moves in steps of 10%)
                self._held_crits.clear()
            table = self._held_crits[key] = self._crit_for(np.fmax(floor, null))
        return np.maximum(crit, table)

    def _test(self, slot: int, run: np.ndarray, window: np.ndarray, ts: np.ndarray, qn: np.ndarray,
              crit_table: np.ndarray) -> None:
        """Binomial tests of the count signals for each query of a group, vectorised over signals.

        A signal is raised at the first query where its count reaches the critical count, and
        lowered (hysteresis) when the latest count falls below half of it.
        """
        count = run[:, _COUNT_COLUMNS]  # (m, 4): hits, small margins, OOD, flips
        active = self._since_q[slot, _COUNT_SIGNALS] > 0
        self._evidence[slot, _COUNT_SIGNALS] = count[-1]
        if not active.any():
            # fast path: critical counts only grow with the window, so if no count reaches the
            # critical count of the group's first query, none is raised in this group
            first = run[0]
            c0 = crit_table[_ROWS4, np.minimum(np.array([window[0], window[0] - first[3], window[0] - first[3], first[3]]),
                                               self.history)]
            if (count.max(axis=0) < np.minimum(c0, crit_table[:, -1])).all() and (run[:, 3] == first[3]).all():
                return
        den = np.empty_like(count)
        den[:, 0] = window
        den[:, 1] = den[:, 2] = window - run[:, 3]  # small margins and OOD: over queries that are not near-duplicates
        den[:, 3] = run[:, 3]  # flips: over near-duplicate pairs
        crit = crit_table[_ROWS4[None, :], np.minimum(den, self.history)]
        passed = count >= crit
        for j in np.flatnonzero(~active & passed.any(axis=0) & self._count_enabled).tolist():
            i = int(np.argmax(passed[:, j]))
            self._raise(slot, int(_COUNT_SIGNALS[j]), float(ts[i]), int(qn[i]))
        for j in np.flatnonzero(active & (count[-1] < crit[-1] // 2)).tolist():
            self._lower(slot, int(_COUNT_SIGNALS[j]))

    def _set(self, slot: int, s: int, raised: bool, evidence: int, ts: float, qn: int) -> None:
        self._evidence[slot, s] = int(evidence)
        if raised and self._since_q[slot, s] == 0:
            self._raise(slot, s, ts, qn)
        elif not raised and self._since_q[slot, s] != 0:
            self._lower(slot, s)

    def _raise(self, slot: int, s: int, ts: float, qn: int) -> None:
        self._since_q[slot, s] = qn
        self._since_ts[slot, s] = ts
        self._suspicious.add(slot)
        if self._flagged_q[slot] == 0 or qn < self._flagged_q[slot]:
            self._flagged_q[slot] = qn
            self._flagged_ts[slot] = ts

    def _lower(self, slot: int, s: int) -> None:
        self._since_q[slot, s] = 0
        self._since_ts[slot, s] = np.nan
        if not self._since_q[slot].any():
            self._suspicious.discard(slot)

    # -- the global step: campaigns across accounts -------------------------------------------------
    def _campaign_step(self) -> None:
        if not self._campaign_rows:
            return
        parts = self._campaign_rows
        self._campaign_rows = []
        x = np.concatenate([p[0] for p in parts])
        xn = np.concatenate([p[1] for p in parts])
        owners = np.concatenate([p[2] for p in parts])
        ts = np.concatenate([p[3] for p in parts])
        slots = np.concatenate([p[4] for p in parts])
        hits = np.concatenate([p[5] for p in parts])
        found = self._campaigns.update(x, xn, owners, ts, self._name_of_serial, hits)
        for old, keep in found.merged:
            self._campaign[self._campaign == old] = keep
        for i in np.flatnonzero(found.cids >= 0).tolist():
            slot = int(slots[i])
            if self._clients.serial[slot] == owners[i]:  # not evicted since
                self._campaign_hits[slot] += 1
        last = float(ts.max())
        for c, serial in found.joined:
            slot = self._slot_of_serial(serial)
            if slot is None:
                continue
            self._campaign[slot] = c
            n = self._campaigns.campaigns[c].accounts.get(serial, 0)
            self._set(slot, _S_CAMPAIGN, True, n, last, int(self._queries[slot]))

    def _slot_of_serial(self, serial: int) -> int | None:
        hit = np.flatnonzero(self._clients.serial == serial)
        return int(hit[0]) if hit.size else None

    def _name_of_serial(self, serial: int) -> str:
        slot = self._slot_of_serial(serial)
        return self._clients.display(slot) if slot is not None else f"evicted-{serial}"

    # -- time --------------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        with self._lock:
            self._ood_window.advance(now)
            self._flush_due(now)
            for c in self._campaigns.expire(now, self.window_s):
                for slot in np.flatnonzero(self._campaign == c).tolist():
                    self._campaign[slot] = -1
                    if self._since_q[slot, _S_CAMPAIGN]:
                        self._lower(slot, _S_CAMPAIGN)

    # -- verdicts ----------------------------------------------------------------------------------
    def _verdict(self, slot: int) -> ClientVerdict:
        sig = []
        ring = self._rings[slot]
        window = 0 if ring is None else ring.filled
        for s, name in enumerate(SIGNALS):
            if self._since_q[slot, s] == 0:
                continue
            expected = self._benign_rate(s)
            detail = ""
            den = window
            if s == _S_FLIPS:
                den = int(self._counts[slot, 3])
                detail = f"{self._evidence[slot, s]} of {den} near-duplicate pairs changed label"
            elif s == _S_STEALING:
                den = self.prada_window
                expected = float("nan")
                detail = f"Shapiro-Wilk W={self._prada_w[slot]:.3f} < {self._prada_cal.delta:.3f} on the last {den} minimum distances"  # type: ignore[union-attr]
            elif s == _S_CAMPAIGN:
                c = int(self._campaign[slot])
                camp = self._campaigns.campaigns.get(c)
                n_acc = 0 if camp is None else len(camp.accounts) + camp.overflow
                den = int(self._queries[slot])
                detail = f"campaign c{c}: near-duplicate cluster over {n_acc} accounts"
            elif s in (_S_BOUNDARY, _S_OOD):
                den = window - int(self._counts[slot, 3])
                detail = f"{self._evidence[slot, s]} of {den} distinct (not near-duplicate) queries (benign share {expected:.3f})"
            else:
                detail = f"{self._evidence[slot, s]} of {den} queries (benign share {expected:.3f})"
            sig.append(SignalEvidence(signal=name, evidence_queries=int(self._evidence[slot, s]), window_queries=int(den),
                                      expected_ratio=expected, since_ts=float(self._since_ts[slot, s]),
                                      since_query=int(self._since_q[slot, s]), detail=detail))
        sig.sort(key=lambda e: -e.evidence_queries)
        c = int(self._campaign[slot])
        camp_id = f"c{c}" if c >= 0 and c in self._campaigns.campaigns and self._campaigns.campaigns[c].since_ts is not None else None
        return ClientVerdict(client=self._clients.display(slot), suspicious=bool(sig), signals=tuple(sig),
                             queries=int(self._queries[slot]), retries=int(self._retries[slot]),
                             first_seen_ts=float(self._first_ts[slot]), last_seen_ts=float(self._last_ts[slot]),
                             first_flagged_query=int(self._flagged_q[slot]), first_flagged_ts=float(self._flagged_ts[slot]),
                             campaign=camp_id)

    def suspicious_clients(self, limit: int = 100) -> list[ClientVerdict]:
        """Clients with at least one raised signal, most evidence first (evicted ones last).

        This is what ``Monitor.suspicious_clients()`` and the sidecar's ``GET /api/v1/clients``
        return (``[v.to_dict() for v in ...]``). Queries still waiting in a pending buffer
        (at most ``flush_rows`` per client, ``max_delay_s`` of event time) are not yet counted.
        """
        with self._lock:
            out = self._ranked(self._suspicious) + list(reversed(self._evicted_verdicts))
            return out[: max(0, int(limit))]

    def _ranked(self, slots: "set[int] | list[int]") -> list[ClientVerdict]:
        """The verdicts of these clients, most signals then most evidence first."""
        live = [self._verdict(s) for s in slots]
        live.sort(key=lambda v: (-len(v.signals), -max(e.evidence_queries for e in v.signals)))
        return live

    def _paging(self) -> list[int]:
        """The suspicious clients that sent a query within the window: what the metrics show.

        Why: evidence is counted in queries, so a prober that stopped (blocked, as the runbook
        advises, or done) kept its verdict, and its page fired for as long as it stayed in the
        client table, whatever on-call did. Silent for ``window_s``, it leaves the series (its alert
        resolves, as an evicted client's does); the clients API still lists it, and a query from
        it pages again."""
        quiet = self._clock - self.window_s
        return [s for s in self._suspicious if not self._last_ts[s] < quiet]

    def verdict(self, client: Any) -> ClientVerdict | None:
        """The current verdict of one client by its raw id (None when not tracked)."""
        with self._lock:
            slot = self._clients.slot_of(client)
            return None if slot is None else self._verdict(slot)

    def campaigns(self) -> list[Campaign]:
        """Campaigns seen (near-duplicate clusters over at least ``campaign_min_clients`` accounts)."""
        with self._lock:
            return self._campaigns.reported()

    # -- metrics -----------------------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        """Analyse every pending query before the next export (see :meth:`Detector.on_tick`)."""
        self.flush()

    def export(self, out: "MetricWriter") -> None:
        with self._lock:
            out.set("monitor_probing_clients_tracked", float(len(self._clients)))
            out.set("monitor_probing_clients_evicted", float(self._clients.evictions))
            out.set("monitor_probing_queries", float(self._analysed), ("analysed",))
            out.set("monitor_probing_queries", float(self._retry_total), ("retry",))
            if self.space == "embedding":
                out.set("monitor_probing_queries", float(self._no_embedding), ("no_embedding",))
            out.set("monitor_probing_pending_queries", float(self.pending_queries))
            for name, total in zip(_FLAG_NAMES, self._flag_totals.tolist()):
                if name != "near_pair":
                    out.set("monitor_probing_query_flags", float(total), (name,))
            paging = self._paging()
            active = self._since_q[paging] > 0 if paging else np.zeros((0, len(SIGNALS)), dtype=bool)
            for s, name in enumerate(SIGNALS):
                out.set("monitor_probing_suspicious_clients", float(active[:, s].sum()), (name,))
            out.set("monitor_probing_suspicious_clients", float(len(paging)), ("any",))
            evidence = []
            if self.top_k:
                for v in self._ranked(paging)[: self.top_k]:
                    # the signal that raised the flag first (among those still raised), not the
                    # strongest: the label is the alert's identity, and a client whose strongest
                    # signal changed (ood, then near_duplicates) resolved its alert and paged anew
                    top = min(v.signals, key=lambda e: (e.since_query, -e.evidence_queries))
                    evidence.append(((v.client, top.signal), float(top.evidence_queries)))
            out.replace("monitor_probing_client_evidence_queries", evidence)
            reported = self._campaigns.reported()
            out.set("monitor_probing_campaigns", float(len(reported)))
            out.replace("monitor_probing_campaign_accounts", [((c.id,), float(c.n_accounts)) for c in reported[: self.top_k]])
            out.set("monitor_probing_state_bytes", float(self.state_nbytes))
            if self._pop is not None:
                out.set("monitor_probing_population_scale", self._pop.scale)
            total = self._ood_window.total()
            seen = float(total.sum())
            if seen >= 50:
                out.set("monitor_probing_ood_ratio", float(total[1]) / seen)
            else:
                out.remove("monitor_probing_ood_ratio")

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            rings = {str(s): r.state_dict() for s, r in enumerate(self._rings) if r is not None}
            return {
                "version": self.state_version,
                "salt": self._salt,
                "clients": self._clients.state_dict(),
                "rings": rings,
                "pending": self._pending.state_dict(),
                **{name: getattr(self, "_" + name).copy() for name in _SLOT_ARRAYS},
                "evicted_verdicts": [v.to_dict() for v in self._evicted_verdicts],
                "campaigns": self._campaigns.state_dict(),
                "flag_totals": self._flag_totals.copy(), "analysed": self._analysed, "retry_total": self._retry_total,
                "no_embedding": self._no_embedding,
                "ood_window": self._ood_window.state_dict(),
                "clock": float(self._clock) if np.isfinite(self._clock) else None,
                "held_null": self._held_null.copy(), "held_until": self._held_until.copy(),
                "population": None if self._pop is None else self._pop.state_dict(),
                "current_rates": None if self._current is None else self._current.state_dict(),
                "prada_regimes": None if self._regimes is None else self._regimes.state_dict(),
                **self._population_periods_state(),
            }

    def _population_periods_state(self) -> dict[str, Any]:
        """The population's periods: where event time is, the samples waiting,
        the recorded populations of the periods still to be analysed, the null rates in force."""
        if self._pop is None:
            return {}
        samples = None
        if self._pop_rows:
            keys = sorted(self._pop_rows)
            cols = [np.concatenate(col) for col in zip(*(part for k in keys for part in self._pop_rows[k]))]
            period = np.concatenate([np.full(sum(len(part[3]) for part in self._pop_rows[k]), k) for k in keys])
            samples = {"period": period, **dict(zip(("sketch", "owner", "flags", "ts", "qn"), cols))}
        stats = None
        if self._pop_stats:
            keys = sorted(self._pop_stats)
            stats = {"period": np.array(keys), "scale": np.array([self._pop_stats[k][0] for k in keys]),
                     "null": np.stack([self._pop_stats[k][1] for k in keys]),
                     "stretch": np.stack([self._pop_stats[k][3] for k in keys]),
                     "stretch_number": np.array([self._pop_stats[k][4] for k in keys], dtype=np.int64)}
        return {"population_period": self._pop_period, "population_period_end": self._pop_period_end, "population_period_rows": self._pop_period_rows,
                "population_samples": samples, "population_stats": stats, "population_null": self._null.copy(),
                "population_stretch": self._stretch.copy(), "population_stretch_number": self._stretch_epoch}

    def _crit_for(self, null: np.ndarray) -> np.ndarray:
        """Critical counts of the count tests at these null rates (the reference's where equal)."""
        crit = self._crit_ref.copy()
        for row, s in enumerate(_COUNT_SIGNALS.tolist()):
            if not (null[s] == self._null_ref[s] or (np.isnan(null[s]) and np.isnan(self._null_ref[s]))):
                crit[row] = critical_counts(self.history, float(null[s]), self.client_alpha, self.min_evidence)
        return crit

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version = int(state.get("version", -1))
        if version not in (1, self.state_version):
            raise ValueError(f"probing state version {state.get('version')!r} is not {self.state_version} (or 1); start from a fresh state")
        for rs in state["rings"].values():
            self._check_ring(rs)
        saved_salt = str(state["salt"])
        if self.client_id_salt and saved_salt != self.client_id_salt and not state["clients"].get("raw_ids", False):
            # the saved clients are known by ids hashed with the old salt, which cannot be hashed again;
            # loading them under it made the configured salt (replicas agreeing on ids, a rotated salt) silently lose
            raise ValueError("probing state was saved with another client_id_salt: its clients are known by ids "
                             "hashed with that one; this detector starts from a fresh state")
        with self._lock:
            self._salt = self.client_id_salt or saved_salt  # a configured salt wins; a random one is kept across restarts
            self._reset()
            self._clients.load_state_dict(state["clients"])
            for key, rs in state["rings"].items():
                ring = self._rings[int(key)] = ClientRing.from_state(self.history, rs)
                self._ring_bytes += ring.nbytes
                self._index_of(int(key), ring)  # derived state: rebuilt from the stored fingerprints, never saved
            period = state.get("population_period")
            self._pending.load_state_dict(state["pending"], period=-np.inf if period is None else float(period))
            for name in _SLOT_ARRAYS:
                cur = getattr(self, "_" + name)
                arr = np.asarray(state[name], dtype=cur.dtype)
                if arr.shape != cur.shape:
                    raise ValueError(f"probing state field {name!r} has shape {arr.shape}, expected {cur.shape} (same max_clients)")
                setattr(self, "_" + name, arr.copy())
            self._suspicious = set(np.flatnonzero((self._since_q > 0).any(axis=1)).tolist())
            hide = bool(state["clients"].get("raw_ids", False)) and not self.raw_client_ids
            for v in state["evicted_verdicts"]:
                verdict = ClientVerdict.from_dict(v)
                if hide:
                    verdict = ClientVerdict(**{**verdict.__dict__, "client": self._clients.hide_raw(verdict.client)})
                self._evicted_verdicts.append(verdict)
            self._campaigns.load_state_dict(state["campaigns"])
            if hide:
                for camp in self._campaigns.campaigns.values():
                    camp.names = {o: self._clients.hide_raw(n) for o, n in camp.names.items()}
            self._flag_totals = np.asarray(state["flag_totals"], dtype=np.int64).copy()
            self._analysed, self._retry_total = int(state["analysed"]), int(state["retry_total"])
            self._no_embedding = int(state.get("no_embedding", 0))  # states before it was counted
            self._ood_window.load_state_dict(state["ood_window"])
            self._clock = -np.inf if state.get("clock") is None else float(state["clock"])
            if state.get("held_null") is not None:  # states saved before it hold no raised rates
                held_null = np.asarray(state["held_null"], dtype=np.float64)
                held_until = np.asarray(state["held_until"], dtype=np.int64)
                if held_null.shape != self._held_null.shape or held_until.shape != self._held_until.shape:
                    raise ValueError(f"probing state field 'held_null' has shape {held_null.shape}, expected "
                                     f"{self._held_null.shape} (same max_clients)")
                self._held_null, self._held_until = held_null.copy(), held_until.copy()
            # version 1 had no population ring: it starts empty (scale 1, the reference's thresholds)
            if self._pop is not None and state.get("population") is not None:
                self._pop.load_state_dict(state["population"])
                if state.get("population_null") is not None:
                    self._pop_gen = self._pop.generation
                    self._null = np.asarray(state["population_null"], dtype=np.float64).copy()
                    self._crit = self._crit_for(self._null)
                else:  # saved before the periods: the rates the ring implies, for every query until a period closes
                    self._population_nulls()
                    self._pop_stats[-np.inf] = (self._pop.scale, self._null, self._crit, self._no_stretch, 0)
            if self._pop is not None:
                self._load_population_periods(state)

    def _check_ring(self, rs: dict[str, Any]) -> None:
        """Refuse a client's saved ring that does not fit this configuration (ValueError: the
        monitor then starts this detector empty and restores the rest).

        Why: a ring saved with a longer ``history``, another ``prada_window``, ``sketch_dim`` or
        hash segmentation loaded without complaint, and every later update raised (an index past
        the new history, a Shapiro-Wilk window of the old length): the detector saw nothing for
        good, and each checkpoint saved the misfit again."""
        cap, filled = int(rs["cap"]), int(rs["filled"])
        dim, width = np.shape(rs["sketch_t"]), np.shape(rs["fps"])
        prada = np.shape(rs["prada"])
        fits = {
            "history": cap <= self.history and filled <= cap,
            "sketch_dim": len(dim) == 2 and dim == (self._sketcher.dim, cap),
            "near_duplicates / hash_window": len(width) == 2 and width == (cap, self._n_fps),
            "prada_window": prada == (self.prada_window,),
            # absent from a state saved before copy clusters (session 34): one per stored query then
            "copy clusters": "cluster" not in rs or np.shape(rs["cluster"]) == (cap,),
        }
        wrong = [name for name, ok in fits.items() if not ok]
        if wrong:
            raise ValueError(f"probing state: a client's stored queries were saved with another {', '.join(wrong)} "
                             f"(ring of {cap} queries, sketch {dim}, fingerprints {width}, PRADA window {prada}); "
                             "this detector starts from a fresh state")

    def _load_population_periods(self, state: dict[str, Any]) -> None:
        current = state.get("current_rates")
        if current is not None and self._current is not None:  # a state saved before it: counts start afresh
            self._current.load_state_dict(current)
        if self._regimes is not None:  # a state saved before regimes: every window of regime 0, as it stood
            self._regimes.load_state_dict(state.get("prada_regimes") if current is not None else None)
        period = state.get("population_period")
        self._pop_period = None if period is None else float(period)
        end = state.get("population_period_end")
        self._pop_period_end = None if end is None else float(end)
        self._pop_period_rows = int(state.get("population_period_rows") or 0)
        samples = state.get("population_samples")
        if samples is not None:
            per = np.asarray(samples["period"], dtype=np.float64)
            cols = (np.asarray(samples["sketch"], dtype=np.float32).reshape(-1, self._sketcher.dim),
                    np.asarray(samples["owner"], dtype=np.int64), np.asarray(samples["flags"], dtype=np.uint8),
                    np.asarray(samples["ts"], dtype=np.float64), np.asarray(samples["qn"], dtype=np.int64))
            for k in np.unique(per).tolist():
                sel = per == k
                self._pop_rows[float(k)] = [tuple(c[sel] for c in cols)]
        stats = state.get("population_stats")
        stretch = state.get("population_stretch")  # saved before PRADA's stretch: none (every window as it was)
        if stretch is not None:
            self._stretch = self._no_stretch if (np.asarray(stretch) == 1.0).all() else self._units(stretch)
            self._stretch_epoch = int(state.get("population_stretch_number") or 0)
        if stats is not None:
            nulls = np.asarray(stats["null"], dtype=np.float64)
            n = nulls.shape[0]
            stretches = stats.get("stretch")
            numbers = np.asarray(stats.get("stretch_number", np.zeros(n)), dtype=np.int64).tolist()
            for i, (k, scale, null) in enumerate(zip(np.asarray(stats["period"], dtype=np.float64).tolist(),
                                                     np.asarray(stats["scale"], dtype=np.float64).tolist(), nulls)):
                st = self._no_stretch if stretches is None or (np.asarray(stretches[i]) == 1.0).all() else self._units(stretches[i])
                self._pop_stats[float(k)] = (float(scale), null.copy(), self._crit_for(null), st, int(numbers[i]))


def _mad(x: np.ndarray) -> np.ndarray:
    """Median absolute deviation of each column about its median (at least a tiny positive value)."""
    return np.maximum(np.median(np.abs(x - np.median(x, axis=0)), axis=0), 1e-9)


def _stretched_dmin(x: np.ndarray, stored_t: np.ndarray, stretch: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For group rows ``rows``: the distance to the nearest stored query (``stored_t``, column-wise)
    or earlier group row, each sketch axis divided by ``stretch``: PRADA's minimum distances in the
    population's units (:meth:`ProbingDetector._population_stretch`).

    >>> x = np.array([[0.0, 0.0], [10.0, 2.0]], dtype=np.float32)
    >>> _stretched_dmin(x, np.array([[0.0], [2.0]], dtype=np.float32), np.array([10.0, 1.0]), np.arange(2)).tolist()
    [2.0, 1.0]
    """
    inv = (1.0 / stretch).astype(np.float32)
    xs = x.astype(np.float32) * inv
    q = xs[rows]
    qn = np.einsum("ij,ij->i", q, q)
    g = pairwise_sq(q, qn, xs, np.einsum("ij,ij->i", xs, xs))
    g[np.arange(x.shape[0])[None, :] >= rows[:, None]] = np.inf  # earlier group rows only
    d2 = g.min(axis=1) if g.shape[1] else np.full(rows.size, np.inf, dtype=np.float32)
    if stored_t.shape[1]:
        ys = (stored_t.astype(np.float32) * inv[:, None]).T
        d2 = np.minimum(d2, pairwise_sq(q, qn, ys, np.einsum("ij,ij->i", ys, ys)).min(axis=1))
    return np.sqrt(d2).astype(np.float32)


def _regime_of(stamp: float, current: int) -> int:
    """The PRADA regime a query was stamped with on arrival; its client's own where it came without
    one (waiting in a state saved without the population)."""
    return int(stamp) if np.isfinite(stamp) else current


def _last_in_time_order(parts: list[tuple[np.ndarray, ...]], keep: int) -> tuple[np.ndarray, ...]:
    """Sampled queries ``(sketch, owner, flags, ts, query number)`` from ``parts``, sorted by
    time, then owner, then query number, the last ``keep`` of them: what the population ring takes
    of a period (it keeps its last ``size`` rows), in an order the batching cannot change."""
    cols = [np.concatenate(col) for col in zip(*parts)]
    order = np.lexsort((cols[4], cols[1], cols[3]))[-keep:]
    return tuple(c[order] for c in cols)
