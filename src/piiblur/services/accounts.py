"""Accounts and API keys. Keys are shown once and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from piiblur.db.models import Account, ApiKey, utcnow
from piiblur.domain import Plan
from piiblur.services.errors import InvalidInputError, NotFoundError

KEY_PREFIX = "pb_"
DISPLAY_PREFIX_LENGTH = 11
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_RETENTION_HOURS = 24 * 365


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    plaintext: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_account(session: Session, email: str, plan: Plan, retention_hours: int = 0) -> Account:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidInputError(f"Invalid email address: {email!r}")
    account = Account(email=email, plan=plan.value, retention_hours=_check_retention(retention_hours))
    session.add(account)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InvalidInputError(f"An account with email {email} already exists") from None
    return account


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"Account {account_id} not found")
    return account


def find_account(session: Session, reference: str) -> Account:
    """An account by its id or by its owner's email (what an operator has at hand)."""
    reference = reference.strip()
    if "@" in reference:
        account = session.scalar(select(Account).where(Account.email == reference.lower()))
        if account is None:
            raise NotFoundError(f"No account with email {reference.lower()}")
        return account
    return get_account(session, reference)


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.created_at, Account.email)))


def update_account(
    session: Session,
    account_id: str,
    plan: Plan | None = None,
    retention_hours: int | None = None,
    review_mode: bool | None = None,
) -> Account:
    account = get_account(session, account_id)
    if review_mode is not None:
        account.review_by_default = review_mode
    if plan is not None:
        account.plan = plan.value
    if retention_hours is not None:
        account.retention_hours = _check_retention(retention_hours)
    session.commit()
    return account


def _check_retention(hours: int) -> int:
    if not 0 <= hours <= MAX_RETENTION_HOURS:
        raise InvalidInputError(f"Retention must be between 0 and {MAX_RETENTION_HOURS} hours")
    return hours


def create_api_key(session: Session, account_id: str, name: str | None = None) -> NewApiKey:
    get_account(session, account_id)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=account_id, prefix=plaintext[:DISPLAY_PREFIX_LENGTH], key_hash=hash_key(plaintext), name=name
    )
    session.add(key)
    session.commit()
    return NewApiKey(key, plaintext)


def list_api_keys(session: Session, account_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    return list(session.scalars(query))


def revoke_api_key(session: Session, key_id: str, account_id: str | None = None) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or (account_id is not None and key.account_id != account_id):
        raise NotFoundError(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    return key


def authenticate(session: Session, plaintext: str) -> Account | None:
    """The account owning an active key, or None. Records last use at minute resolution so that
    busy clients do not turn every read into a write."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if key is None or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.commit()
    return key.account
