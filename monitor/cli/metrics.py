"""``monitor metrics``: the metric catalog as a markdown table (the README's table comes from here)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["metrics", "replace_between"]

START, END = "<!-- metrics:start -->", "<!-- metrics:end -->"


def replace_between(text: str, start: str, end: str, body: str) -> str:
    """Replace what stands between two marker lines (markers kept). Raises ValueError naming
    the markers when one is missing or they come in the wrong order."""
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        missing = start if i < 0 else end
        raise ValueError(f"no {missing} line{'' if i < 0 else ' after ' + start}. Fix: put the two lines {start} and "
                         f"{end} where the table goes")
    i += len(start)
    return text[:i] + "\n" + body.strip("\n") + "\n" + text[j:]


@click.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "names"]), default="markdown", show_default=True)
@click.option("--write", "write_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rewrite the table between the metrics markers of this file (e.g. README.md).")
def metrics(fmt: str, write_path: Path | None) -> None:
    """Print every metric the agent exports: name, type, labels, meaning."""
    from monitor import catalog

    if fmt == "names":
        for spec in sorted(catalog.CATALOG.values(), key=lambda s: s.name):
            click.echo(spec.exposed_name)
        return
    table = catalog.markdown_table()
    if write_path is not None:
        try:
            text = replace_between(write_path.read_text(), START, END, table)
        except ValueError as err:
            raise click.ClickException(f"{write_path}: {err}") from None
        from monitor.atomic_file import OutputFileError, atomic_output

        try:  # a write cut short would leave the README truncated
            with atomic_output(write_path) as fh:
                fh.write(text)
        except OutputFileError as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"wrote {len(catalog.CATALOG)} metrics to {write_path}")
    else:
        click.echo(table)
