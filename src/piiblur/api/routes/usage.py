from __future__ import annotations

from fastapi import APIRouter

from piiblur.api.deps import CurrentAccount, SessionDep, SettingsDep
from piiblur.api.schemas import UsageResponse, error_responses
from piiblur.services.usage import usage_for

router = APIRouter(responses=error_responses(401, 429, 503))


@router.get("/usage", response_model=UsageResponse)
def get_usage(account: CurrentAccount, session: SessionDep, settings: SettingsDep) -> UsageResponse:
    return UsageResponse.of(usage_for(session, account, settings))
