"""The interface the API uses to hand work to whatever runs it."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def start(self) -> None:
        """Begin taking jobs (and resume any left from a previous run)."""
        ...

    def notify(self, media_id: str) -> None:
        """A new item was queued: wake a worker instead of waiting for the next poll."""
        ...

    def stop(self) -> None:
        """Finish the job in hand and stop."""
        ...
