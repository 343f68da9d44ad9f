"""CPU the sidecar spends per tapped proxy exchange, stage by stage, in one process.

``monitor serve --proxy`` runs the data path in a child process, which sends the tapped
exchanges to the sidecar unparsed, in batches (:mod:`monitor.server.dataplane`). This script
feeds the sidecar's real handling of those batches a stream of frames as the child writes them
(``marshal`` of ``(BATCH, answers, counts, requests, dropped)``), with the Open Inference Protocol
v2 bodies of ``benchmarks/bench_proxy.py`` (a 1x4 FP32 request, a 1x3 FP32 response), and
reports the CPU time per exchange (``time.process_time``, least of several rounds; no worker
thread runs, so the process's CPU is this thread's):

* ``frame``: the whole :meth:`DataPlane._frame` of a batch frame: decoding it, the metrics of
  each exchange, the tap (decoding the bodies, building the event, enqueueing it);
* ``worker``: the monitor's worker processing the events enqueued (:meth:`Monitor.flush`);
* the parts, each timed alone on the same data: ``marshal`` (decoding the frames), ``json``
  (``json.loads`` of both bodies: the baseline, the least any tap must do), ``payloads``
  (:func:`decode_inputs` / :func:`decode_outputs` of the decoded bodies).

Every figure is printed with its ratio to the ``json`` baseline of the same run, so that a run on
a busy machine still compares. Nothing is asserted on time.

Run: ``.venv/bin/python benchmarks/bench_tap_cost.py [--exchanges 20000] [--batch 3] [--rounds 5]
[--profile] [--write]`` (``--write`` puts the table in ``benchmarks/results/tap_cost.md``).
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "tap_cost.md"

#: the request and response bodies of benchmarks/bench_proxy.py (its upstream's reply)
REQUEST = json.dumps({"id": "bench", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                  "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()
RESPONSE = json.dumps({"model_name": "iris", "id": "bench", "outputs": [
    {"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.8, 0.15, 0.05]}]}).encode()
CONFIG = {"model": "iris", "features": ["a", "b", "c", "d"],
          "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
          "server": {"port": 0, "proxy": {"oip_output": "probs", "upstream": "http://127.0.0.1:9"}}}


def _setup(folder: Path) -> tuple[Any, Any, Any]:
    """A loaded sidecar with the proxy, its data plane (no child process: the frames are fed to
    it here) and its one monitor (no worker thread: the worker's part is timed apart)."""
    from tests.sidecar_support import in_process_data_plane

    sidecar, plane = in_process_data_plane(CONFIG, folder)
    return sidecar, plane, sidecar.resolve("iris")


def frames(n: int, batch: int) -> list[bytes]:
    """``n`` tapped exchanges in frames of ``batch``, as the data path's process writes them."""
    from monitor.server.dataplane_child import BATCH

    out = []
    t = time.time()
    for start in range(0, n, batch):
        answers = []
        for i in range(start, min(n, start + batch)):
            tap = ("iris", "127.0.0.1", None, REQUEST, RESPONSE, None, None, t + i * 1e-3)
            answers.append(("proxy_oip_v2", 200, 0.0004, 0.0006, tap))
        out.append(marshal.dumps((BATCH, answers, [], [], 0)))
    return out


def best(fn: Callable[[], None], rounds: int, before: Callable[[], None] | None = None) -> float:
    """Least CPU seconds of ``fn`` over ``rounds`` runs (``before`` runs untimed before each)."""
    times = []
    for _ in range(rounds):
        if before is not None:
            before()
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def measure(n: int, batch: int, rounds: int) -> dict[str, float]:
    """CPU microseconds per exchange of each stage (see the module's docstring)."""
    from monitor.server.payloads import decode_inputs, decode_outputs
    from tests.sidecar_support import close_data_plane

    folder = Path(tempfile.mkdtemp(prefix="tapcost-"))
    sidecar, plane, mon = _setup(folder)
    fs = frames(n, batch)
    queue = mon.queue

    def feed() -> None:
        for f in fs:
            plane._frame(f)

    def drop_queue() -> None:
        mon.flush()

    out: dict[str, float] = {}
    out["frame"] = best(feed, rounds, before=drop_queue)
    accepted = len(queue)
    assert accepted == n, f"{accepted} of {n} exchanges were enqueued"

    def work() -> None:
        mon.flush()

    def refill() -> None:
        mon.flush()
        feed()

    out["worker"] = best(work, rounds, before=refill)
    mon.flush()

    def unmarshal() -> None:
        for f in fs:
            marshal.loads(f)

    out["marshal"] = best(unmarshal, rounds)
    loads = json.loads

    def parse() -> None:
        for _ in range(n):
            loads(REQUEST)
            loads(RESPONSE)

    out["json"] = best(parse, rounds)
    req, resp = loads(REQUEST), loads(RESPONSE)

    def readers() -> None:
        for _ in range(n):
            decode_outputs(resp, output_name="probs", rows=int(decode_inputs(req).shape[0]))

    out["payloads"] = best(readers, rounds)
    close_data_plane(sidecar, plane)
    return {k: v / n * 1e6 for k, v in out.items()}


def live(rate: float, seconds: float, rounds: int) -> dict[str, float]:
    """The real process tree: ``monitor serve --proxy`` (the data path in its own process) in
    front of bench_proxy.py's upstream, driven at ``rate`` by its open-loop client. Returns the
    sidecar process's CPU per request (its event-loop thread and its other threads apart; the
    data path's process apart), and the sidecar's CPU over the same time idle, per second."""
    import asyncio
    import multiprocessing

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_proxy as bp
    from _sidecar import Serve
    from tests.sidecar_support import child_pids

    q: multiprocessing.Queue[int] = multiprocessing.Queue()
    up = multiprocessing.Process(target=bp._upstream, args=(q,), daemon=True)
    up.start()
    upstream = f"http://127.0.0.1:{q.get(timeout=30)}"
    cfg = {k: v for k, v in CONFIG.items() if k != "server"}
    cfg["server"] = {"port": 0, "proxy": {"oip_output": "probs"}}
    serve = Serve(cfg, extra_args=("--proxy", upstream))
    pid = serve.proc.pid
    try:
        kids = child_pids(pid)
        totals = {"loop": 0.0, "threads": 0.0, "data path": 0.0, "requests": 0.0}
        idle = {"loop": 0.0, "threads": 0.0}
        for _ in range(rounds):
            t0, k0 = bp._threads(pid), sum(bp._cpu(k) for k in kids)
            lat, errors, _ = asyncio.run(bp.open_loop(serve.url + "/v2/models/iris/infer", rate, seconds))
            t1, k1 = bp._threads(pid), sum(bp._cpu(k) for k in kids)
            totals["loop"] += t1.get(str(pid), 0.0) - t0.get(str(pid), 0.0)
            totals["threads"] += sum(v - t0.get(t, 0.0) for t, v in t1.items() if t != str(pid))
            totals["data path"] += k1 - k0
            totals["requests"] += len(lat) + 16 + errors
            t0 = bp._threads(pid)
            time.sleep(seconds)
            t1 = bp._threads(pid)
            idle["loop"] += t1.get(str(pid), 0.0) - t0.get(str(pid), 0.0)
            idle["threads"] += sum(v - t0.get(t, 0.0) for t, v in t1.items() if t != str(pid))
    finally:
        serve.stop()
        up.terminate()
    n = totals.pop("requests")
    out = {f"live {k}": v / n * 1e6 for k, v in totals.items()}
    out.update({f"idle {k}": v / (rounds * seconds) * 1e6 / rate for k, v in idle.items()})
    return out


def feed_only(n: int, batch: int, worker: bool) -> None:
    """Feed ``n`` exchanges once (and run the worker on them): the process that
    :func:`instructions` counts under callgrind."""
    folder = Path(tempfile.mkdtemp(prefix="tapcost-"))
    _, plane, mon = _setup(folder)
    fs = frames(n, batch)
    for f in fs:
        plane._frame(f)
    assert len(mon.queue) == n, len(mon.queue)
    if worker:
        mon.flush()


def instructions(batch: int, n1: int = 500, n2: int = 2500) -> dict[str, float] | None:
    """Instructions per exchange under ``valgrind --tool=callgrind`` (a count, not a time: the
    same on a busy machine): the difference between runs of ``n2`` and ``n1`` exchanges, so that
    the start-up (imports, the sidecar's set-up) cancels out. None without valgrind."""
    import re
    import shutil
    import subprocess

    if shutil.which("valgrind") is None:
        return None
    totals: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("frame", "worker"):
            for n in (n1, n2):
                out = Path(tmp) / f"cg-{mode}-{n}"
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
                       "--feed-only", mode, "--exchanges", str(n), "--batch", str(batch)]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONHASHSEED": "0"})
                m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
                assert m is not None, f"no instruction count in {out}"
                totals[(mode, n)] = int(m.group(1))
    frame = (totals[("frame", n2)] - totals[("frame", n1)]) / (n2 - n1)
    both = (totals[("worker", n2)] - totals[("worker", n1)]) / (n2 - n1)
    return {"frame": frame, "worker": both - frame}


