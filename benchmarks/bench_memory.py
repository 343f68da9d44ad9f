"""Bounded memory: the sidecar's resident memory under traffic built to make it grow.

``monitor serve`` runs as a real process with every default detector (a reference with labels,
so drift, probing and accuracy estimation are on), the shipped rule files, the reverse proxy in
front of a small JSON model server, and the forwarding receiver on UDP. The load, all on
127.0.0.1 and bounded in count and time, is adversarial for memory:

* NDJSON batches to ``/v1/events``: every event a new request id, a new client every few events,
  a new segment value and a new categorical input value at every event, distinct outputs;
* ``/v1/feedback``: labels for ids sent earlier (joins) and for ids never seen;
* CloudEvents halves without their partner (requests and responses with fresh ``ce-id``s);
* proxied ``POST /predict`` requests, each from a new client (``X-Client``);
* forwarding datagrams, each from a new sender id, and one sender whose ``dropped`` map names
  new reasons in every datagram.

Every few seconds the sidecar's RSS (``VmRSS`` of the process and of its children: the proxy's
data path process) is sampled against the events sent. The verdict compares the growth over the
second half of the events with the growth over the first half: once the caps have filled (the
table printed says when each does) the second half must be flat.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--quick] [--seconds S] [--events N]``;
results go to ``benchmarks/results/memory.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sidecar import REPO, Serve, metric, serve_forever  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "memory.md"
FEATURES = ["a", "b", "c", "d"]
CLASSES = ["setosa", "versicolor", "virginica"]
BATCH = 100  # events per NDJSON body
CLIENT_EVERY = 4  # a new client id every this many events
CONCURRENCY = 4
JOINER_CAP = 100_000  # request ids remembered for labels (monitor.labels.LabelJoiner's default capacity)


# -- the model server behind the proxy ---------------------------------------------------------------
def _model_server(port_q: "multiprocessing.Queue[int]") -> None:
    """``POST /predict``: {"instances": [row, ...]} -> {"predictions": [[p0, p1, p2], ...]}, distinct."""
    from aiohttp import web

    rng = random.Random(7)

    async def predict(request: web.Request) -> web.Response:
        body = await request.json()
        preds = []
        for _ in body.get("instances", []):
            p = [rng.random() + 1e-3 for _ in CLASSES]
            s = sum(p)
            preds.append([v / s for v in p])
        return web.json_response({"predictions": preds})

    app = web.Application()
    app.router.add_post("/predict", predict)
    serve_forever(app, port_q)


# -- resident memory -----------------------------------------------------------------------------------
def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from each process's parent id in /proc)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent_of[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return out


@dataclass
class Sample:
    seconds: float
    events: int  # prediction events sent
    processed: int  # predictions the worker has processed (monitor_calls_total)
    queued: int  # events waiting in the model's queue
    sidecar_mib: float
    children_mib: float


@dataclass
class Load:
    """What the load generator has sent so far (read by the sampler thread)."""

    events: int = 0  # prediction events: NDJSON + proxied rows + forwarded
    feedback: int = 0
    cloudevents: int = 0
    proxied: int = 0
    datagrams: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # HTTP status -> count (429/503 are retried later)
    stop: bool = False


class Sampler(threading.Thread):
    """RSS of the sidecar and its children, with what the worker has processed (one scrape and one
    status call per sample, as a Prometheus server and a probe would make)."""

    def __init__(self, serve: Serve, load: Load, every_s: float) -> None:
        super().__init__(daemon=True)
        self.serve, self.pid, self.load, self.every_s = serve, serve.proc.pid, load, every_s
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self._halt = threading.Event()

    def take(self) -> Sample:
        kids = _children(self.pid)
        try:
            processed = int(metric(self.serve.metrics(), "monitor_calls_total", model="iris"))
            queued = int(self.serve.status()["models"]["iris"]["queue_depth"])
        except (OSError, ValueError, KeyError):
            processed = self.samples[-1].processed if self.samples else 0
            queued = -1
        s = Sample(time.monotonic() - self.t0, self.load.events, processed, queued, _rss_kib(self.pid) / 1024,
                   sum(_rss_kib(k) for k in kids) / 1024)
        self.samples.append(s)
        return s

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            self.take()

    def halt(self) -> None:
        self._halt.set()
        self.join(10)


# -- the traffic ------------------------------------------------------------------------------------------
class Traffic:
    """Adversarial-for-memory events, every identifier fresh."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.n = 0  # events made so far: ids are derived from it
        self.sent_ids: list[str] = []  # a few recent ids, for feedback that joins

    def _row(self) -> dict[str, object]:
        r = self.rng
        row: dict[str, object] = {f: round(r.gauss(0, 1), 4) for f in FEATURES}
        row["region"] = f"region-{self.n}-{r.getrandbits(32):08x}"  # a new category every event
        return row

    def _probs(self) -> list[float]:
        p = [self.rng.random() + 1e-3 for _ in CLASSES]
        s = sum(p)
        return [round(v / s, 6) for v in p]

    def events_body(self) -> bytes:
        lines = []
        for _ in range(BATCH):
            rid = f"req-{self.n:012d}-{self.rng.getrandbits(64):016x}"
            lines.append(json.dumps({"inputs": self._row(), "outputs": self._probs(), "request_id": rid,
                                     "client": f"client-{self.n // CLIENT_EVERY}", "segment": f"segment-{self.n}"}))
            if self.n % 10 == 0:
                self.sent_ids.append(rid)
            self.n += 1
        del self.sent_ids[:-50]
        return ("\n".join(lines) + "\n").encode()

    def feedback_body(self) -> bytes:
        """Half labels for ids sent (they join), half for ids never seen."""
        known = self.sent_ids[-25:]
        unknown = [f"never-{self.n}-{i}" for i in range(25)]
        ids = known + unknown
        labels = [self.rng.choice(CLASSES) for _ in ids]
        return json.dumps({"type": "feedback", "request_ids": ids, "labels": labels}).encode()

    def cloudevent(self, part: str) -> tuple[dict[str, str], bytes]:
        """One request or response half whose partner never comes."""
        self.n += 1
        headers = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": f"ce-{part}-{self.n}",
                   "ce-type": f"org.kubeflow.serving.inference.{part}", "ce-source": "bench-memory",
                   "ce-inferenceservicename": "iris"}
        body = {"instances": [self._row()]} if part == "request" else {"predictions": [self._probs()]}
        return headers, json.dumps(body).encode()

    def proxied(self) -> tuple[dict[str, str], bytes]:
        self.n += 1
        return ({"Content-Type": "application/json", "X-Client": f"proxy-client-{self.n}"},
                json.dumps({"instances": [self._row()], "id": f"proxy-{self.n}"}).encode())

    def datagram(self, sender: str, seq: int, reasons: int = 0) -> bytes:
        self.n += 1
        ev = {"inputs": self._row(), "outputs": self._probs(), "request_id": f"fw-{self.n}", "client": f"fw-client-{self.n}"}
        dropped = {f"reason-{self.n}-{i}": 1 for i in range(reasons)}
        return json.dumps({"v": 1, "sender": sender, "seq": seq, "model": "iris", "dropped": dropped,
                           "events": [ev]}).encode()


