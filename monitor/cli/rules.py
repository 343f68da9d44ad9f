"""``monitor rules``: check, unit-test and export Prometheus rule files.

* ``monitor rules check FILES`` behaves like ``promtool check rules`` (same messages, same exit
  codes: 1 on errors, lint findings reported but fatal only with ``--lint-fatal``, exit 3), and
  additionally refuses PromQL the agent's evaluator does not implement (``--syntax-only`` turns
  that off, to check files meant only for Prometheus).
* ``monitor rules test FILES`` runs promtool's unit-test files with the agent's evaluator.
* ``monitor rules export FILES`` writes the groups as one Prometheus rule file or as a
  Prometheus Operator ``PrometheusRule``, for fleets where Prometheus evaluates the rules.
* ``monitor rules packs`` lists the rule packs shipped with the package (``rules.packs`` in the
  config names them), with their files and alerts.
"""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = ["rules", "unexported_metrics"]

_LINT_CHOICES = ("all", "duplicate-rules", "none")


@click.group("rules")
def rules() -> None:
    """Check, test and export Prometheus rule files."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--lint", type=click.Choice(_LINT_CHOICES), default="duplicate-rules", show_default=True,
              help="Linting checks to apply (as promtool).")
@click.option("--lint-fatal", is_flag=True, help="Make lint findings fatal (exit code 3).")
@click.option("--syntax-only", is_flag=True,
              help="Only promtool's checks: accept PromQL the agent's evaluator does not implement.")
def check(files: tuple[str, ...], lint: str, lint_fatal: bool, syntax_only: bool) -> None:
    """Check rule FILES like `promtool check rules` (prints SUCCESS: N rules found)."""
    from monitor.promql.engine import Engine
    from monitor.rules.loader import find_duplicate_rules, parse_rule_file

    engine = Engine()
    failed = has_errors = False
    for f in files:
        click.echo(f"Checking {f}")
        groups, errors = parse_rule_file(f, engine=engine, syntax_only=syntax_only)
        messages = [str(e) for e in errors]
        lint_only = False
        if not errors and lint in ("all", "duplicate-rules"):
            dups = find_duplicate_rules(groups)
            if dups:
                msg = f"lint error {len(dups)} duplicate rule(s) found.\n"
                for name, labels in dups:
                    msg += f"Metric: {name}\nLabel(s):\n"
                    msg += "".join(f"\t{k}: {v}\n" for k, v in sorted(labels.items()))
                msg += "Might cause inconsistency while recording expressions"
                messages = [msg]
                lint_only = True
        if messages:
            click.echo("  FAILED:", err=True)
            for m in messages:
                click.echo(m, err=True)
            failed = True
            has_errors = has_errors or not lint_only
        else:
            n = sum(len(g.rules) for g in groups)
            click.echo(f"  SUCCESS: {n} rules found")
            for note in unexported_metrics(groups):
                click.echo(f"  note: {note}", err=True)
        click.echo()
    if failed and has_errors:
        sys.exit(1)
    if failed and lint_fatal:
        sys.exit(3)


def unexported_metrics(groups: Any) -> list[str]:
    """Rules that query a ``monitor_*`` series the agent does not export (``monitor_calls`` for
    ``monitor_calls_total``, a typo): valid PromQL, so promtool and the check accept them, but they
    can never fire on the agent's metrics. Said as a note (the verdict and exit code stay
    promtool's); other names may come from other exporters when Prometheus loads the file."""
    import difflib

    from monitor import catalog
    from monitor.promql import ast as promql_ast

    exported = {n for spec in catalog.CATALOG.values() for n in spec.series_names()}
    recorded = {getattr(r, "record", None) for g in groups for r in g.rules}
    notes = []
    for g in groups:
        for r in g.rules:
            try:
                tree = promql_ast.parse_expr(r.expr)
            except Exception:  # noqa: BLE001 - already reported by the check
                continue
            names = {node.name for node in promql_ast.walk(tree) if isinstance(node, promql_ast.VectorSel) and node.name}
            for name in sorted(n for n in names if n.startswith("monitor_") and n not in exported and n not in recorded):
                close = sorted(e for e in exported if e.startswith(name + "_"))[:1]  # a counter without _total
                close = close or difflib.get_close_matches(name, exported, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]}?)" if close else " (`monitor metrics` lists what it exports)"
                rule = getattr(r, "alert", None) or getattr(r, "record", None)
                notes.append(f'group "{g.name}", rule "{rule}" queries {name}, which the agent does not export'
                             f"{hint}: the rule can never match the agent's metrics")
    return notes


