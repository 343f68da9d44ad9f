"""monitor: a lightweight runtime monitoring agent for deployed ML models.

``import monitor`` is light: numpy, scipy and the detectors load only when a Monitor is built.

>>> import monitor
>>> sorted(monitor.__all__)[:3]
['Monitor', 'MonitorConfig', 'Reference']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Monitor", "MonitorConfig", "Reference", "watch", "get_monitor", "load_config", "__version__"]

if TYPE_CHECKING:
    from monitor.config import MonitorConfig, load_config
    from monitor.core import Monitor, get_monitor
    from monitor.decorator import watch
    from monitor.reference import Reference

_LAZY = {
    "Monitor": ("monitor.core", "Monitor"),
    "get_monitor": ("monitor.core", "get_monitor"),
    "MonitorConfig": ("monitor.config", "MonitorConfig"),
    "load_config": ("monitor.config", "load_config"),
    "Reference": ("monitor.reference", "Reference"),
    "watch": ("monitor.decorator", "watch"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'monitor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
