"""``monitor serve``: the sidecar container's command."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

__all__ = ["serve", "exposure_warnings"]


def exposure_warnings(settings: object) -> list[str]:
    """What an address beyond loopback exposes without a token: the write endpoints (anyone who
    reaches the port can post events and labels for every model, skewing its figures and alerts)
    and the read ones (metrics, alerts, suspicious clients). Said at start, as for UDP forwarding:
    a network policy may well protect the port, but nothing here can tell."""
    import ipaddress

    addr = str(getattr(settings, "addr", "127.0.0.1"))
    try:
        if addr == "localhost" or ipaddress.ip_address(addr.strip("[]")).is_loopback:
            return []
    except ValueError:
        pass  # a host name: it may resolve beyond loopback
    addr = addr or "every interface"
    out = []
    if not getattr(settings, "write_tokens", ()):
        out.append(f"listening on {addr}, beyond loopback, with no write token: anyone who can reach it can post events and "
                   "labels for every model. Fix: set server.write_token_file or server.write_token_env, or keep a "
                   "network policy in front of the port")
    if not getattr(settings, "metrics_tokens", ()):
        out.append(f"listening on {addr}, beyond loopback, with no metrics token: /metrics and /api/v1/* (alerts, suspicious "
                   "clients) are open to anyone who can reach it. Fix: set server.metrics_token_file or "
                   "server.metrics_token_env, or keep a network policy in front of the port")
    return out


@click.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="monitor.yaml (one model, or several under models:).")
@click.option("--host", default=None, help="Address to bind (default: server.addr, i.e. 127.0.0.1). "
                                          "Use 0.0.0.0 only behind a network policy or with tokens.")
# ranged as server.port is: an int past 65535 was bound modulo 65536 (--port 70000 listened on 4464)
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Port of the sidecar (default: server.port, 9108).")
@click.option("--proxy", "proxy_url", default=None, metavar="URL",
              help="Reverse-proxy mode: forward every request to this model server (e.g. http://127.0.0.1:8080) "
                   "and tap its inference requests.")
@click.option("--proxy-port", default=None, type=click.IntRange(0, 65535),
              help="Serve the proxy on its own port (default: the sidecar's port, behind its own routes).")
@click.option("--loop", "loop_kind", default="auto", type=click.Choice(["auto", "asyncio", "uvloop"]), show_default=True,
              help="Event loop: uvloop when installed (auto; a dependency except on Windows: ~20% less CPU "
                   "per proxied request in benchmarks/bench_proxy.py), asyncio otherwise.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]), show_default=True)
@click.option("--ready-file", default=None, type=click.Path(dir_okay=False),
              help="Append host:port of each listener to this file once bound (for scripts using port 0).")
def serve(config_path: str, host: str | None, port: int | None, proxy_url: str | None, proxy_port: int | None,
          loop_kind: str, log_level: str, ready_file: str | None) -> None:
    """Run the sidecar: HTTP intake, CloudEvents, reverse proxy, /metrics, checkpoints.

    Stops gracefully on SIGTERM: intake closes, queues drain, rules are evaluated one last time
    and checkpoints are written.
    """
    from monitor.config import ConfigError, load_config

    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent = load_config(config_path)
        from monitor.server.app import build_sidecar, create_app, create_proxy_app

        sidecar = build_sidecar(agent, addr=host, port=port, proxy_upstream=proxy_url)
        sidecar.config_path = Path(config_path)  # read again at a reload
        if proxy_port is not None:
            import dataclasses

            from monitor.server.settings import check_ports

            sidecar.settings = sidecar.settings.replace(proxy=dataclasses.replace(sidecar.settings.proxy, port=proxy_port))
            check_ports(sidecar.settings, agent.source)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    settings = sidecar.settings
    if settings.proxy.port is not None and not settings.proxy.upstream:
        given = "--proxy-port" if proxy_port is not None else f"{agent.source}: server.proxy.port"
        raise click.ClickException(f"{given} needs a model server to forward to. Fix: start with --proxy URL or set "
                                   "server.proxy.upstream (e.g. http://127.0.0.1:8080)")
    for warning in exposure_warnings(settings):
        logging.getLogger("monitor.server").warning("%s", warning)
    app = create_app(sidecar)
    apps = [(app, settings.addr, settings.port)]
    if settings.proxy.upstream and settings.proxy.port is not None:
        apps.append((create_proxy_app(sidecar), settings.addr, settings.proxy.port))
    from monitor.server.lifecycle import ReadyFileError, run

    # The monitor's worker thread shares the GIL with the event loop; by default a thread keeps
    # the GIL for up to 5 ms, which would show up in the proxy's tail latency. Hand it over sooner.
    sys.setswitchinterval(0.0005)
    runner = asyncio.run
    if loop_kind != "asyncio":
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            if loop_kind == "uvloop":
                raise click.ClickException("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
    try:
        runner(run(apps, shutdown_timeout=settings.shutdown_timeout_s, ready_file=ready_file))
    except ReadyFileError as err:
        raise click.ClickException(f"{err.strerror}. Fix: name a file in a folder that exists and that you may "
                                   "write to") from None
    except OSError as err:
        raise click.ClickException(f"cannot listen: {err.strerror or err}") from None
