"""The interface the API uses to hand work to whatever runs it."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def start(self) -> None:
        """Begin taking jobs (and resume any left from a previous run)."""
        ...

    def notify(self, media_id: str, media_type: str) -> None:
        """A new item was queued: hand it to a worker now (in-process: wake one; Celery: send its
        job to the queue for its type)."""
        ...

    def check(self) -> None:
        """Raise unless jobs can be handed over now (readiness probes)."""
        ...

    def stop(self) -> None:
        """Finish the job in hand and stop."""
        ...


class FleetQueue(JobQueue, Protocol):
    """A queue that splits long videos into segments for several workers (Celery)."""

    def resend_segments(self, segments: list[tuple[str, int, int]], joins: list[tuple[str, int]]) -> None:
        """Send again segments ``(media id, attempt, index)`` and joins ``(media id, attempt)``
        whose messages may have been lost."""
        ...
