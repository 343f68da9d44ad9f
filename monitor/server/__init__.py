"""The sidecar (``monitor serve``): HTTP event intake, KServe/Seldon CloudEvents, an OIP v2
reverse proxy, forwarding from multi-worker servers, checkpoints that survive restarts.

Imported only by the CLI and by users who embed the sidecar; the core never imports it.
"""

from __future__ import annotations

from monitor.server.app import build_sidecar, create_app, create_proxy_app
from monitor.server.settings import SidecarSettings, settings_from
from monitor.server.sidecar import Sidecar

__all__ = ["Sidecar", "SidecarSettings", "build_sidecar", "create_app", "create_proxy_app", "settings_from"]
