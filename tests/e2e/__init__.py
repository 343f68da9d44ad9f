"""Helpers of the full-stack end-to-end test: real Prometheus and Alertmanager processes on 127.0.0.1,
a webhook receiver, and the replayed traffic script."""
