"""The proxy's data path in its own process (:mod:`monitor.server.dataplane`): the channel's
frames and passed sockets, supervision (a child that dies is started again, one whose sidecar
dies exits), taps the sidecar cannot take dropped and counted, and ``monitor serve --proxy`` as
a real process tree. Everything the proxy does on the wire is tested on this engine too: the
``engine`` fixture of ``tests/test_proxy.py`` includes ``process``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time

import pytest
import yaml

from tests.sidecar_support import child_pids, http, sample, total, wait_until
from tests.test_proxy import IRIS, oip, start_proxying, upstream  # noqa: F401 - upstream is a fixture
from tests.test_server_lifecycle import ServeProcess

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(socket, "SCM_RIGHTS"),
                                reason="passing sockets between processes (SCM_RIGHTS)")


def _plane(s):
    """The sidecar's one data path process."""
    planes = list(s.sidecar.data_planes)
    assert len(planes) == 1, planes
    return planes[0]


@contextlib.contextmanager
def _sidecar_blocked(s, seconds: float):
    """The sidecar's event loop blocked for ``seconds`` (it reads nothing from the child); the
    body must be done before that ends."""
    s.server.lt.loop.call_soon_threadsafe(time.sleep, seconds)
    time.sleep(0.1)
    t0 = time.monotonic()
    yield
    assert time.monotonic() - t0 < seconds - 0.1, "the sidecar's loop was not blocked all along"


def _proxy_tally(s, reason: str) -> tuple[str, float, float, float]:
    """After a flush: the metrics text, the proxy's accepted events, those refused for ``reason``,
    and all it refused."""
    s.flush()
    text = s.metrics()
    return (text, total(text, "monitor_intake_events_accepted_total", endpoint="proxy"),
            sample(text, "monitor_intake_events_refused_total", endpoint="proxy", reason=reason) or 0,
            total(text, "monitor_intake_events_refused_total", endpoint="proxy"))


def _big_requests(s, n: int) -> None:
    """``n`` tapped requests of ~150 kB each (more than the channel socket's buffer holds), each
    answered by the child."""
    for i in range(n):
        assert http("POST", s.url + "/v2/models/iris/infer", oip(6000, rid=f"big{i}")).status == 200


def test_frames_and_the_sockets_they_carry_arrive_in_order():
    """Frames with and without a socket, written faster than they are read (partial writes,
    several frames and a socket per read): each socket goes with its own frame."""
    from monitor.server.channel import FrameReader, FrameWriter

    async def run() -> list[tuple[bytes, bytes | None]]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        got: list[tuple[bytes, bytes | None]] = []
        done = asyncio.Event()
        reader: FrameReader | None = None

        def on_frame(payload: bytes) -> None:
            assert reader is not None
            fd = reader.take_fd() if payload.startswith(b"fd") else None
            marker = None
            if fd is not None:
                with socket.socket(fileno=fd) as s:  # the peer of this socket wrote its frame's name
                    marker = s.recv(100)
            got.append((payload, marker))
            if len(got) == 300:
                done.set()

        reader = FrameReader(b, loop, on_frame, done.set)
        writer = FrameWriter(a, loop)
        keep = []
        for i in range(300):
            if i % 7 == 3:
                mine, theirs = socket.socketpair()
                mine.sendall(b"m%d" % i)
                keep.append(mine)
                writer.send(b"fd%d" % i + b"x" * 3000, os.dup(theirs.fileno()))
                theirs.close()
            else:
                writer.send(b"n%d" % i + b"y" * (i * 37 % 5000))
        assert writer.pending > 0  # the socket took only part: the rest waits for the loop
        await asyncio.wait_for(done.wait(), 10)
        writer.close()
        reader.close()
        for s in keep:
            s.close()
        return got

    got = asyncio.run(run())
    assert [p.split(b"x")[0].split(b"y")[0] for p, _ in got] == [(b"fd%d" if i % 7 == 3 else b"n%d") % i for i in range(300)]
    for payload, marker in got:
        if payload.startswith(b"fd"):
            assert marker == b"m" + payload[2:].split(b"x")[0]


def test_the_proxy_runs_in_a_child_process_and_hands_the_sidecars_routes_back(tmp_path, upstream):
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process", proxy_upstream=upstream.url)
    try:
        plane = _plane(s)
        assert plane.proc is not None and plane.proc.pid != os.getpid() and plane.proc.poll() is None
        for i in range(5):
            assert http("POST", s.url + "/v2/models/iris/infer", oip(2, rid=f"r{i}")).status == 200
        # the sidecar's own routes on the proxy's port, answered by this process's aiohttp app
        assert http("GET", s.url + "/readyz").json()["ready"] is True
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_accepted_total", endpoint="proxy") == 5
        assert sample(text, "monitor_proxy_requests_total", route="oip_v2", code="2xx") == 5
        assert sample(text, "monitor_proxy_upstream_seconds_count") == 5
    finally:
        s.close()
    assert plane.proc.poll() is not None  # stopped with the sidecar


def test_a_child_that_cannot_start_leaves_the_proxy_on_the_sidecars_loop(tmp_path, upstream, monkeypatch, caplog):
    from monitor.server import dataplane

    monkeypatch.setattr(dataplane, "CHILD_MODULE", "monitor.server.no_such_module")
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process", proxy_upstream=upstream.url)
    try:
        assert not s.sidecar.data_planes
        assert "did not start" in caplog.text and "runs on the sidecar's event loop" in caplog.text
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
        assert http("GET", s.url + "/api/v1/status").json()["data"]["proxy_processes"] == []
        s.flush()
        assert total(s.metrics(), "monitor_intake_events_accepted_total", endpoint="proxy") == 1
    finally:
        s.close()


