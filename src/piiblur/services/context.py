"""Everything a process needs to serve requests or run jobs, built once from ``Settings``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from piiblur.config import Settings
from piiblur.db.session import make_engine, make_session_factory, upgrade_database
from piiblur.storage import Storage, storage_from_settings


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage

    def close(self) -> None:
        self.engine.dispose()


def clear_scratch(settings: Settings) -> None:
    """At the start of the single-machine server, before any upload or job: scratch files left
    in ``data_dir/tmp`` by a process that was killed (half-received uploads, half-written results)
    hold personal data and are never used again. (A fleet's processes each keep their own data
    folder; this runs only where one process owns it.)"""
    for entry in settings.scratch_dir().iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def build_context(settings: Settings, migrate: bool = True) -> ServiceContext:
    """Connect to the database (migrating it to the newest schema) and open storage."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url, settings.database_pool_size, settings.database_max_overflow)
    return ServiceContext(settings, engine, make_session_factory(engine), storage_from_settings(settings))
