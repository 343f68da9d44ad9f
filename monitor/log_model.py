"""Name the model in what its monitor logs.

Detectors are pure computation and know no model: a warning such as "output_repeats: the reference
has 15 rows" or "detector 'probing' (space: embedding): 12 of 40 queries came without a usable
embedding" reads well beside one model, and is ambiguous in a sidecar that runs several. While a
monitor builds its detectors, and while its pipeline runs them (the worker's drains, a flush, a
scrape's export, a replay), the lines logged on the ``monitor`` logger get the model's name in
front. The name is held in a context variable, so other threads' lines (another model's worker)
are left alone, and entering a block costs a variable set, not a change to the logger.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["model_named_in_log", "names_its_model"]

_MODEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("monitor_log_model", default=None)
_F = TypeVar("_F", bound=Callable[..., Any])


class _ModelPrefix(logging.Filter):
    """Puts ``model 'name': `` in front of a line logged inside a block for that model (lines that
    already name a model are kept as they are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        model = _MODEL.get()
        if model and isinstance(record.msg, str) and not record.msg.startswith("model "):
            record.msg = f"model {model!r}: {record.msg}"
        return True


def _install() -> None:
    logger = logging.getLogger("monitor")
    if not any(isinstance(f, _ModelPrefix) for f in logger.filters):
        logger.addFilter(_ModelPrefix())


_install()


@contextmanager
def model_named_in_log(model: str | None) -> Iterator[None]:
    """Within the block, this thread's lines on the ``monitor`` logger start with
    ``model 'name': ``; an enclosing block's model is kept (a flush inside a replay)."""
    if not model or _MODEL.get() is not None:
        yield
        return
    token = _MODEL.set(model)
    try:
        yield
    finally:
        _MODEL.reset(token)


def names_its_model(method: _F) -> _F:
    """A method of an object with ``store.model`` whose lines name that model
    (:func:`model_named_in_log`)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _MODEL.get() is not None:
            return method(self, *args, **kwargs)
        token = _MODEL.set(getattr(self.store, "model", None))
        try:
            return method(self, *args, **kwargs)
        finally:
            _MODEL.reset(token)

    return wrapper  # type: ignore[return-value]
