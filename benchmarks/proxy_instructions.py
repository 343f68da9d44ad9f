"""Instructions (and CPU) per proxied request of the proxy's data path process, against a byte relay.

Why: on this shared 2-core machine wall-clock timings are noisy, and hardware counters are not
available; valgrind's callgrind counts the instructions a process executes, deterministically.
This measures the data path process exactly as ``monitor serve`` starts it
(``python -m monitor.server.dataplane_child -``, :mod:`monitor.server.dataplane_child`, on uvloop,
with the sidecar application's routes and taps, a channel socket and the shared tally) and, in
the same run, the byte relay of ``benchmarks/bench_proxy.py`` (no HTTP parsing, no monitoring:
the floor of an asyncio proxy), each:

- under ``valgrind --tool=callgrind``: after a warm-up, the counters are zeroed
  (``callgrind_control -z``), N closed-loop OIP v2 infer requests are sent (the payload of
  ``bench_proxy.py``, 5 ms apart so that each is reported to the sidecar in a batch of its own,
  whatever the machine's speed), and the counters dumped (``callgrind_control -d``):
  instructions per request, without start-up (user space only: the kernel's share, the same
  for every target, is not counted);
- without valgrind: the CPU seconds (user and system, ``/proc/PID/stat``) each process spent on
  M requests, all processes running at once and driven in alternating rounds.

It prints both per-request figures and the ratios to the relay, checks that every request was
answered 200 and that the data path sent a tap for each one over its channel. ``--baseline
COMMIT`` measures that commit's data path too, in the same run (before and after on the same
machine state); ``--write`` writes the table to ``benchmarks/results/proxy_instructions.md``
(keeping its hand-written ``## Notes``); ``--annotate DIR`` keeps the callgrind files and prints
each one's instructions per request by shared object and by function (self cost);
``--profile`` runs the data path under cProfile instead (Python-level time by function), and
``--opcodes`` under an opcode tracer (Python opcodes per request by function, deterministic).

Loopback only, bounded: a few thousand requests per target (a few minutes in all).

Run: ``.venv/bin/python benchmarks/proxy_instructions.py [--requests 2000] [--baseline COMMIT] [--write]``
"""

from __future__ import annotations

import argparse
import asyncio
import marshal
import multiprocessing
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

RESULTS = HERE / "results" / "proxy_instructions.md"
PATH = "/v2/models/iris/infer"


# -- the processes under test ----------------------------------------------------------------------
def _sidecar_routes(upstream: str, segment_header: str | None = None) -> tuple[object, list, dict]:
    """The lean settings, route specs and tap kinds ``monitor serve --proxy`` hands its data path
    (the same configuration as ``bench_proxy.py``; ``server.segment_header`` when given)."""
    from monitor.config import parse_config
    from monitor.server import keys as K
    from monitor.server.app import build_sidecar, create_app
    from monitor.server.leanproxy import LeanSettings
    from monitor.server.proxyroutes import route_specs

    folder = tempfile.mkdtemp(prefix="monitor-bench-instr-")
    raw = {"model": "iris", "features": ["a", "b", "c", "d"],
           "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
           "server": {"port": 0, "proxy": {"oip_output": "probs", "engine": "lean", "process": True}}}
    if segment_header:
        raw["server"]["segment_header"] = segment_header
    sidecar = build_sidecar(parse_config(raw, os.path.join(folder, "monitor.yaml"), Path(folder)), proxy_upstream=upstream)
    app = create_app(sidecar, load_in_thread=False)
    proxy = app[K.PROXY]
    kinds = {name: (None if tap is None else tap.kind) for name, tap in proxy.taps.items()}
    return LeanSettings.of(proxy), route_specs(app.router), kinds


def _settings_for(settings: object, source: Path) -> object:
    """``settings`` with only the fields the ``LeanSettings`` of the code at ``source`` has (a
    baseline from before a field was added reads its child config with ``LeanSettings(**raw)``)."""
    import types

    names = subprocess.run([sys.executable, "-c", "import dataclasses, monitor.server.leanproxy as m; "
                            "print(' '.join(f.name for f in dataclasses.fields(m.LeanSettings)))"],
                           env=dict(os.environ, PYTHONPATH=str(source)), cwd=source, check=True, capture_output=True,
                           text=True).stdout.split()
    return types.SimpleNamespace(**{k: v for k, v in vars(settings).items() if k in names})


