"""Tenant isolation, table-driven: every endpoint of the API and the dashboard that names a resource,
asked by another account for the owner's resource, answers exactly as for an id that does not
exist (404, same body, same headers); the owner's resources are untouched; a revoked key is
refused at once everywhere."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from conftest import Client, Server, astronaut, make_client, png_bytes
from piiblur.db.models import ApiKey
from piiblur.services.accounts import revoke_api_key
from test_api import upload
from test_dashboard import _signed_up
from test_webhooks import FAST_RETRIES, Receiver, add_webhook

API = [
    ("GET", "/api/v1/media/{media}"),
    ("GET", "/api/v1/media/{media}/detections"),
    ("GET", "/api/v1/media/{media}/download"),
    ("GET", "/api/v1/media/{media}/original"),
    ("DELETE", "/api/v1/media/{media}"),
    ("GET", "/api/v1/webhooks/{webhook}/deliveries"),
    ("POST", "/api/v1/webhooks/{webhook}/test"),
    ("POST", "/api/v1/webhooks/{webhook}/deliveries/{delivery}/resend"),
    ("DELETE", "/api/v1/webhooks/{webhook}"),
]
DASHBOARD = [
    ("GET", "/dashboard/media/{media}"),
    ("GET", "/dashboard/media/{media}/status"),
    ("GET", "/dashboard/media/{media}/file/original"),
    ("GET", "/dashboard/media/{media}/file/redacted"),
    ("POST", "/dashboard/media/{media}/delete"),
    ("POST", "/dashboard/keys/{key}/revoke"),
    ("POST", "/dashboard/webhooks/{webhook}/test"),
    ("POST", "/dashboard/webhooks/deliveries/{delivery}/resend"),
    ("POST", "/dashboard/webhooks/{webhook}/remove"),
]
COLLECTIONS = [
    ("GET", "/api/v1/media"),
    ("GET", "/api/v1/webhooks"),
    ("GET", "/api/v1/usage"),
    ("GET", "/api/v1/account"),
]
# Headers whose values differ from one response to the next whatever the request.
PER_RESPONSE = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "content-length"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("tenants") / "data", env=FAST_RETRIES).start()
    yield server
    server.stop()


def owned_resources(server: Server, owner: Client) -> dict[str, str]:
    """One of each kind of resource an account has: media, webhook, delivery, API key."""
    receiver = Receiver()
    media = upload(owner, png_bytes(astronaut()), "mine.png", "heads").json()["media_id"]
    assert owner.wait(media)["status"] == "completed"
    webhook = add_webhook(owner, receiver.url)["webhook_id"]
    assert owner.http.post(f"/api/v1/webhooks/{webhook}/test").status_code == 202
    delivery = owner.http.get(f"/api/v1/webhooks/{webhook}/deliveries").json()[0]["delivery_id"]
    ctx = server.context()
    with ctx.sessions() as session:
        key = session.scalars(select(ApiKey.id).where(ApiKey.account_id == owner.account_id)).one()
    ctx.close()
    return {"media": media, "webhook": webhook, "delivery": delivery, "key": key}


def shape(response: httpx.Response, ids: dict[str, str]) -> tuple[int, str, list[tuple[str, str]]]:
    """Status, body (ids blanked) and headers (per-response values left out)."""
    body = response.text
    for value in ids.values():
        body = body.replace(value, "ID")
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_RESPONSE)
    return response.status_code, body, headers


def test_another_account_learns_nothing_of_a_resource(tenants: Server) -> None:
    owner = make_client(tenants)
    owned = owned_resources(tenants, owner)
    missing = {name: str(uuid.uuid4()) for name in owned}
    stranger = make_client(tenants)
    browser = _signed_up(tenants, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    csrf = re.search(r'data-csrf="([^"]+)"', browser.get("/dashboard/media").text)
    assert csrf
    browser.headers["X-CSRF-Token"] = csrf.group(1)

    for http, table in ((stranger.http, API), (browser, DASHBOARD)):
        for method, template in table:
            theirs = http.request(method, template.format(**owned))
            nobodys = http.request(method, template.format(**missing))
            assert theirs.status_code == 404, (method, template, theirs.status_code, theirs.text[:200])
            assert shape(theirs, owned) == shape(nobodys, missing), (method, template)

    for method, path in COLLECTIONS:
        seen = stranger.http.request(method, path).text
        assert not any(value in seen for value in owned.values()), (path, seen[:300])
    assert stranger.http.get("/api/v1/media").json()["total"] == 0
    assert stranger.http.get("/api/v1/webhooks").json() == []

    # Nothing of the owner's was changed by the stranger's deletes, removals and revocation.
    assert owner.http.get(f"/api/v1/media/{owned['media']}").json()["status"] == "completed"
    assert owner.http.get(f"/api/v1/media/{owned['media']}/download").status_code == 200
    assert [hook["webhook_id"] for hook in owner.http.get("/api/v1/webhooks").json()] == [owned["webhook"]]


def test_a_revoked_key_is_refused_at_once_everywhere(tenants: Server) -> None:
    owner = make_client(tenants)
    owned = owned_resources(tenants, owner)
    ctx = tenants.context()
    with ctx.sessions() as session:
        revoke_api_key(session, owned["key"])
        session.commit()
    ctx.close()
    for method, template in [*API, *COLLECTIONS]:
        answer = owner.http.request(method, template.format(**owned))
        assert answer.status_code == 401, (method, template, answer.status_code)
        assert answer.json() == {"error": "Invalid or missing API key"}
