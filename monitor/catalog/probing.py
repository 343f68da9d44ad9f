"""Metrics of adversarial probing and model-stealing detection (detector kind ``probing``).

Low in cardinality by design: counts of suspicious clients by signal, and only a bounded top-k
of clients (ids salted-hashed unless raw ids are allowed) and of campaigns carry an id label.
"""

from __future__ import annotations

from monitor.catalog.spec import COUNTER, GAUGE, MetricSpec

__all__ = ["METRICS", "SIGNAL_VALUES"]

#: values of the ``signal`` label of the per-client figures (``any`` in the count only)
SIGNAL_VALUES = ("near_duplicates", "boundary", "label_flips", "stealing", "ood", "campaign")

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("monitor_probing_queries", COUNTER,
               "Queries seen by the probing detector, by outcome: analysed, retry (an exact repeat, counted apart and kept out of the similarity state), or no_embedding (space: embedding, a query without a usable embedding: not analysed).",
               labels=("outcome",), concern="probing", max_series=4),
    MetricSpec("monitor_probing_query_flags", COUNTER,
               "Analysed queries that crossed a per-query threshold calibrated on the reference (near_duplicate, small_margin, ood, label_flip); natural traffic crosses each at its stated rate.",
               labels=("signal",), concern="probing", max_series=8),
    MetricSpec("monitor_probing_suspicious_clients", GAUGE,
               "Clients with a raised probing signal that sent a query within the window, by signal (any = at least one): how many accounts look like attackers now.",
               labels=("signal",), concern="probing", max_series=10),
    MetricSpec("monitor_probing_client_evidence_queries", GAUGE,
               "Top suspicious clients (salted-hash ids unless raw ids are allowed) with the signal that flagged them first (kept while it stays raised, so that the alert keeps its identity; gone once the client sent nothing for the window; GET /api/v1/clients has every signal and client): queries supporting it; who to look at first.",
               labels=("client", "signal"), concern="probing", max_series=200),
    MetricSpec("monitor_probing_campaigns", GAUGE,
               "Campaigns now: clusters of near-duplicate queries spread over several accounts (one attack split over Sybil accounts).",
               concern="probing"),
    MetricSpec("monitor_probing_campaign_accounts", GAUGE,
               "Accounts taking part in each campaign (top campaigns only): how widely one attack is spread.",
               labels=("campaign",), concern="probing", max_series=200),
    MetricSpec("monitor_probing_clients_tracked", GAUGE,
               "Clients whose recent queries the probing detector keeps (bounded by max_clients).",
               concern="probing"),
    MetricSpec("monitor_probing_clients_evicted", COUNTER,
               "Clients evicted from the probing detector's LRU to make room; a fast rise means max_clients is too small or accounts are being minted.",
               concern="probing"),
    MetricSpec("monitor_probing_pending_queries", GAUGE,
               "Queries waiting in per-client buffers for the similarity step (bounded by flush_rows per client and max_delay_s of event time).",
               concern="probing"),
    MetricSpec("monitor_probing_state_bytes", GAUGE,
               "Memory of the probing detector's per-client and global state; bounded by max_clients x history.",
               concern="probing", unit="bytes"),
    MetricSpec("monitor_probing_population_scale", GAUGE,
               "Factor the near-duplicate thresholds are scaled by, from the spacing of all clients' recent queries against the "
               "reference's: 1 on reference-like traffic, below 1 when the whole population's inputs sit closer together "
               "(a population-wide input drift, which would otherwise flag every client); absent when population_window is 0.",
               concern="probing", unit="none"),
    MetricSpec("monitor_probing_ood_ratio", GAUGE,
               "Share of queries in the window scored out of distribution against the reference (expected about ood_fpr).",
               concern="probing", unit="percentunit"),
)
