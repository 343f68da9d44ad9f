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
              help="Folder to write <uid>.json into (default: grafana/dashboards of the source checkout the package runs from).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the committed files differ from what the catalog generates.")
def build(out_dir: Path | None, check: bool) -> None:
    """Write every dashboard as Grafana 10 JSON, or check the committed ones (--check)."""
    from monitor.dashboards import build as builder

    if out_dir is None and not _in_checkout(builder.DEFAULT_DIR):
        from monitor.shipped import grafana_dir

        shipped = grafana_dir()
        raise click.ClickException(
            f"no repository checkout around the installed package: the default folder ({builder.DEFAULT_DIR}) "
            "would be inside the Python installation. Fix: pass --out DIR (e.g. --out grafana/dashboards), or install "
            "the package from a checkout in editable mode (pip install -e .), whose grafana/dashboards holds the "
            "committed files"
            + ("" if shipped is None else f"; the dashboards and provisioning files this version ships are in {shipped}")
        )
    target = out_dir if out_dir is not None else builder.DEFAULT_DIR
    from monitor.shipped import rules_dir

    if rules_dir() is None:
        click.echo("note: no rule packs are installed with the package, so the panels listing "
                   "each pack's alerts are empty; build from a checkout for the committed dashboards", err=True)
    if check:
        problems = builder.check(target)
        for p in problems:
            click.echo(f"{p.path}: {p.problem}", err=True)
        if problems:
            again = "" if out_dir is None else f" --out {out_dir}"
            raise click.ClickException(f"dashboards are out of date: run `monitor dashboards build{again}`")
        click.echo(f"{len(builder.BUILDERS)} dashboards in {target} are up to date")
        return
    from monitor.atomic_file import OutputFileError

    try:
        for path in builder.write(target):
            click.echo(f"wrote {path}")
    except OutputFileError as err:
        raise click.ClickException(str(err)) from None


def _in_checkout(default_dir: Path) -> bool:
    """Whether the package runs from a source checkout (``pip install -e .`` or the repository
    itself): the default folder is then the repository's ``grafana/dashboards``. From an
    installed wheel the same relative path lands in site-packages, where nothing should be written
    or compared."""
    root = default_dir.parent.parent
    return (root / "pyproject.toml").is_file() and (root / "monitor").is_dir()