class _PortQueue:
    def put(self, port: int) -> None:
        print(f"PORT {port}", flush=True)


def _run_relay(upstream: str) -> None:
    """Entry of the relay process (``--relay UPSTREAM``): bench_proxy's byte relay."""
    from bench_proxy import _relay_proxy

    _relay_proxy(upstream, _PortQueue())


@dataclass
class Proc:
    """One process under test: its Popen, the port it serves on, and (the data path) its channel."""

    name: str
    proc: subprocess.Popen
    port: int
    taps: list[int] = field(default_factory=lambda: [0])
    cleanup: list = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for fn in self.cleanup:
            fn()


def _valgrind(out_dir: str | None) -> list[str]:
    if out_dir is None:
        return []
    if out_dir.startswith("opcodes:"):
        return [str(Path(__file__).resolve()), "--trace-child", out_dir.partition(":")[2]]
    if out_dir.startswith("cprofile:"):
        return ["-m", "cProfile", "-o", out_dir.partition(":")[2]]
    return ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out_dir}/callgrind.out.%p"]


def start_relay(upstream: str, out_dir: str | None) -> Proc:
    proc = subprocess.Popen([*_valgrind(out_dir), sys.executable, str(Path(__file__).resolve()), "--relay", upstream],
                            stdout=subprocess.PIPE, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    m = re.match(r"PORT (\d+)", line)
    if m is None:
        proc.kill()
        raise RuntimeError(f"the relay did not start: {line!r}")
    return Proc("relay", proc, int(m.group(1)))


def _drain_channel(sock: socket.socket, taps: list[int], answers: list[int]) -> None:
    """Reads the child's frames (as the sidecar would), counting the answered exchanges and taps."""
    buf = b""
    while True:
        try:
            data = sock.recv(1 << 18)
        except OSError:
            return
        if not data:
            return
        buf += data
        while len(buf) >= 4:
            (size,) = struct.unpack_from("<I", buf)
            if len(buf) < 4 + size:
                break
            msg = marshal.loads(buf[4:4 + size])
            buf = buf[4 + size:]
            if msg[0] == 0:  # BATCH: (BATCH, answers, counts, requests, dropped)
                answers[0] += len(msg[1])
                taps[0] += sum(1 for a in msg[1] if a[4] is not None)


def start_dataplane(settings: object, specs: list, kinds: dict, out_dir: str | None, source: Path = REPO) -> Proc:
    from monitor.server.dataplane import MAX_PENDING_BYTES
    from monitor.server.dataplane_child import CONFIG_ENV, ChildConfig
    from monitor.server.tally import SharedTally

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    tally = SharedTally.create()
    cfg = ChildConfig(settings, theirs.fileno(), [(listener.fileno(), specs, kinds)], MAX_PENDING_BYTES, 5.0,
                      "uvloop", tally.fd)
    env = dict(os.environ, PYTHONPATH=str(source))
    env[CONFIG_ENV] = cfg.dumps()
    wrap = _valgrind(out_dir)
    if "--trace-child" in wrap:  # this script, tracing the child's opcodes: it runs the module itself
        cmd = [sys.executable, *wrap]
    else:
        cmd = ([sys.executable, *wrap] if wrap[:1] == ["-m"] else [*wrap, sys.executable]) + ["-m", "monitor.server.dataplane_child", "-"]
    proc = subprocess.Popen(cmd,
                            pass_fds=[theirs.fileno(), listener.fileno(), tally.fd], env=env, cwd=source,
                            stdin=subprocess.DEVNULL)
    theirs.close()
    port = listener.getsockname()[1]
    listener.close()  # the child holds its own descriptor
    # READY first
    head = b""
    ours.settimeout(300)
    while len(head) < 4:
        head += ours.recv(4 - len(head))
    (size,) = struct.unpack("<I", head)
    body = b""
    while len(body) < size:
        body += ours.recv(size - len(body))
    assert marshal.loads(body)[0] == 3, "the data path did not say READY"
    ours.settimeout(None)
    p = Proc("data path", proc, port)
    answers = [0]
    threading.Thread(target=_drain_channel, args=(ours, p.taps, answers), daemon=True).start()
    p.cleanup += [ours.close, tally.close]
    return p


# -- the load -------------------------------------------------------------------------------------
#: a header every request carries (``--segment-header NAME``: ``NAME: tenant-a``), or None
EXTRA_HEADER: str | None = None


def _raw_request(port: int) -> bytes:
    from bench_proxy import BODY

    extra = f"{EXTRA_HEADER}\r\n" if EXTRA_HEADER else ""
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


async def _closed_loop(port: int, total: int, conns: int, gap: float = 0.0) -> int:
    """``total`` requests over ``conns`` keep-alive connections, each sending its next request
    when the last is answered (and ``gap`` seconds have passed); the count of non-200 answers."""
    from bench_proxy import _Conn

    loop = asyncio.get_running_loop()
    raw = _raw_request(port)
    bad = 0
    left = total

    async def worker() -> None:
        nonlocal bad, left
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        while left > 0:
            left -= 1
            if await conn.request(raw) != 200:
                bad += 1
            if gap:
                await asyncio.sleep(gap)
        conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return bad


def drive(port: int, total: int, conns: int, gap: float = 0.0) -> None:
    bad = asyncio.run(_closed_loop(port, total, conns, gap))
    if bad:
        raise RuntimeError(f"{bad} of {total} requests were not answered 200")


def _cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def self_costs(path: str) -> "tuple[collections.Counter[str], collections.Counter[str]]":
    """Instructions by shared object and by function, each function's own (not its callees'),
    read from a callgrind file (``callgrind_annotate`` folds the interpreter's recursion into
    cycles and reports inclusive costs here)."""
    import collections

    names: dict[tuple[str, str], str] = {}

    def named(kind: str, text: str) -> str:
        m = re.match(r"\((\d+)\)(?: (.*))?", text)
        if m is None:
            return text
        if m.group(2) is not None:
            names[(kind, m.group(1))] = m.group(2)
        return names.get((kind, m.group(1)), text)

    by_object: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    obj = fn = ""
    after_call = False
    with open(path) as f:
        for line in f:
            head = line[:4]
            if head.startswith("ob="):
                obj = named("ob", line[3:].strip())
            elif head.startswith("fn="):
                fn = named("fn", line[3:].strip())
            elif head.startswith(("cob", )):
                named("ob", line[4:].strip())
            elif head.startswith("cfn"):
                named("fn", line[4:].strip())
            elif head.startswith("call"):
                after_call = True  # the next cost line is the call's inclusive cost: not this function's
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_call:
                    after_call = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    cost = int(parts[1])
                    by_object[obj.rsplit("/", 1)[-1]] += cost
                    by_function[f"{obj.rsplit('/', 1)[-1]}: {fn}"] += cost
    return by_object, by_function


def _callgrind_control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=300)


