"""Forwarding downstream: clients, the bounded queue, the retry policy, OTLP metrics export.

May import the foundations (``accounting``, ``clock``, ``config``); never ``intake``, ``pipeline``,
``sli``, ``slo`` or ``api``.
"""

from otel_impact.processors.export.clients import DownstreamClient, GrpcClient, HttpClient, make_client
from otel_impact.processors.export.forwarder import Forwarder
from otel_impact.processors.export.queue import PersistentQueue, QueueItem, SendQueue
from otel_impact.processors.export.retry import Backoff, Outcome

__all__ = [
    "Backoff",
    "DownstreamClient",
    "Forwarder",
    "GrpcClient",
    "HttpClient",
    "Outcome",
    "PersistentQueue",
    "QueueItem",
    "SendQueue",
    "make_client",
]
