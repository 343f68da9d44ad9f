"""The handover of the sidecar's own routes on the proxy's port, on the wire (raw sockets on
127.0.0.1): pipelined and keep-alive mixes of proxied and local requests, ``Expect:
100-continue``, a half-closed client, a client that has not read an earlier answer yet; and the
data path process's lifecycle (fds, supervision, sync, bounds). Each engine that serves the
proxy's port must answer the same bytes in the same order (``lean`` on the sidecar's loop,
``process`` in its child)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import pytest

from tests.sidecar_support import sample, total, wait_until
from tests.test_dataplane import _plane, pytestmark  # noqa: F401 - the same skip for the whole module
from tests.test_proxy import IRIS, oip, start_proxying, upstream  # noqa: F401 - upstream is a fixture


@pytest.fixture(params=["lean", "process", "serve"])
def side(request, tmp_path, upstream):
    """The proxy's port on the lean engine in the sidecar's loop, in its child process, and as
    ``monitor serve`` runs it (a real process tree, on uvloop when it is installed)."""
    if request.param == "serve":
        import signal

        import yaml

        from tests.test_server_lifecycle import ServeProcess

        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "proxy": {"oip_output": "probs", "upstream": upstream.url}}}))
        serve = ServeProcess(path)
        yield serve
        assert serve.stop(signal.SIGTERM) == 0
        assert "Traceback" not in (tmp_path / "serve.log").read_text()
        return
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, request.param,
                       proxy_upstream=upstream.url)
    yield s
    s.close()


def _connect(url: str) -> socket.socket:
    host, port = url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    return sock


def _read_response(f) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response from the buffered reader ``f`` (Content-Length or chunked)."""
    line = f.readline()
    assert line, "the connection closed before an answer"
    status = int(line.split()[1])
    headers: dict[str, str] = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status < 200 or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            parts.append(f.read(size))
            f.readline()
        body = b"".join(parts)
    else:
        body = f.read()
    return status, headers, body


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def _assert_big_then_ready(sock: socket.socket, big: bytes) -> None:
    """The proxied answer ``big`` first, then ``/readyz``'s, in order on ``sock``."""
    f = sock.makefile("rb")
    first = _read_response(f)
    second = _read_response(f)
    assert first[0] == 200 and first[2] == big
    assert second[0] == 200 and json.loads(second[2])["ready"] is True


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


INFER = "/v2/models/iris/infer"


def test_pipelined_proxied_local_proxied_answered_in_order(side):
    """A proxied request, a local one and a proxied one in one write: three answers, in order
    (the third is aiohttp's, in the sidecar, once the connection was handed over)."""
    body = json.dumps(oip(1, rid="p1")).encode()
    with _connect(side.url) as sock:
        sock.sendall(_post(INFER, body) + _get("/readyz") + _post(INFER, json.dumps(oip(1, rid="p2")).encode()))
        f = sock.makefile("rb")
        first = _read_response(f)
        second = _read_response(f)
        third = _read_response(f)
    assert first[0] == 200 and json.loads(first[2])["id"] == "p1"
    assert second[0] == 200 and json.loads(second[2])["ready"] is True
    assert third[0] == 200 and json.loads(third[2])["id"] == "p2"


def test_keep_alive_proxied_then_local_then_proxied(side):
    with _connect(side.url) as sock:
        f = sock.makefile("rb")
        for i in range(3):
            sock.sendall(_post(INFER, json.dumps(oip(1, rid=f"k{i}")).encode()))
            status, _, body = _read_response(f)
            assert status == 200 and json.loads(body)["id"] == f"k{i}"
        sock.sendall(_get("/readyz"))
        status, _, body = _read_response(f)
        assert status == 200 and json.loads(body)["ready"] is True
        sock.sendall(_post(INFER, json.dumps(oip(1, rid="after")).encode()))
        status, _, body = _read_response(f)
        assert status == 200 and json.loads(body)["id"] == "after"


