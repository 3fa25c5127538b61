"""Periodic work of a fleet, done by whichever API process holds the housekeeping lease: resend
jobs whose broker message was lost (a broker restart, a worker that died holding one) and delete
originals past their retention. Webhooks need no lease: deliveries are claimed row by row."""

from __future__ import annotations

import logging
import os
import socket
import threading

from piiblur.jobs.base import FleetQueue
from piiblur.services import leases, segmented
from piiblur.services.context import ServiceContext
from piiblur.services.processing import due_for_dispatch
from piiblur.services.retention import delete_due_originals

log = logging.getLogger(__name__)

LEASE_NAME = "housekeeping"


class Housekeeper:
    def __init__(self, ctx: ServiceContext, queue: FleetQueue) -> None:
        self.ctx = ctx
        self.queue = queue
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="piiblur-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        interval = self.ctx.settings.worker_poll_seconds
        while not self._stopping.wait(interval):
            try:
                self.run_once()
            except Exception:  # the loop must outlive a database or broker hiccup
                log.exception("housekeeping failed")

    def run_once(self) -> bool:
        """One round, if this process holds the lease (held for three rounds, renewed each)."""
        with self.ctx.sessions() as session:
            if not leases.hold(session, LEASE_NAME, self.holder, 3 * self.ctx.settings.worker_poll_seconds):
                return False
            resend = due_for_dispatch(session, self.ctx.settings)
            segments, joins = segmented.segments_due(session, self.ctx.settings)
        for media_id, media_type in resend:
            log.info("job for %s sent again (its message may have been lost)", media_id)
            self.queue.notify(media_id, media_type)
        if segments or joins:
            log.info("sent again: %d segment(s), %d join(s)", len(segments), len(joins))
            self.queue.resend_segments(segments, joins)
        delete_due_originals(self.ctx)
        return True