async def drive(url: str, udp: tuple[str, int], load: Load, max_events: int, seconds: float) -> None:
    import aiohttp

    traffic = Traffic()
    lock = asyncio.Lock()  # the Traffic object is shared by the workers (one loop: only to keep ids in order)
    stop_at = time.monotonic() + seconds
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood_seq = 0

    async def post(session: aiohttp.ClientSession, path: str, body: bytes, headers: dict[str, str]) -> int:
        while time.monotonic() < stop_at:
            async with session.post(url + path, data=body, headers=headers) as r:
                await r.read()
                if r.status in (429, 503):  # the queue is full: wait, as a client should
                    load.refused[r.status] = load.refused.get(r.status, 0) + 1
                    await asyncio.sleep(0.02)
                    continue
                if r.status >= 300:
                    load.refused[r.status] = load.refused.get(r.status, 0) + 1
                return r.status
        return 0

    async def worker(k: int, session: aiohttp.ClientSession) -> None:
        nonlocal flood_seq
        while load.events < max_events and time.monotonic() < stop_at and not load.stop:
            async with lock:
                body = traffic.events_body()
                feedback = traffic.feedback_body()
                halves = [traffic.cloudevent("request"), traffic.cloudevent("response")]
                proxied = [traffic.proxied() for _ in range(2)]
                grams = [traffic.datagram(f"sender-{traffic.n}-{i}", 1) for i in range(5)]
                flood_seq += 1
                grams.append(traffic.datagram("flood", flood_seq, reasons=20))
            if await post(session, "/v1/events", body, {"Content-Type": "application/x-ndjson"}) == 202:
                load.events += BATCH
            if await post(session, "/v1/feedback", feedback, {"Content-Type": "application/json"}) == 202:
                load.feedback += 50
            for headers, ce in halves:
                if await post(session, "/v1/cloudevents", ce, headers) == 202:
                    load.cloudevents += 1
            for headers, req in proxied:
                if await post(session, "/predict", req, headers) == 200:
                    load.proxied += 1
                    load.events += 1
            for g in grams:
                sock.sendto(g, udp)
                load.datagrams += 1
                load.events += 1

    conn = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn) as session:
        await asyncio.gather(*(worker(k, session) for k in range(CONCURRENCY)))
    sock.close()