def test_expect_100_continue_for_a_local_route(side):
    """The head alone, waiting for ``100 Continue`` before the body: the sidecar says it
    (the connection is handed over with the head only), then answers the body."""
    body = json.dumps({"model": "iris", "events": []}).encode()
    with _connect(side.url) as sock:
        f = sock.makefile("rb")
        head = _post("/v1/events", body, "Expect: 100-continue\r\n")[: -len(body)]
        sock.sendall(head)
        status, _, _ = _read_response(f)
        assert status == 100
        sock.sendall(body)
        status, _, answer = _read_response(f)
    assert 200 <= status < 500, (status, answer)


def test_a_proxied_answer_the_client_has_not_read_yet_goes_out_before_the_local_one(side):
    """A large proxied answer still in the data path's write buffer (the client does not read)
    when a pipelined local request is handed over: every byte of the first answer arrives,
    then the second."""
    big = json.dumps(oip(5000, rid="big")).encode()
    with _connect(side.url) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(_post("/v2/models/mirror/infer", big) + _get("/readyz"))
        import time
        time.sleep(0.5)  # not a timed assertion: lets the answer back up before reading starts
        _assert_big_then_ready(sock, big)


def test_a_chunked_local_request_after_a_proxied_one(side):
    payload = json.dumps({"model": "iris", "events": []}).encode()
    chunked = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 7]), payload[i:i + 7]) for i in range(0, len(payload), 7))
               + b"0\r\n\r\n")
    with _connect(side.url) as sock:
        f = sock.makefile("rb")
        sock.sendall(_post(INFER, json.dumps(oip(1, rid="c1")).encode()) + chunked[:40])
        status, _, body = _read_response(f)
        assert status == 200 and json.loads(body)["id"] == "c1"
        sock.sendall(chunked[40:] + _get("/readyz"))
        status, _, body = _read_response(f)
        assert 200 <= status < 500, body
        status, _, body = _read_response(f)
        assert status == 200 and json.loads(body)["ready"] is True


# -- the data path process's lifecycle and bounds ------------------------------------------------

