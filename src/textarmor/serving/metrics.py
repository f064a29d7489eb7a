"""Prometheus metrics of one server, in their own registry (several apps in one process stay apart)."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], float]):
        self.registry = CollectorRegistry()
        self.requests = Counter("textarmor_requests", "HTTP requests by route, method and status code.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("textarmor_request_seconds", "Time to answer a request, by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_inputs = Histogram("textarmor_batch_inputs", "Texts per model call.", buckets=BATCH_BUCKETS,
                                      registry=self.registry)
        self.batch_requests = Histogram("textarmor_batch_requests", "Requests merged into one model call.",
                                        buckets=BATCH_BUCKETS, registry=self.registry)
        self.rejected = Counter("textarmor_rejected", "Requests refused because the queue was full.",
                                registry=self.registry)
        depth = Gauge("textarmor_queue_depth", "Requests waiting for the model.", registry=self.registry)
        depth.set_function(queue_depth)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_batch(self, texts: int, requests: int) -> None:
        self.batch_inputs.observe(texts)
        self.batch_requests.observe(requests)

    def render(self) -> bytes:
        return generate_latest(self.registry)