# -- the run -------------------------------------------------------------------------------------------------
def write_reference(folder: Path) -> Path:
    import numpy as np

    from monitor.profile import Profile

    rng = np.random.default_rng(0)
    n = 2000
    x = rng.normal(size=(n, len(FEATURES)))
    cat = rng.choice(["north", "south", "east", "west"], size=(n, 1)).astype(object)
    p = rng.dirichlet(np.ones(len(CLASSES)), size=n)
    labels = np.array([CLASSES[i] for i in p.argmax(axis=1)], dtype=object)
    return Profile.from_arrays(x, numeric_names=FEATURES, categorical=cat, categorical_names=["region"], scores=p,
                               labels=labels, classes=CLASSES).save(folder / "reference.npz")


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def verdict(samples: list[Sample]) -> tuple[str, dict[str, float]]:
    """Growth of the total RSS over the second half of the processed events against the first half."""
    pts = [s for s in samples if s.processed > 0]
    if len(pts) < 4:
        return "too few samples for a verdict", {}
    total = [s.sidecar_mib + s.children_mib for s in pts]
    half = (pts[0].processed + pts[-1].processed) / 2
    mid = min(range(len(pts)), key=lambda i: abs(pts[i].processed - half))
    first = total[mid] - total[0]
    second = total[-1] - total[mid]
    per_m1 = first / max(1, pts[mid].processed - pts[0].processed) * 1e6
    per_m2 = second / max(1, pts[-1].processed - pts[mid].processed) * 1e6
    figures = {"rss_start": total[0], "rss_mid": total[mid], "rss_end": total[-1], "rss_peak": max(total),
               "first_half_mib": first, "second_half_mib": second, "first_per_m": per_m1, "second_per_m": per_m2,
               "start_processed": pts[0].processed, "mid_processed": pts[mid].processed, "end_processed": pts[-1].processed}
    flat = second <= max(0.05 * total[mid], 0.25 * max(first, 0.0))
    filled = pts[mid].processed >= JOINER_CAP  # the largest per-event cap; the queue fills within seconds
    text = (f"RSS (sidecar + data path process) {total[0]:.1f} MiB after {pts[0].processed:,} events processed, "
            f"{total[mid]:.1f} MiB after {pts[mid].processed:,}, {total[-1]:.1f} MiB after {pts[-1].processed:,} "
            f"(peak {max(total):.1f}): {first:+.1f} MiB over the first half ({per_m1:+.1f} MiB per million events), "
            f"{second:+.1f} MiB over the second ({per_m2:+.1f} MiB per million). "
            + ("**Bounded**: the second half is flat (within 5% of the mid-run RSS, or under a quarter of the first half's growth)."
               if flat and filled else
               f"**No verdict**: the second half began before the label joiner's {JOINER_CAP:,} ids had filled, so growth "
               "there is expected; run longer (the full mode) for the plateau." if not filled else
               "**Still growing** in the second half, after every cap had filled: some structure is not bounded."))
    return text, figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run (under 60 s in all)")
    ap.add_argument("--seconds", type=float, default=None, help="load duration (default 180, quick 45)")
    ap.add_argument("--events", type=int, default=3_000_000, help="prediction events at most (bounded)")
    ap.add_argument("--every", type=float, default=None, help="seconds between RSS samples (default 5, quick 2)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results/memory.md as it is")
    args = ap.parse_args()
    seconds = args.seconds if args.seconds is not None else (45.0 if args.quick else 180.0)
    every = args.every if args.every is not None else (2.0 if args.quick else 5.0)

    q: multiprocessing.Queue[int] = multiprocessing.Queue()
    upstream = multiprocessing.Process(target=_model_server, args=(q,), daemon=True)
    upstream.start()
    up_port = q.get(timeout=30)
    udp_port = free_udp_port()

    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="monitor-bench-memory-"))
    ref = write_reference(folder)
    cfg = {
        "model": "iris",
        "features": [{"name": f, "kind": "numeric"} for f in FEATURES] + [{"name": "region", "kind": "categorical"}],
        "output": {"kind": "probabilities", "classes": CLASSES},
        "reference": {"path": str(ref)},
        "rules": {"files": [str(p) for p in sorted((REPO / "rules").glob("*.yml"))], "interval": "15s", "log": False},
        "server": {"port": 0, "client_header": "X-Client",
                   "proxy": {"upstream": f"http://127.0.0.1:{up_port}",
                             "routes": [{"path": "/predict", "model": "iris", "inputs": "instances", "outputs": "predictions",
                                         "request_id": "id"}]},
                   "forward": {"udp": f"127.0.0.1:{udp_port}"}},
    }
    serve = Serve(cfg, folder=folder)
    load = Load()
    sampler = Sampler(serve, load, every)
    load0 = os.getloadavg()
    try:
        base = sampler.take()
        sampler.start()
        t0 = time.monotonic()
        asyncio.run(drive(serve.url, ("127.0.0.1", udp_port), load, args.events, seconds))
        elapsed = time.monotonic() - t0
        time.sleep(min(every, 3.0))  # the worker's last drains
        sampler.take()
        sampler.halt()
        text = serve.metrics()
    finally:
        serve.stop(signal.SIGKILL)  # no graceful drain of a full queue: nothing here needs it (its data path process exits with it)
        upstream.terminate()
        upstream.join(10)
    load1 = os.getloadavg()

    samples = sampler.samples
    rows = ["| seconds | events sent | processed | queued | sidecar RSS MiB | data path RSS MiB | total MiB |",
            "|---|---|---|---|---|---|---|"]
    step = max(1, len(samples) // 30)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    for s in shown:
        rows.append(f"| {s.seconds:.0f} | {s.events:,} | {s.processed:,} | {s.queued:,} | {s.sidecar_mib:.1f} | {s.children_mib:.1f} "
                    f"| {s.sidecar_mib + s.children_mib:.1f} |")
    words, figures = verdict(samples)

    def m(name: str, **labels: str) -> float:
        return metric(text, name, **labels)

    sent = load.events
    full_at = next((x for x in samples if x.queued >= 0.9 * 100_000), None)
    caps = [
        ("model queue (raw events waiting for the worker)", "100,000 events (`queue.capacity`), then 429",
         f"{full_at.seconds:.0f} s in ({full_at.events:,} sent): the load outpaces the worker and stays at the cap"
         if full_at else "never full in this run"),
        ("label joiner (request ids awaiting labels)", f"{JOINER_CAP:,} ids (`LabelJoiner.capacity`), ids over 256 characters as digests",
         f"event {JOINER_CAP:,} (every event has a new id)"),
        ("probing clients", "10,000 clients (`max_clients`), LRU; ids cut to 200 characters",
         f"event about {10_000 * CLIENT_EVERY:,} (a new client every {CLIENT_EVERY} events, more from the proxy and forwarding); "
         f"tracked {m('monitor_probing_clients_tracked', model='iris'):,.0f}, evicted {m('monitor_probing_clients_evicted_total', model='iris'):,.0f}"),
        ("segment values", "20 (`segments.cap`), then `other`; each cut to 200 characters",
         f"event 20; overflow rows {m('monitor_segment_overflow_rows_total', model='iris'):,.0f}"),
        ("CloudEvents halves", "10,000 halves / 64 MiB, 30 s wait",
         f"first 30 s; pending at the end {m('monitor_cloudevents_pending'):,.0f}, given up "
         f"{m('monitor_cloudevents_unmatched_total', model='iris'):,.0f}"),
        ("categorical value codes (`_CODES`)", "100,000 values, then cleared", "event 100,000, then every 100,000 new values"),
        ("forwarding senders", "10,000 senders (least recently heard from goes), 300 s without a datagram; 16 drop reasons each",
         f"senders tracked at the end: {m('monitor_forward_senders'):,.0f}"),
        ("windows, rule store (in-memory TSDB)", "slots fixed at start; 1 h of event time, 100,000 series",
         "an hour of event time: not within this run (grows by one column per rule tick until then)"),
    ]
    cap_rows = ["| structure | bound | fills at |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in caps]
    refused = ", ".join(f"{k}: {v:,}" for k, v in sorted(load.refused.items())) or "none"
    body = "\n".join([
        f"`monitor serve` with every default detector (reference with labels), the shipped rules, the proxy in front of a "
        f"JSON model server and UDP forwarding; {elapsed:.0f} s of load from one client process on 127.0.0.1, "
        f"{CONCURRENCY} connections.",
        "",
        f"Sent: {sent:,} prediction events ({load.proxied:,} of them proxied, {load.datagrams:,} forwarded datagrams), "
        f"{load.feedback:,} labels (half for ids never seen), {load.cloudevents:,} CloudEvents halves without partner; "
        f"answers other than success (retried when 429/503): {refused}. "
        f"The sidecar processed {m('monitor_calls_total', model='iris'):,.0f} predictions "
        f"(shed {m('monitor_events_dropped_total', model='iris'):,.0f}).",
        "",
        f"Idle before the load: sidecar {base.sidecar_mib:.1f} MiB, data path process {base.children_mib:.1f} MiB.",
        "",
        *rows,
        "",
        *cap_rows,
        "",
        "Verdict: " + words,
        "",
        f"Machine load average (1, 5, 15 min): {load0[0]:.1f}, {load0[1]:.1f}, {load0[2]:.1f} before, "
        f"{load1[0]:.1f}, {load1[1]:.1f}, {load1[2]:.1f} after, on {os.cpu_count()} cores (shared with other work).",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/bench_memory.py{' --quick' if args.quick else ''}`",
    ])
    print(body)
    if figures:
        print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        title = "## Quick run" if args.quick else "## Full run"
        old = RESULTS.read_text() if RESULTS.exists() else "# Bounded memory\n\nGenerated by `benchmarks/bench_memory.py`.\n"
        if title + "\n" in old:
            start = old.index(title + "\n")
            nxt = old.find("\n## ", start + len(title))
            old = old[:start].rstrip() + ("\n\n" + old[nxt + 1:] if nxt != -1 else "")
        RESULTS.write_text(old.rstrip() + "\n\n" + title + "\n\n" + body + "\n")


if __name__ == "__main__":
    main()
