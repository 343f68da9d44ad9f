"""Read the benchmarks' markdown results and write README blocks generated from them.

The README quotes the evaluations' figures; typed by hand they drifted from the runs (issue 3
asks for honest numbers, whatever they are). A script renders its README block from its own
results file, between ``<!-- name:start -->`` and ``<!-- name:end -->``, and a test checks that
the committed README equals that rendering, so neither can change without the other.
"""

from __future__ import annotations

__all__ = ["md_tables", "block", "replace_block"]


def md_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The first table under each ``##``/``###`` heading of a markdown file, as rows keyed by
    the header's cells (heading text without the hashes)."""
    out: dict[str, list[dict[str, str]]] = {}
    title: str | None = None
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            title, header = line.lstrip("#").strip(), None
        elif title is None or title in out and header is None:
            continue  # before any heading, or after the heading's first table
        elif not line.startswith("|"):
            if header is not None:
                header = None  # the first table ended
        else:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header, out[title] = cells, []
            elif not set("".join(cells)) <= set("-: "):
                out[title].append(dict(zip(header, cells)))
    return out


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def block(doc: str, name: str) -> str:
    """The text between the ``name`` markers of ``doc``."""
    start, end = _markers(name)
    if start not in doc or end not in doc:
        raise ValueError(f"the README has no {start} ... {end} block: put the markers back around the figures")
    return doc.split(start, 1)[1].split(end, 1)[0]


def replace_block(doc: str, name: str, body: str) -> str:
    """``doc`` with the text between the ``name`` markers replaced by ``body`` (kept inline when
    ``body`` has no line break, so that a block can sit inside a sentence)."""
    start, end = _markers(name)
    block(doc, name)  # the markers must be there
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + body + end + tail