@pytest.fixture(params=["asyncio", "uvloop"])
def proc_side(request, tmp_path, upstream, monkeypatch):
    """The sidecar (on asyncio, in this process) with its data path process on ``asyncio`` or
    on ``uvloop`` (as ``monitor serve`` runs it when uvloop is installed)."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
        from monitor.server import dataplane

        monkeypatch.setattr(dataplane, "_loop_kind", lambda: "uvloop")
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process",
                       proxy_upstream=upstream.url)
    yield s
    s.close()


def test_a_respawn_that_cannot_start_the_process_is_tried_again(proc_side, monkeypatch):
    """Starting the child again can fail (fork or exec refused: EAGAIN, ENOMEM, EMFILE; here the
    interpreter's path is gone for a while): the supervisor tries again later instead of leaving
    the port's connections waiting in the backlog for good."""
    s = proc_side
    plane = _plane(s)
    first = plane.proc.pid
    python = sys.executable
    monkeypatch.setattr(sys, "executable", "/nonexistent/python-for-this-test")
    os.kill(first, 9)
    assert wait_until(lambda: plane.restarts >= 1 and plane.failed_spawns >= 1, 10)
    monkeypatch.setattr(sys, "executable", python)
    assert wait_until(lambda: plane.proc is not None and plane.proc.pid != first and plane.proc.poll() is None
                      and plane.reader is not None and not plane.reader.closed, 20)
    assert wait_until(lambda: _status_ok(s), 10)


def _status_ok(s) -> bool:
    from tests.sidecar_support import http

    return http("POST", s.url + INFER, oip(1, rid="back")).status == 200


def test_the_childs_batches_stay_bounded_while_the_sidecar_does_not_read():
    """Nobody reads the channel: answered exchanges beyond the bound are only counted, and the
    batches of those counts wait merged, not one more frame every 2 ms."""
    from monitor.server.channel import FrameWriter
    from monitor.server.dataplane_child import ChannelSink
    from monitor.server.proxyroutes import Target

    async def run() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        writer = FrameWriter(a, loop)
        bound = 200_000
        sink = ChannelSink(writer, loop, bound)
        route = Target(False, None, None, "r")
        tap = ("m", "c", "id", b"x" * 1000, b"y" * 1000, None, None, 0.0)
        for _ in range(20_000):
            sink.answered(route, 200, 0.001, 0.002, tap)
            sink.count("monitor_proxy_upstream_errors", ("timeout",))
            sink.request_time(504, 0.01)
            sink.flush()  # as the batch timer does, every 2 ms
        pending = writer.pending
        writer.close()
        b.close()
        return pending, bound

    pending, bound = asyncio.run(run())
    assert pending <= bound + 64 * 1024, pending


def _unread_big_answer(s, then: bytes = b"") -> tuple[socket.socket, bytes]:
    """A connection whose client has not read a large proxied answer yet (it waits in the data
    path's write buffer), with ``then`` pipelined after it."""
    import time

    # the connections accepted from now on get a small send buffer (the listening socket is the
    # sidecar's, shared with the child), so that the kernel cannot take a 400 kB answer at once
    # (on loopback it takes megabytes; across hosts far less)
    _plane(s).listeners[0].sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = json.dumps(oip(20000, rid="big")).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(20)
    host, port = s.url.rsplit("/", 1)[-1].split(":")
    sock.connect((host, int(port)))
    sock.sendall(_post("/v2/models/mirror/infer", big) + then)
    time.sleep(0.3)  # not a timed assertion: lets the answer back up in the data path before SIGTERM
    return sock, big


def test_sigterm_lets_the_child_write_out_answers_its_clients_have_not_read_yet(proc_side):
    """SIGTERM (the sidecar stopping) while an answered request's bytes still wait in the child's
    write buffer: the child writes them out before it exits (within its budget), so the client
    gets the whole answer, not a truncated one."""
    plane = _plane(proc_side)
    sock, big = _unread_big_answer(proc_side)
    with sock:
        plane.proc.send_signal(15)
        f = sock.makefile("rb")
        status, _, body = _read_response(f)
    assert status == 200 and body == big


def test_sigterm_lets_a_pending_handover_complete(proc_side):
    """A local request pipelined behind an answer the client has not read yet: its handover
    waits for that answer to go out; SIGTERM meanwhile must not drop the connection (the child
    finishes the handover, the sidecar answers)."""
    plane = _plane(proc_side)
    sock, big = _unread_big_answer(proc_side, _get("/readyz"))
    with sock:
        plane.proc.send_signal(15)
        _assert_big_then_ready(sock, big)


def test_a_channel_that_closes_while_the_child_lingers_does_not_block_the_sidecars_loop(proc_side):
    """The channel closes and the process has not exited (it is finishing its exit: an executor
    thread, a slow getaddrinfo...; here it is stopped): the sidecar does not wait for it on its
    event loop (``proc.wait`` blocked the loop up to a second, then killed it there); it reaps it
    from the loop, kills it when it lingers, and starts a new one."""
    s = proc_side
    plane = _plane(s)
    first = plane.proc
    os.kill(first.pid, 19)  # SIGSTOP: alive, but it will not exit by itself
    seen: list[bool] = []

    async def close_channel() -> None:
        assert plane.reader is not None
        plane.reader.close()
        seen.append(first.poll() is None)  # the loop went on: the process was not waited for here

    s.server.lt.call(close_channel())
    assert seen == [True]
    assert wait_until(lambda: first.poll() is not None, 10)  # killed once it lingered
    assert wait_until(lambda: plane.proc is not first and plane.proc.poll() is None and plane.reader is not None
                      and not plane.reader.closed, 20)
    assert _status_ok(s)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="/proc/PID/fd lists a process's descriptors")
