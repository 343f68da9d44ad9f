"""Name the model in what its set-up logs.

Detectors are pure computation and know no model: a warning such as "output_repeats: the reference
has 15 rows" reads well beside one model, and is ambiguous in a sidecar that loads several. While
a monitor builds its detectors, the lines this thread logs on the ``monitor`` logger get the model's
name in front; other threads' lines (another model loading at the same time) are left alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["model_named_in_log"]


class _ModelPrefix(logging.Filter):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.prefix = f"model {model!r}: "
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self.thread and isinstance(record.msg, str) and not record.msg.startswith("model "):
            record.msg = self.prefix + record.msg
        return True


@contextmanager
def model_named_in_log(model: str | None) -> Iterator[None]:
    """Within the block, this thread's lines on the ``monitor`` logger start with
    ``model 'name': `` (lines that already name a model are kept as they are)."""
    if not model:
        yield
        return
    logger = logging.getLogger("monitor")
    prefix = _ModelPrefix(model)
    logger.addFilter(prefix)
    try:
        yield
    finally:
        logger.removeFilter(prefix)