@rules.command("packs")
@click.option("--paths", is_flag=True, help="Print only the packs' files, one per line (e.g. for `monitor rules export`).")
def packs(paths: bool) -> None:
    """List the rule packs shipped with the package: name, file and alerts."""
    from monitor.dashboards.packs import pack_alerts
    from monitor.shipped import rule_packs

    found = rule_packs()
    if not found:
        raise click.ClickException("no rule packs are installed with this package (neither a checkout's rules/ nor the "
                                   "monitor._rules data of a wheel)")
    for name, path in found.items():
        if paths:
            click.echo(str(path))
            continue
        alerts = pack_alerts(name, path.parent)
        click.echo(f"{name}: {path}\n  {len(alerts)} alerts: {', '.join(alerts)}")
    if not paths:
        click.echo("Name them in monitor.yaml: rules: {packs: [core, confidence]} (or [all]); "
                   "for Prometheus: monitor rules export $(monitor rules packs --paths)")


@rules.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def test(files: tuple[str, ...]) -> None:
    """Run promtool unit-test FILES (rule_files, input_series, alert_rule_test, promql_expr_test)."""
    from monitor.rules.unittest import run_unit_tests

    sys.exit(run_unit_tests(list(files)))


@rules.command("export")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("prometheus", "operator")), default="prometheus",
              show_default=True, help="A plain rule file, or a Prometheus Operator PrometheusRule.")
@click.option("--name", default="model-monitor-rules", show_default=True,
              help="metadata.name of the PrometheusRule.")
@click.option("--namespace", default=None, help="metadata.namespace of the PrometheusRule.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="metadata.labels of the PrometheusRule (repeatable), e.g. release=prometheus.")
@click.option("--dashboard-url", default="", metavar="URL",
              help="Root URL of the Grafana with the bundled dashboards (grafana/dashboards/): each alert of a shipped "
                   "pack gets a dashboard_url annotation linking to its dashboard for the alert's model, as "
                   "rules.dashboard_url gives the agent's.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              show_default=True, help="Output file ('-' for stdout).")
def export(files: tuple[str, ...], fmt: str, name: str, namespace: str | None, labels: tuple[str, ...],
           dashboard_url: str, output: str) -> None:
    """Export the groups of rule FILES for evaluation by Prometheus."""
    import yaml

    from monitor.config import dashboard_url_problem

    if dashboard_url:
        problem = dashboard_url_problem(dashboard_url)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="--dashboard-url")

    from monitor.rules.loader import load_rule_files
    from monitor.rules.model import RuleLoadError

    try:
        groups = load_rule_files(files, syntax_only=True)
    except RuleLoadError as e:
        raise click.ClickException(f"cannot export, the rule files have errors:\n{e}") from None
    names = [g.name for g in groups]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise click.ClickException(f"group names must be unique across the exported files: {', '.join(dup)}")
    if dashboard_url:
        from monitor.dashboards.links import with_dashboard_links

        groups = with_dashboard_links(groups, dashboard_url)
    body: dict[str, Any] = {"groups": [g.to_dict() for g in groups]}
    if fmt == "operator":
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        if labels:
            parsed = {}
            for item in labels:
                k, sep, v = item.partition("=")
                if not sep or not k:
                    raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--label")
                parsed[k] = v
            meta["labels"] = parsed
        body = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": meta, "spec": body}
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    if output == "-":
        click.echo(text, nl=False)
        return
    from monitor.atomic_file import OutputFileError, atomic_output

    try:  # whole or not at all: a rule file cut short would stop the Prometheus that loads it
        with atomic_output(output) as fh:
            fh.write(text)
    except OutputFileError as err:
        raise click.ClickException(str(err)) from None