def test_handovers_and_restarts_leave_no_descriptor_open(proc_side):
    """Connections handed over (and closed by their clients), and a child killed and started
    again: neither process keeps a descriptor for them."""
    from tests.sidecar_support import http

    s = proc_side
    plane = _plane(s)

    def settled_fds() -> tuple[int, int]:
        return _fds(os.getpid()), _fds(plane.proc.pid)

    for _ in range(3):  # warm: the sidecar's first scrape, the pool's first upstream connection
        assert http("GET", s.url + "/readyz").status == 200
        assert http("POST", s.url + INFER, oip(1)).status == 200
    parent0, child0 = settled_fds()
    before = set(os.listdir("/proc/self/fd"))
    for i in range(40):
        assert http("GET", s.url + "/readyz").status == 200
        with _connect(s.url) as sock:  # pipelined: a proxied answer, then the handover
            sock.sendall(_post(INFER, json.dumps(oip(1, rid=f"f{i}")).encode()) + _get("/readyz", "Connection: close\r\n"))
            with sock.makefile("rb") as f:  # (an open file of the socket keeps its descriptor)
                assert _read_response(f)[0] == 200 and _read_response(f)[0] == 200
    def describe():
        out = []
        for fd in set(os.listdir("/proc/self/fd")) - before:
            try:
                with socket.socket(fileno=os.dup(int(fd))) as x:
                    out.append((fd, os.readlink(f"/proc/self/fd/{fd}"), x.getsockname(), x.getpeername() if x.type == socket.SOCK_STREAM else None))
            except OSError as e:
                out.append((fd, str(e)))
        return out
    # a leak would be one per handover (40 or more); the upstream pool's idle connections (the
    # upstream server runs in this process too) may come and go by one or two
    assert wait_until(lambda: all(n <= n0 + 2 for n, n0 in zip(settled_fds(), (parent0, child0))), 10), \
        (settled_fds(), (parent0, child0), describe())
    first = plane.proc.pid
    os.kill(first, 9)
    assert wait_until(lambda: plane.proc.pid != first and plane.reader is not None and not plane.reader.closed, 20)
    assert _status_ok(s)
    assert wait_until(lambda: _fds(os.getpid()) <= parent0 + 2, 10), (_fds(os.getpid()), parent0)


def test_a_frame_whose_handler_fails_is_not_delivered_again():
    """``on_frame`` raising (a bug in what handles one message) must not leave that frame, and
    those before it, in the reader's buffer to be handled again with the next read: a batch
    would be counted twice (and the failure repeat forever)."""
    from monitor.server.channel import FrameReader, FrameWriter

    async def run() -> list[bytes]:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        got: list[bytes] = []
        second = asyncio.Event()

        def on_frame(payload: bytes) -> None:
            got.append(payload)
            if payload == b"boom":
                raise RuntimeError("a handler's bug")
            if payload == b"after":
                second.set()

        reader = FrameReader(b, loop, on_frame, lambda: None)
        writer = FrameWriter(a, loop)
        writer.send(b"one")
        writer.send(b"boom")
        writer.send(b"two")
        for _ in range(500):  # (the frames after the failing one are read on)
            if b"two" in got:
                break
            await asyncio.sleep(0.01)
        writer.send(b"after")
        try:
            await asyncio.wait_for(second.wait(), 10)
        finally:
            writer.close()
            reader.close()
        return got

    got = asyncio.run(run())
    assert got == [b"one", b"boom", b"two", b"after"]


@pytest.mark.parametrize("cut", [3, 20, 27])
def test_a_pipelined_request_whose_head_is_split_after_a_local_one(side, cut):
    """A local request, then the start of the next request's head (its method and part of its
    target or headers) in the same read; the rest of that head comes later. The bytes of the
    unfinished head are inside the parser, not yet re-framed for the sidecar: the connection
    must not be handed over without them (the sidecar would read the tail of a head: 400)."""
    import time

    second = _get("/readyz", "X-Second: yes\r\n")
    with _connect(side.url) as sock:
        sock.sendall(_get("/readyz") + second[:cut])
        time.sleep(0.3)  # not a timed assertion: the first part is read (and handed over) on its own
        sock.sendall(second[cut:])
        with sock.makefile("rb") as f:
            first = _read_response(f)
            then = _read_response(f)
    assert first[0] == 200 and json.loads(first[2])["ready"] is True
    assert then[0] == 200 and json.loads(then[2])["ready"] is True, then


