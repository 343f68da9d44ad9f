"""The ``monitor`` command. Subcommands load lazily so that ``monitor --help`` stays fast.

Exit codes: 0 success, 1 a check failed (rules, config) or a file could not be used, 2 usage error
(click's own), 3 lint findings with ``rules check --lint-fatal`` (as promtool); ``monitor --help``
says so.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["main"]

#: subcommand name -> "module:attribute" of a click command or group, imported on use.
SUBCOMMANDS: dict[str, str] = {
    "demo": "monitor.cli.demo:demo",
    "config": "monitor.cli.config:config",
    "metrics": "monitor.cli.metrics:metrics",
    "rules": "monitor.cli.rules:rules",
    "replay": "monitor.cli.replay:replay",
    "reference": "monitor.cli.reference:reference",
    "serve": "monitor.cli.serve:serve",
    "dashboards": "monitor.cli.dashboards:dashboards",
}

_HELP = {
    "demo": "Train a small model, watch it, and drive normal, drifted and attacking traffic.",
    "config": "Check a monitor.yaml.",
    "metrics": "Print the catalog of every exported metric.",
    "rules": "Check, test and export Prometheus rule files.",
    "replay": "Backtest rules: replay a recorded event log in event time.",
    "reference": "Build reference profiles for the drift detectors.",
    "serve": "Run the sidecar: HTTP intake, CloudEvents, reverse proxy, /metrics.",
    "dashboards": "Generate the Grafana dashboards from the metric catalog.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            missing = click.Command(name, help=_HELP.get(name, ""), callback=_unavailable(name, err))
            return missing

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, err: Exception) -> Any:
    def callback() -> None:
        raise click.ClickException(f"'monitor {name}' is not available in this installation: {err}")

    return callback


#: said by ``monitor --help``: scripts branch on these, and the module docstring is not shown
_EPILOG = ("Exit codes: 0 success; 1 a check failed (rules, config, dashboards --check) or an input or output file "
           "could not be used; 2 a usage error (an unknown option, or a value or file argument click refuses); "
           "3 lint findings with 'rules check --lint-fatal'.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(package_name="model-monitor", prog_name="monitor")
def main() -> None:
    """monitor: runtime monitoring for deployed ML models."""