def profile(n: int, batch: int) -> None:
    import cProfile
    import pstats

    folder = Path(tempfile.mkdtemp(prefix="tapcost-"))
    _, plane, mon = _setup(folder)
    fs = frames(n, batch)
    prof = cProfile.Profile()
    prof.enable()
    for f in fs:
        plane._frame(f)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    prof = cProfile.Profile()
    prof.enable()
    mon.flush()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


_LABELS = {
    "frame": "sidecar's handling of the frames (decode, metrics, tap, enqueue): `DataPlane._frame`",
    "worker": "worker processing the enqueued events: `Monitor.flush`",
    "marshal": "part: decoding the frames (`marshal.loads`)",
    "json": "part: `json.loads` of both bodies (baseline)",
    "payloads": "part: reading OIP v2 inputs and outputs of the decoded bodies (`decode_inputs`/`decode_outputs`)",
}


def table(us: dict[str, float]) -> str:
    base = us["json"]
    rows = ["| stage | CPU per exchange | ratio to json.loads of the bodies |", "|---|---|---|"]
    for key in ("frame", "worker", "marshal", "json", "payloads"):
        rows.append(f"| {_LABELS[key]} | {us[key]:.1f} us | {us[key] / base:.1f}x |")
    rows.append(f"| sidecar total (frame + worker) | {us['frame'] + us['worker']:.1f} us | "
                f"{(us['frame'] + us['worker']) / base:.1f}x |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=3, help="exchanges per frame (about 2 ms of traffic at 1,000 req/s)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions instead")
    ap.add_argument("--live", action="store_true",
                    help="also run monitor serve --proxy as a real process tree at --rate for --seconds per round")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--instructions", action="store_true",
                    help="also count instructions per exchange under valgrind's callgrind (about a minute)")
    ap.add_argument("--feed-only", choices=("frame", "worker"), help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args()
    if args.feed_only:
        feed_only(args.exchanges, args.batch, args.feed_only == "worker")
        return
    if args.profile:
        profile(args.exchanges, args.batch)
        return
    us = measure(args.exchanges, args.batch, args.rounds)
    load = os.getloadavg()[0]
    text = table(us)
    print(text)
    if args.instructions:
        ins = instructions(args.batch)
        if ins is None:
            print("\n(valgrind not installed: no instruction counts)")
        else:
            ins_text = ("| stage | instructions per exchange (callgrind) |\n|---|---|\n"
                        f"| {_LABELS['frame']} | {ins['frame']:,.0f} |\n| {_LABELS['worker']} | {ins['worker']:,.0f} |")
            print("\n" + ins_text)
            text += "\n\n" + ins_text
    if args.live:
        lv = live(args.rate, args.seconds, min(args.rounds, 3))
        rows = ["| the sidecar process at %d req/s (monitor serve --proxy) | CPU per request |" % args.rate, "|---|---|"]
        rows += [f"| {k} | {v:.1f} us |" for k, v in lv.items()]
        live_text = "\n".join(rows)
        print("\n" + live_text)
        text += "\n\n" + live_text
    print(f"\n{args.exchanges} exchanges in frames of {args.batch}, least of {args.rounds} rounds; load average {load:.1f} "
          f"on {os.cpu_count()} cores")
    if args.write:
        RESULTS.write_text(
            "# The sidecar's CPU per tapped proxy exchange\n\n"
            f"Generated by `python benchmarks/bench_tap_cost.py --write` ({args.exchanges} OIP v2 exchanges as in "
            f"bench_proxy.py, in frames of {args.batch} as the data path's process sends them, CPU time, least of "
            f"{args.rounds} rounds; load average {load:.1f} on {os.cpu_count()} cores).\n\n" + text + "\n")


if __name__ == "__main__":
    main()