def test_a_restarted_child_that_never_comes_up_is_killed_and_started_again(proc_side, tmp_path, monkeypatch):
    """A child started again that hangs before it accepts (its import stuck: here a module that
    sleeps) would leave the port's connections in the backlog for good: the supervisor gives it
    the start's ``READY_TIMEOUT_S``, then kills it and starts another."""
    from monitor.server import dataplane

    s = proc_side
    plane = _plane(s)
    (tmp_path / "dataplane_hangs_for_this_test.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(dataplane, "CHILD_MODULE", "dataplane_hangs_for_this_test")
    monkeypatch.setattr(dataplane, "READY_TIMEOUT_S", 1.0)
    first = plane.proc
    os.kill(first.pid, 9)
    assert wait_until(lambda: plane.proc is not first, 10)
    hung = plane.proc
    assert wait_until(lambda: hung.poll() is not None, 15), "the child that never came up is still running"
    monkeypatch.setattr(dataplane, "CHILD_MODULE", "monitor.server.dataplane_child")
    assert wait_until(lambda: plane.proc not in (first, hung) and plane.proc.poll() is None and plane.reader is not None
                      and not plane.reader.closed and plane._ready is not None and plane._ready.done(), 30)
    assert _status_ok(s)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="/proc/PID/cmdline is what ps shows")
