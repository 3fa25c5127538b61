"""The webhook delivery loop: a thread that sends due deliveries and records each attempt.

Deliveries live in the database, so a restart loses none: the loop picks up pending ones, and ones
left ``sending`` by a process that died become due again when their lease expires.
"""

from __future__ import annotations

import logging
import threading

from piiblur import metrics
from piiblur.services import webhooks
from piiblur.services.context import ServiceContext
from piiblur.webhooks.sender import send

log = logging.getLogger(__name__)


class WebhookDispatcher:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self.ctx.sessions() as session:
            webhooks.requeue_abandoned(session)
        self._thread = threading.Thread(target=self._run, name="piiblur-webhooks", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                sent = self.deliver_due()
            except Exception:  # the loop must outlive a bad row or a database hiccup
                log.exception("webhook loop error")
                sent = 0
            if not sent:
                self._wake.wait(self.ctx.settings.webhook_poll_seconds)
                self._wake.clear()

    def deliver_due(self) -> int:
        with self.ctx.sessions() as session:
            webhooks.requeue_abandoned(session)
            claimed = webhooks.claim_due(session)
        for delivery_id in claimed:
            self.deliver(delivery_id)
        return len(claimed)

    def deliver(self, delivery_id: str) -> str | None:
        """One attempt for a claimed delivery; returns its status afterwards."""
        settings = self.ctx.settings
        with self.ctx.sessions() as session:
            message = webhooks.outgoing(session, settings, delivery_id)
        if message is None:
            return None
        outcome = send(
            message.url,
            message.delivery_id,
            message.body,
            message.secret,
            settings.webhook_timeout_seconds,
            settings.webhook_allow_private,
        )
        with self.ctx.sessions() as session:
            status = webhooks.record_attempt(session, settings, delivery_id, outcome).status
        metrics.WEBHOOK_ATTEMPTS.labels("delivered" if outcome.delivered else status).inc()
        return status
