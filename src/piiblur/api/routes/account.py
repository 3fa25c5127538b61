"""``/account``: the caller's own settings (retention of originals, review mode). Our addition to the contract."""

from __future__ import annotations

from fastapi import APIRouter

from piiblur.api.deps import CurrentAccount, SessionDep
from piiblur.api.schemas import AccountOut, AccountUpdate, error_responses
from piiblur.db.models import Account
from piiblur.services import accounts as account_service

router = APIRouter(prefix="/account", responses=error_responses(401, 422, 429, 503))


def _out(account: Account) -> AccountOut:
    return AccountOut(
        account_id=account.id,
        email=account.email,
        plan=account.plan,
        retention_hours=account.retention_hours,
        review_mode=account.review_by_default,
    )


@router.get("", response_model=AccountOut)
def get_account(account: CurrentAccount) -> AccountOut:
    return _out(account)


@router.patch("", response_model=AccountOut, responses=error_responses(400))
def update_account(body: AccountUpdate, account: CurrentAccount, session: SessionDep) -> AccountOut:
    return _out(
        account_service.update_account(
            session, account.id, retention_hours=body.retention_hours, review_mode=body.review_mode
        )
    )