def _dumped_instructions(out_dir: str, pid: int) -> tuple[int, str]:
    """The instruction count of the dump ``callgrind_control -d`` wrote (the first one: ``.1``)."""
    path = os.path.join(out_dir, f"callgrind.out.{pid}.1")
    deadline = time.monotonic() + 120
    while True:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if m:
                return int(m.group(1)), path
        if time.monotonic() > deadline:
            raise RuntimeError(f"no callgrind dump at {path}")
        time.sleep(0.2)


@dataclass
class Figure:
    instructions: float = 0.0  # per request
    cpu_us: float = 0.0  # per request
    user_us: float = 0.0
    sys_us: float = 0.0
    taps: int | None = None
    dump: str = ""


def measure(name: str, start, requests: int, warmup: int, conns: int, keep: str | None, gap: float) -> Figure:
    """Instructions per request under callgrind, start-up and warm-up excluded."""
    fig = Figure()
    out_dir = tempfile.mkdtemp(prefix="monitor-callgrind-")
    p = start(out_dir)
    try:
        drive(p.port, warmup, conns)
        time.sleep(1.0)  # the warm-up's last batch is in
        _callgrind_control("-z", p.proc.pid)
        taps0 = p.taps[0]
        drive(p.port, requests, conns, gap)
        _callgrind_control("-d", p.proc.pid)
        ir, path = _dumped_instructions(out_dir, p.proc.pid)
        fig.instructions = ir / requests
        if keep:
            fig.dump = os.path.join(keep, f"callgrind.{name.replace(' ', '_')}.out")
            shutil.copy(path, fig.dump)
    finally:
        p.stop()
        shutil.rmtree(out_dir, ignore_errors=True)
    if name.startswith("data path"):
        time.sleep(1.0)
        fig.taps = p.taps[0] - taps0
    return fig


