"""Per-client verdicts (with their evidence) and campaigns spread over several accounts.

A verdict says *which* signal fired, on *how many* of the client's queries, and *since when*
(event time and the client's query number), so that the on-call engineer can judge it and act
(throttle, block, ask). Each per-query signal is a count of flagged queries in the client's
window, compared with what a benign client would show: the reference rate times a slack factor,
tested with an exact binomial tail at level ``client_alpha`` (the critical counts are tabulated
once, so the test costs one array lookup per query). A signal stays raised until its count falls
below half the critical count (hysteresis: a client on the threshold does not flap).

A campaign is a cluster of near-duplicate queries whose members come from at least
``min_clients`` accounts: the signature of one attack split over Sybil accounts, each of which
may stay below the per-client thresholds. It is found with a small global ring of recent
queries from all clients.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from monitor.detectors.probing.neighbours import pairwise_sq
from monitor.stats.matmul import matmul

__all__ = [
    "SIGNALS",
    "SignalEvidence",
    "ClientVerdict",
    "Campaign",
    "critical_counts",
    "CampaignIndex",
    "CampaignUpdate",
]

#: Signals a verdict can carry, in export order.
SIGNALS: tuple[str, ...] = ("near_duplicates", "boundary", "label_flips", "stealing", "ood", "campaign")


@dataclass(frozen=True)
class SignalEvidence:
    """One raised signal of one client.

    Attributes
    ----------
    signal
        One of :data:`SIGNALS`.
    evidence_queries
        Queries supporting it now (in the client's window; for ``campaign``, the client's
        queries inside the campaign's cluster).
    window_queries
        Queries the evidence is counted over (for ``label_flips``, near-duplicate pairs).
    expected_ratio
        Share a benign client shows (the reference's, or the population's when higher), for
        comparison.
    since_ts
        Event time of the query that raised it.
    since_query
        The client's query number (1-based, retries included) that raised it.
    detail
        One line for humans (e.g. ``"W=0.81 < 0.93"``).
    """

    signal: str
    evidence_queries: int
    window_queries: int
    expected_ratio: float
    since_ts: float
    since_query: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """NaN floats become None, so that the dict is strict JSON."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


def _nan(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (float("nan") if v is None and k in _FLOAT_FIELDS else v) for k, v in d.items()}


_FLOAT_FIELDS = {"expected_ratio", "since_ts", "first_seen_ts", "last_seen_ts", "first_flagged_ts"}


@dataclass(frozen=True)
class ClientVerdict:
    """What the detector thinks of one client.

    Attributes
    ----------
    client
        Salted hash of the client id (the raw id only when ``raw_client_ids`` is set).
    suspicious
        True when at least one signal is raised.
    signals
        The raised signals, strongest evidence first.
    queries, retries
        Queries seen from this client (retries included) and how many were exact repeats.
    first_seen_ts, last_seen_ts
        Event times of its first and latest query.
    first_flagged_query, first_flagged_ts
        The client's query number and event time when its first signal was raised (0 / NaN:
        never), kept when signals are later lowered: "queries until detection".
    campaign
        Id of the campaign it belongs to, if any.
    evicted
        True when the client has since been evicted from the LRU (this verdict is its last word).
    """

    client: str
    suspicious: bool
    signals: tuple[SignalEvidence, ...]
    queries: int
    retries: int
    first_seen_ts: float
    last_seen_ts: float
    first_flagged_query: int = 0
    first_flagged_ts: float = float("nan")
    campaign: str | None = None
    evicted: bool = False

    @property
    def signal_names(self) -> tuple[str, ...]:
        return tuple(s.signal for s in self.signals)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the sidecar's ``GET /api/v1/clients``."""
        d = _finite(asdict(self))
        d["signals"] = [s.to_dict() for s in self.signals]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClientVerdict":
        sig = tuple(SignalEvidence(**_nan(s)) for s in d.get("signals", ()))
        return cls(**{**_nan(d), "signals": sig})


@dataclass(frozen=True)
class Campaign:
    """Near-duplicate queries spread over several accounts."""

    id: str
    accounts: tuple[str, ...]  #: member accounts (display ids), most queries first, at most 50
    n_accounts: int
    queries: int  #: campaign hits: queries whose neighbourhood held enough queries of enough accounts
    first_ts: float
    last_ts: float
    since_ts: float | None  #: event time it reached ``min_clients`` accounts (None: not yet)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["accounts"] = list(self.accounts)
        return d


def critical_counts(n_max: int, null_rate: float, alpha: float, min_evidence: int) -> np.ndarray:
    """Smallest flagged count ``c[n]`` with ``P(Binomial(n, null_rate) >= c) <= alpha``, for n = 0..n_max.

    Examples
    --------
    >>> c = critical_counts(100, 0.02, 1e-6, 5)
    >>> int(c[10]), int(c[100])
    (5, 12)
    """
    from scipy.stats import binom

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"client_alpha must be in (0, 1), got {alpha}")
    p = float(min(max(null_rate, 1e-9), 0.999))
    n = np.arange(n_max + 1)
    c = binom.ppf(1.0 - alpha, n, p) + 1.0
    c = np.where(np.isfinite(c), c, n + 1)
    return np.maximum(c, min_evidence).astype(np.int64)


