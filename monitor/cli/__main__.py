"""``python -m monitor.cli``: the ``monitor`` command, where the console script is not on PATH."""

from __future__ import annotations

from monitor.cli import main

if __name__ == "__main__":
    main(prog_name="monitor")
