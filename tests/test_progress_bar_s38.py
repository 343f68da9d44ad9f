"""The reference build's progress bar in a log (not a terminal) wrote every redraw after a
carriage return, so that they ran together, and its 100% line twice (s38k's walkthrough). In a log
it is written once, when done; on a terminal it is redrawn and its 100% line drawn once."""

from __future__ import annotations

import io

from monitor.profile import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_the_bar_is_one_line_when_done() -> None:
    out = io.StringIO()
    bar = Progress(100, "reading ref.csv", stream=out)
    for done in (10, 50, 100):
        bar.update(done)
    bar.close()
    assert out.getvalue() == "reading ref.csv [" + "#" * 30 + "] 100.0%\n"


def test_on_a_terminal_the_bar_is_redrawn_and_its_end_drawn_once() -> None:
    out = _Terminal()
    bar = Progress(100, "reading ref.csv", stream=out)
    bar.update(10)
    bar.update(100)
    bar.close()
    text = out.getvalue()
    assert text.count("100.0%") == 1 and text.startswith("\rreading ref.csv [###") and text.endswith("100.0%\n"), text
