"""``monitor metrics``: the metric catalog as a markdown table (the README's table comes from here)."""

from __future__ import annotations

import click

__all__ = ["metrics"]


@click.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "names"]), default="markdown", show_default=True)
def metrics(fmt: str) -> None:
    """Print every metric the agent exports: name, type, labels, meaning."""
    from monitor import catalog

    if fmt == "names":
        for spec in sorted(catalog.CATALOG.values(), key=lambda s: s.name):
            click.echo(spec.exposed_name)
    else:
        click.echo(catalog.markdown_table())
