"""Worker threads inside the server process: the single-machine default.

Threads suit the work: onnxruntime, OpenCV and FFmpeg release the GIL while they compute. Each
thread claims jobs from the database with a conditional UPDATE, so several threads (or several
server processes sharing one PostgreSQL database) never take the same job twice.
"""

from __future__ import annotations

import logging
import threading

from piiblur.detect import DetectionEngine
from piiblur.services.context import ServiceContext
from piiblur.services.processing import claim_next, process_media, requeue_interrupted
from piiblur.services.retention import delete_due_originals

log = logging.getLogger(__name__)


class InProcessWorkers:
    def __init__(self, ctx: ServiceContext, engine: DetectionEngine, count: int) -> None:
        self.ctx = ctx
        self.engine = engine
        self.count = count
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.count == 0:
            return
        with self.ctx.sessions() as session:
            resumed = requeue_interrupted(session)
        if resumed:
            log.info("requeued %d interrupted job(s)", resumed)
        for index in range(self.count):
            thread = threading.Thread(target=self._run, name=f"piiblur-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()

    def notify(self, media_id: str, media_type: str) -> None:
        self._wake.set()

    def check(self) -> None:
        dead = [thread.name for thread in self._threads if not thread.is_alive()]
        if dead:
            raise RuntimeError(f"worker threads stopped: {', '.join(dead)}")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._work_one():
                    continue
                delete_due_originals(self.ctx)
            except Exception:  # a worker must survive a broken job or a database hiccup
                log.exception("worker loop error")
            self._wake.wait(self.ctx.settings.worker_poll_seconds)
            self._wake.clear()

    def _work_one(self) -> bool:
        with self.ctx.sessions() as session:
            claimed = claim_next(session)
        if claimed is None:
            return False
        process_media(self.ctx, self.engine, claimed)
        return True
