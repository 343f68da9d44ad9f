"""gunicorn settings for the forwarding example (``gunicorn -c gunicorn.conf.py app:application``)."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WORKERS", "4"))
preload_app = True  # the ForwardingMonitor re-creates its sender thread in each forked worker
accesslog = None


def worker_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Send what a worker still holds before it exits (graceful restarts, scale-down)."""
    from app import sink

    sink.close(timeout=2.0)