def measure_cpu(starts: dict, figs: dict, requests: int, warmup: int, conns: int, rounds: int, gap: float) -> None:
    """CPU per request without valgrind: every target running at once, driven in alternating
    rounds (so that all meet the same machine load), user and system time apart."""
    procs = {name: start(None) for name, start in starts.items()}
    try:
        for p in procs.values():
            drive(p.port, warmup, conns)
        used = {name: [0.0, 0.0] for name in procs}
        for _ in range(rounds):
            for name, p in procs.items():
                u0, s0 = _cpu(p.proc.pid)
                drive(p.port, requests // rounds, conns, gap)
                u1, s1 = _cpu(p.proc.pid)
                used[name][0] += u1 - u0
                used[name][1] += s1 - s0
        for name, (user, system) in used.items():
            n = requests // rounds * rounds
            figs[name].cpu_us = (user + system) / n * 1e6
            figs[name].user_us = user / n * 1e6
            figs[name].sys_us = system / n * 1e6
    finally:
        for p in procs.values():
            p.stop()


def profile(settings: object, specs: list, kinds: dict, requests: int, warmup: int, conns: int) -> None:
    """The data path under cProfile (no valgrind): Python calls per request, by function (the
    warm-up included, a few hundred requests out of thousands)."""
    import pstats

    out = tempfile.mktemp(prefix="monitor-cprofile-")
    p = start_dataplane(settings, specs, kinds, "cprofile:" + out)
    try:
        drive(p.port, warmup + requests, conns)
    finally:
        p.stop()
    stats = pstats.Stats(out)
    total = warmup + requests
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # by time in the function itself
    calls = sum(v[1] for _, v in rows)
    print(f"Python-visible calls per request: {calls / total:.1f}")
    for (file, line, fn), (cc, nc, tt, ct, _) in rows[:45]:
        print(f"{nc / total:7.2f}  {tt / total * 1e6:7.2f} us  {Path(file).name}:{line}({fn})")
    os.unlink(out)


def _trace_child(out: str) -> None:
    """Entry of the data path under an opcode tracer (``--trace-child FILE``): every Python
    opcode it executes, counted by function, written to FILE when it exits."""
    import atexit
    import collections
    import runpy

    counts: collections.Counter[str] = collections.Counter()

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202 - sys.settrace's signature
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
        elif event == "opcode":
            code = frame.f_code
            counts[f"{Path(code.co_filename).name}:{code.co_firstlineno}({code.co_name})"] += 1
        return tracer

    def dump() -> None:
        sys.settrace(None)
        with open(out, "w") as f:
            f.writelines(f"{n}\t{key}\n" for key, n in counts.items())

    atexit.register(dump)
    sys.argv = [sys.argv[0], "-"]
    sys.settrace(tracer)
    runpy.run_module("monitor.server.dataplane_child", run_name="__main__")


def opcodes(settings: object, specs: list, kinds: dict, requests: int, warmup: int, conns: int) -> None:
    """Python opcodes per request of the data path, by function: two runs of ``warmup`` and
    ``warmup + requests`` requests, the difference (start-up and warm-up cancel out)."""
    import collections

    counted = []
    for total in (warmup, warmup + requests):
        out = tempfile.mktemp(prefix="monitor-opcodes-")
        p = start_dataplane(settings, specs, kinds, "opcodes:" + out)
        try:
            drive(p.port, total, conns, 0.005)
        finally:
            p.stop()
        with open(out) as f:
            counted.append(collections.Counter({key: int(n) for n, key in (line.rstrip("\n").split("\t") for line in f)}))
        os.unlink(out)
    diff = collections.Counter({key: (n - counted[0][key]) / requests for key, n in counted[1].items()})
    print(f"Python opcodes per request: {sum(diff.values()):,.0f}")
    for key, n in diff.most_common(40):
        if n >= 0.5:
            print(f"{n:8.1f}  {key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests counted under callgrind, per target")
    ap.add_argument("--warmup", type=int, default=300, help="requests before counting (connections, caches, pools)")
    ap.add_argument("--conns", type=int, default=1, help="client connections, each closed-loop")
    ap.add_argument("--cpu-requests", type=int, default=10000, help="requests for the CPU figure (no valgrind)")
    ap.add_argument("--gap-ms", type=float, default=15.0,
                    help="under callgrind, the pause between a connection's answer and its next request: longer than the "
                         "data path's batch delay (10 ms), so that every request is reported in a batch of its own whatever "
                         "the machine's speed (at 1,000 requests/s a batch carries about ten)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of the CPU measure")
    ap.add_argument("--cpu-gap-ms", type=float, default=0.0,
                    help="the pause between an answer and the next request in the CPU measure")
    ap.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(REPO)}")
    ap.add_argument("--annotate", metavar="DIR", help="keep the callgrind dumps in DIR and print the top functions")
    ap.add_argument("--profile", action="store_true", help="instead: the data path under cProfile, calls per request")
    ap.add_argument("--baseline", metavar="COMMIT",
                    help="also measure the data path of this commit (its monitor/ package extracted with git archive), in "
                         "the same run: before and after on the same machine state")
    ap.add_argument("--segment-header", metavar="NAME",
                    help="every request carries the header NAME: tenant-a, and the data path is measured a second time "
                         "with server.segment_header: NAME (the target 'data path, segment_header'), in the same run")
    ap.add_argument("--only", choices=["relay", "dataplane"], help="measure one target only")
    ap.add_argument("--opcodes", action="store_true",
                    help="instead: the data path under an opcode tracer, Python opcodes per request by function")
    ap.add_argument("--relay", metavar="UPSTREAM", help=argparse.SUPPRESS)  # entry of the relay process
    ap.add_argument("--trace-child", metavar="FILE", help=argparse.SUPPRESS)  # entry of the traced data path
    args = ap.parse_args()
    global EXTRA_HEADER
    if args.relay:
        _run_relay(args.relay)
        return
    if args.trace_child:
        _trace_child(args.trace_child)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    from bench_proxy import _upstream

    q: multiprocessing.Queue[int] = multiprocessing.Queue()
    up = multiprocessing.Process(target=_upstream, args=(q,), daemon=True)
    up.start()
    upstream = f"http://127.0.0.1:{q.get(timeout=30)}"
    if args.annotate:
        os.makedirs(args.annotate, exist_ok=True)
    t0 = time.monotonic()
    load = os.getloadavg()
    cleanup: list = []
    figs: dict[str, Figure] = {}
    try:
        settings, specs, kinds = _sidecar_routes(upstream)
        if args.segment_header:
            EXTRA_HEADER = f"{args.segment_header}: tenant-a"
        if args.profile:
            profile(settings, specs, kinds, args.cpu_requests, args.warmup, args.conns)
            return
        if args.opcodes:
            opcodes(settings, specs, kinds, args.requests, args.warmup, args.conns)
            return
        starts = {}
        if args.only != "dataplane":
            starts["relay"] = lambda d: start_relay(upstream, d)
        if args.baseline:
            base = Path(tempfile.mkdtemp(prefix="monitor-baseline-"))
            cleanup.append(lambda: shutil.rmtree(base, ignore_errors=True))
            archive = subprocess.run(["git", "archive", args.baseline, "monitor"], cwd=REPO, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            base_settings = _settings_for(settings, base)
            starts[f"data path at {args.baseline[:7]}"] = lambda d: start_dataplane(base_settings, specs, kinds, d, base)
        if args.only != "relay":
            starts["data path"] = lambda d: start_dataplane(settings, specs, kinds, d)
            if args.segment_header:
                seg_settings, seg_specs, seg_kinds = _sidecar_routes(upstream, args.segment_header)
                starts["data path, segment_header"] = lambda d: start_dataplane(seg_settings, seg_specs, seg_kinds, d)
        for name, start in starts.items():
            figs[name] = measure(name, start, args.requests, args.warmup, args.conns, args.annotate, args.gap_ms / 1e3)
        if args.cpu_requests > 0:
            measure_cpu(starts, figs, args.cpu_requests, args.warmup, args.conns, args.rounds, args.cpu_gap_ms / 1e3)
    finally:
        for fn in cleanup:
            fn()
        up.terminate()
        up.join(10)
    relay = figs.get("relay")
    rows = []
    for name, fig in figs.items():
        ratio_i = f"{fig.instructions / relay.instructions:.2f}" if relay else "-"
        ratio_c = f"{fig.cpu_us / relay.cpu_us:.2f}" if relay and relay.cpu_us else "-"
        rows.append(f"| {name} | {fig.instructions:,.0f} | {ratio_i} | {fig.cpu_us:.1f} ({fig.user_us:.1f} + {fig.sys_us:.1f}) "
                    f"| {ratio_c} |")
    lines = [
        f"OIP v2 infer requests (the payload of `bench_proxy.py`), {args.conns} closed-loop keep-alive connections on "
        f"127.0.0.1, {args.warmup} warm-up requests then {args.requests:,} counted under `valgrind --tool=callgrind` "
        f"({args.gap_ms:g} ms between an answer and the next request: one tap batch per request; "
        f"instructions of the whole process in user space, start-up excluded) and {args.cpu_requests:,} timed without valgrind "
        f"(user + system CPU of the process; all processes running at once, in {args.rounds} alternating rounds, "
        f"{args.cpu_gap_ms:g} ms between an answer and the next request). The data path is `python -m monitor.server.dataplane_child` on uvloop, as "
        "`monitor serve --proxy` starts it (the sidecar's routes and taps, the channel read as the sidecar reads it, "
        "the shared tally); the relay is `bench_proxy.py`'s byte relay (uvloop, no HTTP parsing, no monitoring).",
        "",
        "| process | instructions per request | vs relay | CPU us per request (user + system) | vs relay |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    for name, fig in figs.items():
        if fig.taps is not None:
            ok = fig.taps == args.requests
            lines.append(f"Taps {name} sent over its channel for the {args.requests:,} counted requests: {fig.taps:,}"
                         f" ({'all' if ok else 'NOT all'}).")
    if args.segment_header:
        lines.append(f"Every request carried `{EXTRA_HEADER}`; `data path, segment_header` is the data path with "
                     f"`server.segment_header: {args.segment_header}`, the others without it.")
    lines.append(f"Machine load average before the run: {', '.join(f'{v:.1f}' for v in load)} on {os.cpu_count()} cores "
                 f"(the instruction counts do not depend on it; the CPU figures a little). Took {time.monotonic() - t0:.0f} s.")
    lines.append("")
    lines.append("Reproduce: `.venv/bin/python benchmarks/proxy_instructions.py "
                 + " ".join(a for a in sys.argv[1:] if not a.startswith("--annotate") and a != args.annotate) + "`")
    body = "\n".join(lines)
    print(body)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        old = RESULTS.read_text() if RESULTS.exists() else ""
        notes = old[old.index("\n## Notes"):] if "\n## Notes" in old else ""  # written by hand: kept
        RESULTS.write_text("# Instructions per proxied request: the data path process against a byte relay\n\n"
                           "Generated by `benchmarks/proxy_instructions.py`.\n\n" + body + "\n" + notes)
    if args.annotate:
        for name, fig in figs.items():
            if fig.dump:
                print(f"\n## {name}: instructions per request by object and by function, self cost ({fig.dump})")
                by_object, by_function = self_costs(fig.dump)
                for (key, cost) in [*by_object.most_common(6), *by_function.most_common(30)]:
                    print(f"{cost / args.requests:10,.0f}  {key}")


if __name__ == "__main__":
    main()
