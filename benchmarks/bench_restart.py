"""Restart under load: ``kill -9`` the sidecar while events stream in, restart it, and measure
how much state was lost and whether alerts were re-sent.

* Load: NDJSON batches with request ids and wall-clock timestamps, sent continuously.
* A rule that always fires (``vector(1)``) delivers to a webhook receiver in this process.
* After a few checkpoint intervals the sidecar is killed with SIGKILL (no shutdown hook runs),
  then restarted from the same config.

Reported: the restored event clock against the time of the kill (target: behind by at most one
checkpoint interval, plus one worker poll), how many of the predictions accepted before the kill
can still be joined with their labels after the restart, and how many firing notifications the
alert produced across the restart (target: exactly one; the restored alert keeps its start time).

Run: ``.venv/bin/python benchmarks/bench_restart.py [--interval 1.0] [--load-seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sidecar import Serve, get, metric, write_section  # noqa: E402


class Webhook:
    def __init__(self) -> None:
        from aiohttp import web

        self.received: list[dict] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def hook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.json_response({})

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/hook", hook)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{[a for a in self.runner.addresses if isinstance(a, tuple)][0][1]}/hook"
            ready.set()

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(30)

    def firing(self, name: str) -> list[dict]:
        return [a for b in self.received for a in b.get("alerts", []) if a["labels"].get("alertname") == name and a["status"] == "firing"]


def post(url: str, body: bytes, ctype: str = "application/x-ndjson") -> int:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except Exception:  # noqa: BLE001 - the server was killed mid-request
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--interval", type=float, default=1.0, help="checkpoint interval, seconds")
    ap.add_argument("--load-seconds", type=float, default=5.0, help="load before the kill (bounded)")
    args = ap.parse_args()

    hook = Webhook()
    rules = yaml.safe_dump({"groups": [{"name": "restart", "rules": [{"alert": "AlwaysOn", "expr": "vector(1)",
                                                                      "labels": {"severity": "info"}}]}]})
    cfg = {"model": "iris", "features": ["a", "b", "c", "d"],
           "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
           "rules": {"files": ["rules.yml"], "interval": "500ms", "webhook": [hook.url], "log": False},
           "checkpoint": {"path": "state/iris.ckpt", "interval": f"{args.interval}s"}, "server": {"port": 0}}
    serve = Serve(cfg, files={"rules.yml": rules})
    deadline = time.monotonic() + 30
    while not hook.firing("AlwaysOn") and time.monotonic() < deadline:
        time.sleep(0.05)
    active_before = json.loads(get(serve.url + "/api/v1/alerts")[1])["data"]["alerts"][0]["activeAt"]

    accepted: list[tuple[float, list[str]]] = []  # (time of the 202, request ids)
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            ids = [f"r{n + i}" for i in range(100)]
            now = time.time()
            body = "\n".join(json.dumps({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3], "request_id": rid,
                                         "timestamp": now}) for rid in ids).encode()
            if post(serve.url + "/v1/events", body) == 202:
                accepted.append((time.time(), ids))
            n += 100
            time.sleep(0.005)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    time.sleep(args.load_seconds)
    killed_at = time.time()
    serve.stop(signal.SIGKILL)
    stop.set()
    t.join(15)

    from monitor import checkpoint

    state, _ = checkpoint.load(serve.folder / "state" / "iris.ckpt", model="iris")  # what the restart restores
    lag = killed_at - float(state["clock"])
    serve.start()
    try:
        alerts = json.loads(get(serve.url + "/api/v1/alerts")[1])["data"]["alerts"]
        active_after = alerts[0]["activeAt"] if alerts else None
        ids = [rid for _, batch in accepted for rid in batch]
        body = json.dumps({"request_ids": ids, "labels": ["setosa"] * len(ids), "timestamp": time.time()}).encode()
        assert post(serve.url + "/v1/feedback", body, "application/json") == 202
        time.sleep(2.0)  # a few rule evaluations after the restart, and the worker drains the feedback
        text = serve.metrics()
        joined = metric(text, "monitor_feedback_labels_total", model="iris", outcome="joined")
        unknown = metric(text, "monitor_feedback_labels_total", model="iris", outcome="unknown_id")
        must_join = sum(100 for ts, _ in accepted if ts <= killed_at - args.interval - 0.1)
        notifications = len(hook.firing("AlwaysOn"))
        starts = {a["startsAt"] for a in hook.firing("AlwaysOn")}
    finally:
        serve.stop()

    bound = args.interval + 0.1  # one checkpoint interval plus one worker poll (50 ms) and scheduling
    rows = [
        ("checkpoint interval", f"{args.interval:.2f} s"),
        ("events accepted before the kill", f"{len(ids):,}"),
        ("restored event clock behind the kill", f"{lag:.3f} s (bound {bound:.2f} s: {'met' if lag <= bound else 'NOT met'})"),
        ("labels joined after the restart", f"{joined:,.0f} of {len(ids):,} ({unknown:,.0f} unknown: accepted after the last checkpoint)"),
        ("accepted more than one interval before the kill, all joined", f"{'yes' if joined >= must_join else 'NO'} ({must_join:,} of them)"),
        ("firing notifications across the restart", f"{notifications} ({'not re-sent as new' if notifications == 1 and len(starts) == 1 else 'RE-SENT'})"),
        ("alert start time kept", f"{'yes' if active_after == active_before else 'NO'} ({active_before})"),
    ]
    table = "\n".join(["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])
    body = "\n".join([
        f"`kill -9` after {args.load_seconds:.0f} s of continuous NDJSON load, then a restart from the same config.",
        "",
        table,
        "",
        "Reproduce: `.venv/bin/python benchmarks/bench_restart.py`",
    ])
    print(body)
    write_section("Restart after kill -9", body)


if __name__ == "__main__":
    main()
