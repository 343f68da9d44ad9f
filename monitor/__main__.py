"""``python -m monitor``: the ``monitor`` command, where the console script is not on PATH (a
virtualenv's python called by its full path, a container without the scripts folder)."""

from __future__ import annotations

from monitor.cli import main

if __name__ == "__main__":
    main(prog_name="monitor")
