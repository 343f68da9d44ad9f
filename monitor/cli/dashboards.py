"""``monitor dashboards``: generate the Grafana dashboards from the metric catalog."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["dashboards"]


@click.group("dashboards")
def dashboards() -> None:
    """Generate the Grafana dashboards from the metric catalog."""


@dashboards.command("build")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write <uid>.json into (default: the repository's grafana/dashboards).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the committed files differ from what the catalog generates.")
def build(out_dir: Path | None, check: bool) -> None:
    """Write every dashboard as Grafana 10 JSON, or check the committed ones (--check)."""
    from monitor.dashboards import build as builder

    target = out_dir if out_dir is not None else builder.DEFAULT_DIR
    if check:
        problems = builder.check(target)
        for p in problems:
            click.echo(f"{p.path}: {p.problem}", err=True)
        if problems:
            raise click.ClickException("dashboards are out of date: run `monitor dashboards build`")
        click.echo(f"{len(builder.BUILDERS)} dashboards in {target} are up to date")
        return
    for path in builder.write(target):
        click.echo(f"wrote {path}")
