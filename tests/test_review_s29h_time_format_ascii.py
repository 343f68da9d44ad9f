"""``Time.Format`` layouts with non-ASCII text (session 29 review): Go's ``nextStdChunk`` tells
``Jan``/``Mon`` from words (``Janet``, ``Month``) by an ASCII a-z after them, and a fraction
(``.000``) from a number by an ASCII digit after it; the agent asked Python's ``str.islower`` and
``str.isdigit``, which are true of ``é`` and ``²``, so ``"Jané"`` printed ``Jané`` where promtool
2.42 prints ``Nové``, and ``".0²"`` printed ``.0²`` where it prints ``.5²``. Expected texts are
promtool's for the same templates."""

from __future__ import annotations

import pytest

from monitor.rules.template import AlertTemplate


@pytest.mark.parametrize(("layout", "want"), [
    ("Jané 2006", "Nové 2023"),
    ("Moné", "Tueé"),
    (".0²", ".5²"),
    ("Janet Month .05", "Janet Month .20"),
])
def test_only_ascii_letters_and_digits_end_a_layout_element(layout: str, want: str) -> None:
    text = '{{ (toTime $value).Format "' + layout + '" }}'
    assert AlertTemplate.compile(text, "B").expand({"job": "api"}, 1700000000.5) == want
