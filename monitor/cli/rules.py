"""``monitor rules``: check, unit-test and export Prometheus rule files.

* ``monitor rules check FILES`` behaves like ``promtool check rules`` (same messages, same exit
  codes: 1 on errors, lint findings reported but fatal only with ``--lint-fatal``, exit 3), and
  additionally refuses PromQL the agent's evaluator does not implement (``--syntax-only`` turns
  that off, to check files meant only for Prometheus).
* ``monitor rules test FILES`` runs promtool's unit-test files with the agent's evaluator.
* ``monitor rules export FILES`` writes the groups as one Prometheus rule file or as a
  Prometheus Operator ``PrometheusRule``, for fleets where Prometheus evaluates the rules.
"""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = ["rules"]

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
        click.echo()
    if failed and has_errors:
        sys.exit(1)
    if failed and lint_fatal:
        sys.exit(3)


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
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              show_default=True, help="Output file ('-' for stdout).")
def export(files: tuple[str, ...], fmt: str, name: str, namespace: str | None, labels: tuple[str, ...],
           output: str) -> None:
    """Export the groups of rule FILES for evaluation by Prometheus."""
    import yaml

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
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