def test_a_child_that_dies_is_started_again_and_counted(tmp_path, upstream):
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process", proxy_upstream=upstream.url)
    try:
        plane = _plane(s)
        first = plane.proc.pid
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
        s.flush()  # its batch sent (a child killed loses what it answered in its last ~2 ms, unsent)
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: plane.proc.pid != first and plane.proc.poll() is None, 10)
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1, rid="after")).status == 200
        assert sample(s.metrics(), "monitor_proxy_process_restarts_total") == 1
        (status,) = http("GET", s.url + "/api/v1/status").json()["data"]["proxy_processes"]
        assert status == {"pid": plane.proc.pid, "restarts": 1}
        s.flush()
        assert total(s.metrics(), "monitor_intake_events_accepted_total", endpoint="proxy") == 2
    finally:
        s.close()


def test_taps_the_sidecar_cannot_take_are_dropped_and_counted(tmp_path, upstream, monkeypatch):
    """While the sidecar's loop is blocked, the child keeps proxying; what it tapped beyond its
    bound is dropped and counted, never held without limit, and every request is accounted for."""
    from monitor.server import dataplane

    monkeypatch.setattr(dataplane, "MAX_PENDING_BYTES", 20_000)
    s = start_proxying({"models": [IRIS, {**IRIS, "model": "mirror"}], "server": {"proxy": {"oip_output": "probs"}}},
                       tmp_path, "process", proxy_upstream=upstream.url)
    try:
        _plane(s)
        n = 30
        with _sidecar_blocked(s, 2.0):
            _big_requests(s, n)
        text, accepted, dropped, refused = _proxy_tally(s, "tap_backlog")
        assert dropped > 0
        assert accepted + refused == n
        assert sample(text, "monitor_proxy_requests_total", route="oip_v2", code="2xx") == n  # every request counted
    finally:
        s.close()


def test_taps_a_killed_child_never_sent_are_counted_lost(tmp_path, upstream):
    """kill -9 while the child holds answered exchanges it has not sent (the sidecar's loop is
    blocked, so they wait in the child's memory): the shared counter tells the sidecar how many
    taps died with it, so that every request the client got an answer to is accounted for."""
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process",
                       proxy_upstream=upstream.url)
    try:
        plane = _plane(s)
        first = plane.proc.pid
        n = 20
        with _sidecar_blocked(s, 3.0):
            _big_requests(s, n)
            os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: plane.proc.pid != first and plane.proc.poll() is None, 15)
        _, accepted, lost, refused = _proxy_tally(s, "process_lost")
        assert lost > 0
        assert accepted + refused == n
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1, rid="after")).status == 200
        s.flush()  # the next child's taps arrive, and nothing of it is counted lost
        text = s.metrics()
        assert total(text, "monitor_intake_events_accepted_total", endpoint="proxy") == accepted + 1
        assert sample(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="process_lost") == lost
    finally:
        s.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_monitor_serve_proxy_runs_a_child_stops_it_on_sigterm_and_it_never_outlives_the_sidecar(tmp_path, upstream):
    cfg = {**IRIS, "server": {"port": 0, "proxy": {"oip_output": "probs", "upstream": upstream.url}}}
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(cfg))

    def child_of(pid: int) -> int:
        assert wait_until(lambda: bool(child_pids(pid)), 20)
        (kid,) = child_pids(pid)
        return kid

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped

    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        pytest.skip("/proc/PID/task/TID/children is not available")
    serve = ServeProcess(path)
    kid = child_of(serve.proc.pid)
    for i in range(10):
        assert http("POST", serve.url + "/v2/models/iris/infer", oip(1, rid=f"s{i}")).status == 200
    text = serve.metrics()  # on the proxy's port, handed back to the sidecar; synced with the child first
    assert total(text, "monitor_intake_events_accepted_total", endpoint="proxy") == 10
    assert serve.stop(signal.SIGTERM) == 0
    assert wait_until(lambda: gone(kid), 10)
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log

    # kill -9 of the sidecar: the child sees its channel close and exits (it would hold the port)
    second = ServeProcess(path)
    kid = child_of(second.proc.pid)
    assert http("POST", second.url + "/v2/models/iris/infer", oip(1)).status == 200
    os.kill(second.proc.pid, signal.SIGKILL)
    second.proc.wait(10)
    second.log.close()
    assert wait_until(lambda: gone(kid), 10)


@pytest.mark.parametrize("host, family, v6only", [("127.0.0.1", socket.AF_INET, None), ("::1", socket.AF_INET6, 1),
                                                  ("", socket.AF_INET6, 0)])
def test_the_data_paths_socket_binds_a_host_as_asyncio_would(host, family, v6only):
    """An empty host is every interface of both families (asyncio's ``create_server`` for the
    in-process engine opens a socket per family; the data path process gets one socket, so it is
    dual-stack), an IPv6 literal IPv6 only. Connected to over loopback only."""
    from monitor.server.dataplane import listening_socket

    if host == "" and not socket.has_dualstack_ipv6():
        pytest.skip("no dual-stack IPv6 sockets here")
    try:
        sock = listening_socket(host, 0, 8)
    except OSError as err:  # a machine without IPv6 loopback
        pytest.skip(f"cannot bind {host!r}: {err}")
    with sock:
        assert sock.family == family
        if v6only is not None:
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == v6only
        port = sock.getsockname()[1]
        from monitor.server.dataplane import _Bound

        names = [name.getsockname()[:2] for name in _Bound(sock).sockets]  # what the log and --ready-file show
        assert names == ([("0.0.0.0", port), ("::", port)] if host == "" else [(host, port)])
        peers = ["127.0.0.1", "::1"] if host == "" else [host]
        for peer in peers:
            with socket.create_connection((peer, port), timeout=5):
                conn, _ = sock.accept()
                conn.close()
