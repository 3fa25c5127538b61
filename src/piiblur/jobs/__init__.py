"""Queue adapters: when and where ``services.processing.process_media`` runs.

The database is the source of truth for the queue (a media row in ``queued`` is a pending job),
so a restart loses nothing: workers requeue what was ``processing`` and carry on.
"""

from piiblur.jobs.base import JobQueue
from piiblur.jobs.inprocess import InProcessWorkers

__all__ = ["InProcessWorkers", "JobQueue"]
