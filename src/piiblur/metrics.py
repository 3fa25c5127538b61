"""Prometheus metrics: what operators of a fleet watch. Counters and histograms are recorded where
things happen; job counts and queue age are read from the database when ``/metrics`` is scraped,
so every API process reports the same truth. With ``PROMETHEUS_MULTIPROC_DIR`` set (several API
processes, or workers with several children) prometheus_client keeps values in files there and
the scrape adds them up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from piiblur.db.models import Media, utcnow
from piiblur.domain import MediaStatus

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

JOBS_FINISHED = Counter("piiblur_jobs_finished_total", "Jobs finished, by media type and outcome", ["type", "outcome"])
STAGE_SECONDS = Histogram(
    "piiblur_job_stage_seconds",
    "Seconds per job stage (fetch the original, redact, store the result)",
    ["type", "stage"],
    buckets=STAGE_BUCKETS,
)
VIDEO_FRAMES = Counter("piiblur_video_frames_total", "Video frames redacted")
VIDEO_SECONDS = Counter("piiblur_video_redact_seconds_total", "Seconds spent redacting video (frames/s = ratio)")
WEBHOOK_ATTEMPTS = Counter("piiblur_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"])
REFUSALS = Counter("piiblur_refusals_total", "Requests refused by a limit", ["reason"])


class QueueCollector(Collector):
    """Jobs by status, and the age of the oldest queued one, read from the shared database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.sessions() as session:
            counts = dict(session.execute(select(Media.status, func.count()).group_by(Media.status)).all())
            oldest: datetime | None = session.scalar(
                select(func.min(Media.created_at)).where(Media.status == MediaStatus.QUEUED.value)
            )
        by_status = GaugeMetricFamily("piiblur_media", "Media items by status", labels=["status"])
        for status in MediaStatus:
            by_status.add_metric([status.value], float(counts.get(status.value, 0)))
        yield by_status
        yield GaugeMetricFamily("piiblur_queue_depth", "Jobs waiting for a worker", value=counts.get("queued", 0))
        age = (utcnow() - _aware(oldest)).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("piiblur_queue_oldest_age_seconds", "Age of the oldest waiting job", value=age)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def render(sessions: sessionmaker[Session], multiprocess_dir: Path | None) -> bytes:
    """The text exposition for one scrape: this process's metrics (or every process's, added up
    from the multiprocess folder), then the database's."""
    registry = REGISTRY
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
    return generate_latest(registry) + generate_latest(_queue_registry(sessions))


def _queue_registry(sessions: sessionmaker[Session]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(QueueCollector(sessions))
    return registry