@dataclass
class _CampaignState:
    cid: int
    first_ts: float
    last_ts: float
    queries: int = 0
    accounts: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    overflow: int = 0
    since_ts: float | None = None


@dataclass
class CampaignUpdate:
    """What one :meth:`CampaignIndex.update` found."""

    cids: np.ndarray  #: campaign id of each new query (-1: none)
    joined: list[tuple[int, int]]  #: (campaign id, account serial) pairs that are new
    merged: list[tuple[int, int]]  #: (old id, surviving id) of campaigns found to be one


class CampaignIndex:
    """A small global ring of recent sketches from all clients, to see attacks split over accounts.

    A query is a *campaign hit* when its neighbourhood in the ring (queries within ``radius``, its
    own included) holds, from each of at least ``min_clients`` accounts, at least ``min_queries``
    queries of which at least one is a per-client near-duplicate hit (the account itself has
    probed that neighbourhood: ``k`` of its own earlier queries close by). Those accounts become
    members of the campaign; campaigns whose hits share neighbours are merged (an attack walking
    along the boundary stays one campaign).

    Both conditions keep benign users out: a popular item sent once by many users is not several
    queries per account, and an item resubmitted a few times (fewer than ``k``) by several users
    never makes a per-client hit, however many users share it.

    Parameters
    ----------
    size
        Queries remembered across all clients (memory ``size x (4 * dim + 20)`` bytes).
    dim
        Sketch width.
    radius
        Neighbourhood radius: the detector's near-duplicate radius ``near`` (the radius its queries
        are admitted to the ring by). It was ``tau``, which natural traffic reaches at 1% of
        queries by design: on clustered data three heavy benign accounts made a campaign.
    min_queries
        Queries each member account must have in the neighbourhood.
    min_clients
        Member accounts a neighbourhood needs to be a campaign.
    max_campaigns, max_members
        Bounds on the campaign table and on the accounts kept per campaign.
    """

    def __init__(self, size: int, dim: int, radius: float, min_queries: int, min_clients: int,
                 max_campaigns: int = 64, max_members: int = 256) -> None:
        self.size = int(size)
        self.dim = int(dim)
        self.radius2 = float(radius) ** 2
        self.min_queries = int(min_queries)
        self.min_clients = int(min_clients)
        self.max_campaigns = int(max_campaigns)
        self.max_members = int(max_members)
        self.sketch = np.zeros((self.size, self.dim), dtype=np.float32)
        self.norm = np.zeros(self.size, dtype=np.float32)
        self.owner = np.full(self.size, -1, dtype=np.int64)
        self.cid = np.full(self.size, -1, dtype=np.int64)
        self.hit = np.zeros(self.size, dtype=bool)
        self.head = 0
        self.filled = 0
        self.campaigns: dict[int, _CampaignState] = {}
        self.next_id = 1

    @property
    def nbytes(self) -> int:
        return int(self.sketch.nbytes + self.norm.nbytes + self.owner.nbytes + self.cid.nbytes + self.hit.nbytes)

    def update(self, x: np.ndarray, x_norm: np.ndarray, owners: np.ndarray, ts: np.ndarray,
               name_of: Callable[[int], str], hits: np.ndarray | None = None) -> CampaignUpdate:
        """Add queries (in order; ``hits``: which are per-client near-duplicate hits); find
        campaign hits among them."""
        m, f = x.shape[0], self.filled
        result = CampaignUpdate(np.full(m, -1, dtype=np.int64), [], [])
        if m == 0:
            return result
        within = np.zeros((m, f + m), dtype=bool)
        if f:
            within[:, :f] = pairwise_sq(x, x_norm, self.sketch[:f], self.norm[:f]) < self.radius2
        inner = pairwise_sq(x, x_norm, x, x_norm) < self.radius2
        within[:, f:] = np.tril(inner)  # earlier queries of this update, and the query itself
        cand = np.flatnonzero(within.sum(axis=1) >= self.min_queries * self.min_clients)
        new_hits = np.ones(m, dtype=bool) if hits is None else np.asarray(hits, dtype=bool)
        if cand.size:
            all_owner = np.concatenate([self.owner[:f], owners])
            all_cid = np.concatenate([self.cid[:f], result.cids])
            all_hit = np.concatenate([self.hit[:f], new_hits])
            sub = within[cand]
            cols = np.flatnonzero(sub.any(axis=0))
            acc, inv = np.unique(all_owner[cols], return_inverse=True)
            onehot = np.zeros((cols.size, acc.size), dtype=np.float32)
            onehot[np.arange(cols.size), inv] = 1.0
            near = sub[:, cols].astype(np.float32)
            per = matmul(near, onehot)  # queries of each account in each neighbourhood
            probed = matmul(near * all_hit[cols], onehot)  # ... that are per-client near-duplicate hits
            member = (per >= self.min_queries) & (probed >= 1) & (acc >= 0)[None, :]
            for j in np.flatnonzero(member.sum(axis=1) >= self.min_clients).tolist():
                i = int(cand[j])
                nb = cols[sub[j, cols]]
                c = self._assign(all_cid, nb, float(ts[i]), result)
                camp = self.campaigns[c]
                all_cid[nb] = c
                camp.queries += 1
                camp.last_ts = max(camp.last_ts, float(ts[i]))
                for a, n in zip(acc[member[j]].tolist(), per[j, member[j]].tolist()):
                    if self._add_member(camp, int(a), int(n), name_of):
                        result.joined.append((c, int(a)))
            self.cid[:f] = all_cid[:f]
            result.cids = all_cid[f:].copy()
            result.joined = self._resolve(result)
        self._write(x, x_norm, owners, result.cids, new_hits)
        return result

    def _resolve(self, result: CampaignUpdate) -> list[tuple[int, int]]:
        """Joins in terms of the campaigns that still exist at the end of an update: an account that
        joined a campaign merged into an older one later in the same update joined the older one,
        and one that joined a campaign dropped from the table (``max_campaigns``) joined nothing.
        (They were reported under the vanished id, and the detector's lookup of it raised KeyError:
        seen on a population-wide drift that made many near-duplicate clusters at once.)"""
        into = dict(result.merged)
        out: list[tuple[int, int]] = []
        for c, a in result.joined:
            while c in into:
                c = into[c]
            if c in self.campaigns and (c, a) not in out:
                out.append((c, a))
        return out

    def _assign(self, all_cid: np.ndarray, nb: np.ndarray, ts: float, result: CampaignUpdate) -> int:
        """The campaign a hit belongs to: its neighbours' (merged into the oldest), or a new one."""
        ids = np.unique(all_cid[nb])
        ids = [int(c) for c in ids.tolist() if c >= 0 and c in self.campaigns]
        if not ids:
            return self._new_campaign(ts)
        keep = min(ids)
        for other in ids:
            if other != keep:
                self._merge(other, keep)
                all_cid[all_cid == other] = keep
                result.merged.append((other, keep))
        return keep

    def _merge(self, other: int, keep: int) -> None:
        a, b = self.campaigns[keep], self.campaigns.pop(other)
        a.first_ts, a.last_ts = min(a.first_ts, b.first_ts), max(a.last_ts, b.last_ts)
        a.queries += b.queries
        a.since_ts = b.since_ts if a.since_ts is None else (a.since_ts if b.since_ts is None else min(a.since_ts, b.since_ts))
        for o, n in b.accounts.items():
            if o in a.accounts:
                a.accounts[o] = max(a.accounts[o], n)
            elif len(a.accounts) < self.max_members:
                a.accounts[o] = n
                a.names[o] = b.names[o]
            else:
                a.overflow += 1
        a.overflow += b.overflow
        self.cid[self.cid == other] = keep

    def _add_member(self, camp: _CampaignState, owner: int, n: int, name_of: Callable[[int], str]) -> bool:
        """Record an account with ``n`` queries in a hit's neighbourhood; True when it is new."""
        if owner in camp.accounts:
            camp.accounts[owner] = max(camp.accounts[owner], n)
            return False
        if len(camp.accounts) >= self.max_members:
            camp.overflow += 1
            return False
        camp.accounts[owner] = n
        camp.names[owner] = name_of(owner)
        if camp.since_ts is None and len(camp.accounts) >= self.min_clients:
            camp.since_ts = camp.last_ts
        return True

    def _new_campaign(self, ts: float) -> int:
        if len(self.campaigns) >= self.max_campaigns:
            oldest = min(self.campaigns.values(), key=lambda c: c.last_ts)
            self.drop(oldest.cid)
        c = self.next_id
        self.next_id += 1
        self.campaigns[c] = _CampaignState(cid=c, first_ts=ts, last_ts=ts)
        return c

    def drop(self, cid: int) -> None:
        self.campaigns.pop(cid, None)
        self.cid[self.cid == cid] = -1

    def expire(self, now: float, max_age_s: float) -> list[int]:
        """Drop campaigns with no query for ``max_age_s`` of event time; return their ids."""
        old = [c.cid for c in self.campaigns.values() if c.last_ts < now - max_age_s]
        for c in old:
            self.drop(c)
        return old

    def _write(self, x: np.ndarray, x_norm: np.ndarray, owners: np.ndarray, cids: np.ndarray, hits: np.ndarray) -> None:
        m = x.shape[0]
        if m > self.size:
            x, x_norm, owners, cids, hits = x[-self.size:], x_norm[-self.size:], owners[-self.size:], cids[-self.size:], hits[-self.size:]
            m = self.size
        pos = (self.head + np.arange(m)) % self.size
        self.sketch[pos] = x
        self.norm[pos] = x_norm
        self.owner[pos] = owners
        self.cid[pos] = cids
        self.hit[pos] = hits
        self.head = int((self.head + m) % self.size)
        self.filled = min(self.filled + m, self.size)

    def members(self, cid: int) -> list[int]:
        camp = self.campaigns.get(cid)
        return [] if camp is None else list(camp.accounts)

    def reported(self) -> list[Campaign]:
        """Campaigns that reached ``min_clients`` accounts, most accounts first."""
        out = []
        for c in self.campaigns.values():
            if c.since_ts is None:
                continue
            order = sorted(c.accounts, key=lambda o: -c.accounts[o])[:50]
            out.append(Campaign(id=f"c{c.cid}", accounts=tuple(c.names[o] for o in order),
                                n_accounts=len(c.accounts) + c.overflow, queries=c.queries,
                                first_ts=c.first_ts, last_ts=c.last_ts, since_ts=c.since_ts))
        out.sort(key=lambda c: (-c.n_accounts, -c.queries))
        return out

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        camps = []
        for c in self.campaigns.values():
            camps.append({
                "cid": c.cid, "first_ts": c.first_ts, "last_ts": c.last_ts, "queries": c.queries,
                "owners": np.asarray(list(c.accounts), dtype=np.int64),
                "counts": np.asarray(list(c.accounts.values()), dtype=np.int64),
                "names": [c.names[o] for o in c.accounts], "overflow": c.overflow,
                "since_ts": c.since_ts,
            })
        return {"sketch": self.sketch.copy(), "norm": self.norm.copy(), "owner": self.owner.copy(),
                "cid": self.cid.copy(), "hit": self.hit.copy(), "head": self.head, "filled": self.filled, "next_id": self.next_id,
                "campaigns": camps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sk = np.asarray(state["sketch"], dtype=np.float32)
        if sk.shape != self.sketch.shape:
            raise ValueError(f"campaign state has shape {sk.shape}, expected {self.sketch.shape} (same campaign_window and sketch_dim)")
        self.sketch = sk.copy()
        self.norm = np.asarray(state["norm"], dtype=np.float32).copy()
        self.owner = np.asarray(state["owner"], dtype=np.int64).copy()
        self.cid = np.asarray(state["cid"], dtype=np.int64).copy()
        self.hit = np.asarray(state["hit"], dtype=bool).copy()
        self.head, self.filled, self.next_id = int(state["head"]), int(state["filled"]), int(state["next_id"])
        self.campaigns = {}
        for c in state["campaigns"]:
            owners = [int(o) for o in np.asarray(c["owners"]).tolist()]
            counts = [int(v) for v in np.asarray(c["counts"]).tolist()]
            self.campaigns[int(c["cid"])] = _CampaignState(
                cid=int(c["cid"]), first_ts=float(c["first_ts"]), last_ts=float(c["last_ts"]), queries=int(c["queries"]),
                accounts=dict(zip(owners, counts)), names=dict(zip(owners, (str(n) for n in c["names"]))),
                overflow=int(c["overflow"]), since_ts=None if c["since_ts"] is None else float(c["since_ts"]),
            )
