"""Forwarding to downstream OTLP endpoints: clients, the bounded queue, retries, consumers."""

from .clients import DownstreamClient, GrpcClient, HttpClient, make_client
from .forwarder import Forwarder
from .queue import PersistentQueue, QueueItem, SendQueue
from .retry import Backoff, Outcome

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
