"""Prometheus metrics: what collab counts, how a scrape reads loaded docs, and where it is served.

- ``definitions``: the ``Metrics`` of one app (every metric, its labels, the hooks that move them,
  including :meth:`Metrics.refusal` for quota refusals by ``errors.Quota``);
- ``collector``: gauges read from the loaded docs at scrape time, through small Protocols;
- ``exposition``: GET /metrics on the main port, or on its own port in a thread;
- ``observer``: ``SocketObserver``, the ASGI middleware counting traffic and closes.

The names below are the package's interface; submodules never import this ``__init__``.
"""

from __future__ import annotations

from collab.metrics.collector import LoadedDocs
from collab.metrics.definitions import Metrics, message_type
from collab.metrics.exposition import metrics_endpoint, serve_metrics_port
from collab.metrics.observer import SocketObserver

__all__ = [
    "LoadedDocs",
    "Metrics",
    "SocketObserver",
    "message_type",
    "metrics_endpoint",
    "serve_metrics_port",
]
