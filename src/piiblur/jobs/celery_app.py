"""The Celery adapter: the API enqueues, ``piiblur worker`` processes run the same job body.

Configured for long CPU-bound media jobs, as Celery's guide for them says: a job is acknowledged
only when it is done (``acks_late``), a worker takes one job at a time (prefetch 1), a job whose
worker process dies is handed back (``reject_on_worker_lost``), and the broker's visibility timeout
is longer than the longest job, so Redis never hands a running job to a second worker. The database
stays the authority: a worker claims the media row before working on it, so a job delivered twice
runs once, and a row's attempt count bounds how often a job that kills its worker is retried.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from celery import Celery
from kombu import Queue

from piiblur.config import Settings
from piiblur.db.models import Media
from piiblur.detect import DetectionEngine, default_engine
from piiblur.domain import MediaType
from piiblur.services import segmented
from piiblur.services.context import ServiceContext, build_context
from piiblur.services.processing import claim, process_media

log = logging.getLogger(__name__)

PROCESS_TASK = "piiblur.process_media"
SEGMENT_TASK = "piiblur.redact_segment"
JOIN_TASK = "piiblur.join_segments"
IMAGES_QUEUE = "images"
VIDEO_QUEUE = "video"
HOUSEKEEPING_QUEUE = "housekeeping"
QUEUES = (IMAGES_QUEUE, VIDEO_QUEUE, HOUSEKEEPING_QUEUE)


def queue_for(media_type: str) -> str:
    """Separate queues, so a long video never holds up photos: run workers for each."""
    return VIDEO_QUEUE if media_type == MediaType.VIDEO.value else IMAGES_QUEUE


def create_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise ValueError("PIIBLUR_BROKER_URL is not set: jobs run inside `piiblur serve`")
    app = Celery("piiblur", broker=settings.broker_url, set_as_current=False)
    transport = {"visibility_timeout": settings.job_visibility_timeout_seconds}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Read by the broker (messages in hand), and by the result backend and the broker's
        # unacked-restore loop, which keep their own copies: set it everywhere it is read.
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_ignore_result=True,  # outcomes live in the database
        task_serializer="json",
        accept_content=["json"],
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=IMAGES_QUEUE,
        worker_max_memory_per_child=settings.worker_max_memory_mib * 1024,  # KiB
        worker_soft_shutdown_timeout=settings.worker_soft_shutdown_seconds,
        worker_enable_soft_shutdown_on_idle=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )

    def process_task(media_id: str) -> None:
        _run_job(app, settings, media_id)

    def segment_task(media_id: str, attempt: int, index: int) -> None:
        runtime = _worker_runtime(settings)
        if segmented.redact_segment(runtime.ctx, runtime.engine, media_id, attempt, index):
            send_join(app, media_id, attempt)

    def join_task(media_id: str, attempt: int) -> None:
        segmented.join(_worker_runtime(settings).ctx, media_id, attempt)

    app.task(name=PROCESS_TASK)(process_task)
    app.task(name=SEGMENT_TASK)(segment_task)
    app.task(name=JOIN_TASK)(join_task)
    return app


def send_segment(app: Celery, media_id: str, attempt: int, index: int) -> None:
    app.send_task(SEGMENT_TASK, args=[media_id, attempt, index], queue=VIDEO_QUEUE)


def send_join(app: Celery, media_id: str, attempt: int) -> None:
    app.send_task(JOIN_TASK, args=[media_id, attempt], queue=VIDEO_QUEUE)


def prepare_worker_process(settings: Settings) -> None:
    """Connections and models for a worker process, before its first job (not during it)."""
    _worker_runtime(settings).engine.warm_up()


@dataclass
class _Runtime:
    """What a worker process keeps between jobs: connections and loaded models."""

    pid: int
    ctx: ServiceContext
    engine: DetectionEngine


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()


def _worker_runtime(settings: Settings) -> _Runtime:
    """Built once per process; a forked child never uses its parent's pool."""
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.pid != os.getpid():
            engine = default_engine(settings.inference_threads, settings.execution_providers)
            _runtime = _Runtime(os.getpid(), build_context(settings, migrate=False), engine)
        return _runtime


def _run_job(app: Celery, settings: Settings, media_id: str) -> None:
    runtime = _worker_runtime(settings)
    with runtime.ctx.sessions() as session:
        claimed = claim(session, media_id, runtime.ctx.settings)
        media = session.get(Media, media_id) if claimed is not None else None
    if claimed is None or media is None:  # finished, held by a live worker, deleted, or out of attempts
        log.info("job for %s not claimed: nothing to do", media_id)
        return
    log.info("media %s claimed (attempt %d)", media_id, claimed.attempt)
    if segmented.worth_splitting(settings, media):
        indices = segmented.plan(runtime.ctx, claimed)
        for index in indices:
            send_segment(app, media_id, claimed.attempt, index)
        if indices:
            return
    process_media(runtime.ctx, runtime.engine, claimed)


class CeleryQueue:
    """The API's side: send each new item's job to its queue. Nothing runs here."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_celery(settings)

    def start(self) -> None:
        pass

    def notify(self, media_id: str, media_type: str) -> None:
        try:
            self.app.send_task(PROCESS_TASK, args=[media_id], queue=queue_for(media_type))
        except Exception:  # the row is queued: the housekeeper sends it again once the broker is back
            log.exception("could not send the job for %s to the broker", media_id)

    def resend_segments(self, segments: list[tuple[str, int, int]], joins: list[tuple[str, int]]) -> None:
        """The housekeeper's: segments and joins whose messages may have been lost."""
        for media_id, attempt, index in segments:
            send_segment(self.app, media_id, attempt, index)
        for media_id, attempt in joins:
            send_join(self.app, media_id, attempt)

    def check(self) -> None:
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def stop(self) -> None:
        self.app.close()
