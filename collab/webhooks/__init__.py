"""Outgoing webhooks: a room's events, signed and delivered to its endpoints, durably.

    events.py      the event names and their JSON (Standard Webhooks' {type, timestamp, data})
    signing.py     webhook-id / webhook-timestamp / webhook-signature (HMAC-SHA256)
    targets.py     the SSRF rules: https only, public addresses only, the checked one pinned
    sender.py      one attempt: no redirects, 5 s in all, a few KB of answer read
    policy.py      retries (backoff and jitter, a day), the circuit breaker, disabling
    dispatcher.py  the outbox's worker: claim, send, record
    service.py     WebhookService: the events the server reports, the worker's life

The outbox itself is the meta store's (``collab.meta.webhooks``).
"""

from __future__ import annotations

from collab.webhooks.dispatcher import Dispatcher
from collab.webhooks.events import ALL, EVENTS
from collab.webhooks.policy import Policy
from collab.webhooks.service import WebhookService
from collab.webhooks.signing import new_secret
from collab.webhooks.targets import TargetRefused, check_url, parse_networks, resolve

__all__ = [
    "ALL",
    "EVENTS",
    "Dispatcher",
    "Policy",
    "TargetRefused",
    "WebhookService",
    "check_url",
    "new_secret",
    "parse_networks",
    "resolve",
]
