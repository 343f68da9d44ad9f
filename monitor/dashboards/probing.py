"""The Probing & security dashboard: which clients look like attackers (boundary probing, near-duplicate
runs, model stealing, Sybil campaigns), how much traffic is out of distribution, and the alerts."""

from __future__ import annotations

from monitor.dashboards.dashboard import Dashboard
from monitor.dashboards.panels import Panel, Query, Row, pack_alerts_panel, stat, timeseries
from monitor.dashboards.promql import rate, selector, zero_fill

__all__ = ["UID", "build"]

UID = "monitor-probing"


def build() -> Dashboard:
    """The Probing & security dashboard (metrics of monitor/catalog/probing.py)."""
    analysed = "sum by (model) ({})".format(rate("monitor_probing_queries", 'outcome="analysed"'))
    flags = "sum by (model, signal) ({})".format(rate("monitor_probing_query_flags"))
    near_dup = "sum by (model) ({})".format(rate("monitor_probing_query_flags", 'signal="near_duplicate"'))
    suspicious_any = selector("monitor_probing_suspicious_clients", 'signal="any"')
    items: list[Panel | Row | None] = [
        Row("Suspicious clients"),
        stat("Suspicious clients now", Query(f"max by (model) ({suspicious_any})", "{{model}}"),
             metrics=("monitor_probing_suspicious_clients",), width=8, steps=((None, "green"), (1, "red"))),
        stat("Campaigns now", Query(f"max by (model) ({selector('monitor_probing_campaigns')})", "{{model}}"),
             metrics=("monitor_probing_campaigns",), width=8, steps=((None, "green"), (1, "red"))),
        stat("Out-of-distribution share", Query(f"max by (model) ({selector('monitor_probing_ood_ratio')})", "{{model}}"),
             metrics=("monitor_probing_ood_ratio",), width=8, steps=((None, "green"), (0.05, "orange"), (0.2, "red"))),
        timeseries("Suspicious clients by signal",
                   Query(f"max by (model, signal) ({selector('monitor_probing_suspicious_clients')})", "{{model}} {{signal}}"),
                   metrics=("monitor_probing_suspicious_clients",)),
        timeseries("Evidence of the top suspicious clients",
                   Query(f"topk(10, max by (model, client, signal) ({selector('monitor_probing_client_evidence_queries')}))",
                         "{{client}} ({{signal}})"),
                   metrics=("monitor_probing_client_evidence_queries",), bars=True,
                   note="Client ids are salted hashes unless raw ids are allowed."),
        Row("Queries"),
        timeseries("Near-duplicate query rate",
                   Query(zero_fill(f"{near_dup} / {analysed}"), "{{model}}"),
                   metrics=("monitor_probing_query_flags", "monitor_probing_queries"), unit="percentunit", minimum=0,
                   description="Share of analysed queries that nearly repeat an earlier query of the same client "
                               "(boundary search and HopSkipJump-style runs); natural traffic stays at its calibrated rate."),
        timeseries("Flagged query share by signal",
                   Query(zero_fill(f"{flags} / on (model) group_left () {analysed}"), "{{model}} {{signal}}"),
                   metrics=("monitor_probing_query_flags", "monitor_probing_queries"), unit="percentunit", minimum=0),
        timeseries("Out-of-distribution rate",
                   Query(f"max by (model) ({selector('monitor_probing_ood_ratio')})", "{{model}}"),
                   metrics=("monitor_probing_ood_ratio",), minimum=0, maximum=1),
        timeseries("Queries analysed per second",
                   Query(f"sum by (model, outcome) ({rate('monitor_probing_queries')})", "{{model}} {{outcome}}"),
                   metrics=("monitor_probing_queries",), unit="cps", stack=True),
        timeseries("Population spacing scale",
                   Query(f"min by (model) ({selector('monitor_probing_population_scale')})", "{{model}}"),
                   metrics=("monitor_probing_population_scale",), minimum=0, maximum=1,
                   description="Factor the near-duplicate thresholds are scaled by: 1 on reference-like traffic, lower "
                               "when everybody's inputs sit closer together than the reference's (a population-wide "
                               "drift; see the Drift dashboard), so that natural clients are not flagged."),
        Row("Campaigns and state"),
        timeseries("Accounts per campaign",
                   Query(zero_fill(f"max by (model, campaign) ({selector('monitor_probing_campaign_accounts')})"),
                         "{{model}} {{campaign}}"),
                   metrics=("monitor_probing_campaign_accounts",), bars=True, note="0 when no campaign is seen."),
        timeseries("Clients tracked and evicted",
                   Query(f"max by (model) ({selector('monitor_probing_clients_tracked')})", "tracked {{model}}"),
                   Query(zero_fill(f"sum by (model) ({rate('monitor_probing_clients_evicted')})"), "evicted/s {{model}}"),
                   metrics=("monitor_probing_clients_tracked", "monitor_probing_clients_evicted")),
        timeseries("Probing detector memory",
                   Query(f"max by (model) ({selector('monitor_probing_state_bytes')})", "{{model}}"),
                   metrics=("monitor_probing_state_bytes",)),
        timeseries("Queries waiting for the similarity step",
                   Query(f"max by (model) ({selector('monitor_probing_pending_queries')})", "{{model}}"),
                   metrics=("monitor_probing_pending_queries",)),
        pack_alerts_panel("probing", "Probing alerts"),
    ]
    return Dashboard(UID, "Model monitor / Probing & security",
                     "Adversarial probing, near-duplicate query runs, model stealing, campaigns over several accounts, "
                     "and out-of-distribution traffic.", tuple(i for i in items if i is not None))
