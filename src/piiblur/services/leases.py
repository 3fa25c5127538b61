"""Roles held by one process at a time, through the database every process already shares."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from piiblur.db.models import Lease, utcnow


def hold(session: Session, name: str, holder: str, seconds: float) -> bool:
    """Take or renew lease ``name`` for ``seconds``; True while ``holder`` has it. A holder that
    dies simply stops renewing, and another takes over once its lease has run out."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    renewed = session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(holder=holder, expires_at=until)
    )
    session.commit()
    if renewed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if session.get(Lease, name) is not None:
        return False
    try:  # never held before: the first insert wins
        session.add(Lease(name=name, holder=holder, expires_at=until))
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True
