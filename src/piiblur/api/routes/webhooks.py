"""``/webhooks``: the dashboard's backing API for webhook endpoints (our addition to the contract)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from piiblur.api.deps import CurrentAccount, SessionDep, SettingsDep
from piiblur.api.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut, error_responses
from piiblur.services import webhooks as webhook_service

router = APIRouter(prefix="/webhooks", responses=error_responses(401, 404, 422, 429, 503))


def _wake(request: Request) -> None:
    request.app.state.webhooks.notify()


@router.post("", status_code=201, response_model=WebhookCreated, responses=error_responses(400))
def create(body: WebhookCreate, account: CurrentAccount, session: SessionDep, settings: SettingsDep) -> WebhookCreated:
    new = webhook_service.create_endpoint(session, settings, account.id, body.url, body.events)
    return WebhookCreated(**WebhookOut.of(new.endpoint).model_dump(), secret=new.secret)


@router.get("", response_model=list[WebhookOut])
def list_webhooks(account: CurrentAccount, session: SessionDep) -> list[WebhookOut]:
    return [WebhookOut.of(e) for e in webhook_service.list_endpoints(session, account.id)]


@router.delete("/{webhook_id}", status_code=204)
def remove(webhook_id: str, account: CurrentAccount, session: SessionDep) -> Response:
    webhook_service.remove_endpoint(session, webhook_id, account.id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", status_code=202)
def send_test(webhook_id: str, request: Request, account: CurrentAccount, session: SessionDep) -> dict[str, str]:
    endpoint = webhook_service.get_endpoint(session, webhook_id, account.id)
    delivery = webhook_service.enqueue_test(session, endpoint)
    _wake(request)
    return {"delivery_id": delivery.id, "status": delivery.status}


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(webhook_id: str, account: CurrentAccount, session: SessionDep) -> list[DeliveryOut]:
    endpoint = webhook_service.get_endpoint(session, webhook_id, account.id)
    return [DeliveryOut.of(d, attempts) for d, attempts in webhook_service.deliveries(session, endpoint.id)]


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend", status_code=202)
def resend(
    webhook_id: str, delivery_id: str, request: Request, account: CurrentAccount, session: SessionDep
) -> dict[str, str]:
    webhook_service.get_endpoint(session, webhook_id, account.id)
    again = webhook_service.resend(session, delivery_id, account.id)
    _wake(request)
    return {"delivery_id": again.id, "status": again.status}