def test_the_childs_command_line_shows_no_credential_of_the_upstream(tmp_path, upstream):
    """The child's configuration holds the upstream's URL, which may carry credentials
    (``http://user:secret@model:8080``): it is not on the command line, which every local user
    reads (``ps``), but in the child's environment (readable by its user only)."""
    url = upstream.url.replace("http://", "http://monitor:s3cret-for-this-test@")
    s = start_proxying({**IRIS, "server": {"proxy": {"oip_output": "probs"}}}, tmp_path, "process", proxy_upstream=url)
    try:
        plane = _plane(s)
        with open(f"/proc/{plane.proc.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        assert b"monitor.server.dataplane_child" in cmdline
        assert b"s3cret-for-this-test" not in cmdline
        assert _status_ok(s)
    finally:
        s.close()


def test_an_upgrade_request_for_a_local_route_is_answered_by_the_sidecar(side):
    """``Connection: Upgrade`` on one of the sidecar's routes (the parser stops at the upgrade):
    the request and the bytes after it go to the sidecar's aiohttp, which answers it as on its
    own port (no upgrade there: a plain answer)."""
    with _connect(side.url) as sock:
        sock.sendall(_get("/readyz", "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        with sock.makefile("rb") as f:
            status, _, body = _read_response(f)
    assert status == 200 and json.loads(body)["ready"] is True


def test_a_sync_waiting_on_a_child_that_dies_returns_and_the_next_child_answers_syncs(proc_side):
    """A scrape's sync waits for a child that does not answer (stopped), which is then killed:
    the sync returns (nothing more comes from that child), and the next child answers its own."""
    import concurrent.futures

    s = proc_side
    plane = _plane(s)
    first = plane.proc
    os.kill(first.pid, 19)  # SIGSTOP: it reads no SYNC
    waiting: concurrent.futures.Future = asyncio.run_coroutine_threadsafe(plane.sync(timeout=60.0), s.server.lt.loop)
    assert wait_until(lambda: len(plane._syncs) == 1, 10)
    assert not waiting.done()
    os.kill(first.pid, 9)
    waiting.result(timeout=20)
    assert wait_until(lambda: plane.proc is not first and plane._ready is not None and plane._ready.done(), 20)
    assert _status_ok(s)
    s.server.lt.call(plane.sync(timeout=60.0))  # answered by the new child (else the call times out)
    assert plane._syncs == []


def _wakeups(pid: int) -> int:
    """How many times the process's threads went to sleep and woke up (voluntary switches)."""
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            n += sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
    return n


def test_a_handover_waiting_on_a_client_that_does_not_read_costs_no_polling(proc_side):
    """A local request queued behind a proxied answer the client does not read: the child waits
    for its write buffer to drain (the transport tells it), it does not wake up every few
    milliseconds to look, however long the client takes; then both answers arrive in order."""
    import time

    if not os.path.exists(f"/proc/{os.getpid()}/task"):
        pytest.skip("/proc is not available")
    s = proc_side
    plane = _plane(s)
    child = plane.proc.pid
    # a small kernel send buffer for the connections accepted from now on (they inherit it from
    # the listening socket): most of the answer then waits in the child's own write buffer
    plane.listeners[0].sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = json.dumps(oip(5000, rid="big")).encode()  # ~100 kB
    with _connect(s.url) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(_post("/v2/models/mirror/infer", big) + _get("/readyz"))
        time.sleep(0.5)  # the answer backs up in the child's write buffer, the handover waits
        before = _wakeups(child)
        time.sleep(1.0)
        woke = _wakeups(child) - before
        _assert_big_then_ready(sock, big)
    assert woke < 50, f"the child woke {woke} times in 1 s while waiting (polling every 2 ms wakes it ~500 times)"


# -- the shared tally of the taps (session 6's review) ----------------------------------------------

def test_the_shared_tally_is_not_inherited_by_other_children():
    """The counter's descriptor goes to the data path process by ``pass_fds`` only: any other
    process the sidecar starts (or a fork) must not inherit it (PEP 446; ``memfd_create`` with
    flags 0 makes an inheritable descriptor)."""
    from monitor.server.tally import SharedTally

    tally = SharedTally.create()
    try:
        assert os.get_inheritable(tally.fd) is False
        tally.add(3)
        assert tally.value == 3
    finally:
        tally.close()


def _tallies(pid: int) -> int:
    """How many tallies' shared memory files the process ``pid`` holds descriptors of (an
    ``mmap`` keeps a descriptor of its own: one file, two descriptors)."""
    files = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if "monitor-dataplane-tally" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                files.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
        except OSError:  # closed meanwhile
            continue
    return len(files)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or not hasattr(os, "memfd_create"),
                    reason="/proc/PID/fd names a memfd")
def test_restarts_keep_one_tally_open_in_each_process(proc_side):
    """Every child gets a new shared counter; the sidecar closes the previous one once it has
    counted it, so however many times the child dies, the sidecar holds as many as before (the
    running child's), and the child one (the descriptor-count test above tolerates a leak of one
    per restart)."""
    s = proc_side
    plane = _plane(s)
    held = _tallies(os.getpid())  # this one's, and those of any other sidecar this process runs
    assert held >= 1 and _tallies(plane.proc.pid) == 1
    for _ in range(3):
        first = plane.proc.pid
        os.kill(first, 9)
        assert wait_until(lambda: plane.proc.pid != first and plane.reader is not None and not plane.reader.closed
                          and plane.tally is not None, 20)
        assert _status_ok(s)
    assert plane.restarts >= 3
    assert _tallies(os.getpid()) == held
    assert _tallies(plane.proc.pid) == 1


def test_stop_returns_once_the_child_is_reaped_and_its_tally_counted(proc_side):
    """The child closes its channel before it exits (its last batch written, then the
    interpreter's exit): the shutdown (``in_flight`` is 0 once the channel is closed) must still
    wait for the process to be gone, so that what it tapped and never sent is counted before
    the sidecar's last drain and checkpoint, not after (or never, once its loop is gone). Here
    the child is stopped (SIGSTOP) between the two, and the channel closed."""
    s = proc_side
    plane = _plane(s)
    child = plane.proc
    os.kill(child.pid, 19)  # SIGSTOP: it cannot exit until it is killed

    async def close_then_stop() -> tuple[bool, bool, bool]:
        assert plane.reader is not None
        plane.reader.close()  # as when the child has closed its end
        await plane.stop(10.0)
        assert plane._exited is not None
        return plane._exited.is_set(), child.poll() is not None, plane.tally is None

    assert s.server.lt.call(close_then_stop()) == (True, True, True)


def test_a_failure_counting_a_dead_childs_taps_does_not_stop_its_supervision(proc_side, monkeypatch):
    """What a dead child never sent is counted before it is started again; a failure there (the
    counter's descriptor already gone: EBADF) is logged, and the child is started again all the
    same (else the port's connections wait in the backlog for good, and a shutdown for a reap
    that never ends)."""
    from monitor.server.tally import SharedTally

    real = SharedTally.close

    def close(self) -> None:
        real(self)
        raise OSError(9, "Bad file descriptor")

    monkeypatch.setattr(SharedTally, "close", close)
    s = proc_side
    plane = _plane(s)
    first = plane.proc.pid
    os.kill(first, 9)
    assert wait_until(lambda: plane.proc.pid != first and plane.proc.poll() is None and plane.reader is not None
                      and not plane.reader.closed, 20)
    assert _status_ok(s)
