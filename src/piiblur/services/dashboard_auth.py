"""Dashboard sign-up, log-in and sessions: argon2id password hashes, random session tokens stored
only as hashes, a CSRF token per session."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from piiblur.db.models import Account, DashboardSession, utcnow
from piiblur.domain import Plan
from piiblur.services.accounts import create_account
from piiblur.services.errors import InvalidInputError

SESSION_LIFETIME = timedelta(days=7)
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class SignedIn:
    account: Account
    token: str  # goes into the cookie, never into the database
    csrf_token: str

    @property
    def actor(self) -> str:
        """Who did it, in the audit record."""
        return f"dashboard:{self.account.email}"


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_up(session: Session, email: str, password: str) -> Account:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"Password must have at least {MIN_PASSWORD_LENGTH} characters")
    account = create_account(session, email, Plan.FREE)
    account.password_hash = _hasher.hash(password)
    session.commit()
    return account


def check_password(session: Session, email: str, password: str) -> Account | None:
    account = session.scalar(select(Account).where(func.lower(Account.email) == email.strip().lower()))
    try:
        _hasher.verify(account.password_hash if account and account.password_hash else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return account if account is not None and account.password_hash else None


def start_session(session: Session, account: Account) -> SignedIn:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        DashboardSession(
            id=_token_id(token),
            account_id=account.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
    session.commit()
    return SignedIn(account, token, csrf)


def resume(session: Session, token: str) -> SignedIn | None:
    row = session.get(DashboardSession, _token_id(token))
    if row is None or row.expires_at < utcnow():
        return None
    account = session.get(Account, row.account_id)
    return SignedIn(account, token, row.csrf_token) if account is not None else None


def end_session(session: Session, token: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.id == _token_id(token)))
    session.commit()
