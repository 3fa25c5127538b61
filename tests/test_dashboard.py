"""The dashboard in a real browser (Debian's Chromium driven by Playwright), and its security."""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from conftest import Server, astronaut, png_bytes, render_video
from test_webhooks import FAST_RETRIES, Receiver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("dash") / "data", env=FAST_RETRIES).start()
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def test_dashboard_end_to_end_in_chromium(
    dash_server: Server, receiver: Receiver, tmp_path: Path, screenshots: Path
) -> None:
    """Every page as a user meets it. Screenshots go to a temporary folder, or to the one given
    with ``--screenshots-dir`` (``scripts/screenshots`` refreshes ``docs/screenshots``)."""
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian package 'chromium'): browser test not run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        missing: list[str] = []
        page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
        sign_up_and_see_an_empty_month(page, dash_server, screenshots)
        keep_originals(page, screenshots)
        api_key = create_api_key(page, screenshots)
        upload_from_the_browser(page, tmp_path, screenshots)
        media_id = redact_with_the_api(dash_server, api_key)
        compare_before_and_after(page, media_id, screenshots)
        add_webhook_and_test_it(page, receiver, screenshots)
        page.get_by_role("link", name="Usage").click()
        expect(page.locator(".big").first).to_contain_text("2")
        expect(page.locator(".chart .empty-note")).to_have_count(0)
        bars = page.locator(".chart rect title").all_text_contents()  # "2026-12-01: 2"
        assert sum(int(title.rsplit(": ", 1)[1]) for title in bars) == 2, bars
        page.screenshot(path=str(screenshots / "usage.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("link", name="Media").click()
        page.screenshot(path=str(screenshots / "media_phone.png"), full_page=True)
        browser.close()
    assert not missing, f"404 while browsing: {missing}"


def sign_up_and_see_an_empty_month(page: Page, server: Server, screenshots: Path) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.screenshot(path=str(screenshots / "login.png"), full_page=True)
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill("officer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Usage this month")).to_be_visible()
    # An empty month is a chart with axes and a note, not a lone dash.
    expect(page.locator(".chart .empty-note")).to_have_text("No uploads yet this month")
    expect(page.locator(".chart line.axis")).to_have_count(2)
    expect(page.locator(".chart rect")).to_have_count(0)


def keep_originals(page: Page, screenshots: Path) -> None:
    """Keep originals a day, so that before and after can be compared."""
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Keep originals for (hours)").fill("24")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.screenshot(path=str(screenshots / "settings.png"), full_page=True)


def create_api_key(page: Page, screenshots: Path | None) -> str:
    page.get_by_role("link", name="API keys").click()
    page.get_by_role("button", name="Create API key").click()
    api_key = page.locator("#new-key").inner_text().strip()
    assert api_key.startswith("pb_")
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "keys.png"), full_page=True)
    return api_key


def redact_with_the_api(server: Server, api_key: str) -> str:
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    files = {"file": ("astronaut.png", png_bytes(astronaut()))}
    media_id = str(
        api.post("/api/v1/media/redact", files=files, data={"pii_categories[]": ["heads"]}).json()["media_id"]
    )
    deadline = time.monotonic() + 60
    while api.get(f"/api/v1/media/{media_id}").json()["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.3)
    return media_id


def compare_before_and_after(page: Page, media_id: str, screenshots: Path) -> None:
    page.get_by_role("link", name="Media").click()
    row = page.locator(f"tr[data-media='{media_id}']")
    expect(row.locator(".status")).to_have_text("completed")
    row.get_by_role("link", name="astronaut.png").click()
    expect(page.get_by_alt_text("Original upload")).to_be_visible()
    expect(page.get_by_alt_text("Redacted result")).to_be_visible()
    expect(page.locator(".counts")).to_contain_text("1 heads")
    page.screenshot(path=str(screenshots / "media_detail.png"), full_page=True)


def upload_from_the_browser(page: Page, tmp_path: Path, screenshots: Path) -> None:
    """On an empty list: the new row appears at once and follows the job; the page is never
    reloaded, so the status line and the chosen categories stay."""
    page.get_by_role("link", name="Media").click()
    expect(page.locator("#media-list")).to_contain_text("Nothing yet.")
    page.get_by_label("writing").check()
    page.get_by_label("license plates").uncheck()
    page.evaluate("window.notReloaded = true")
    photo = tmp_path / "browser.png"
    photo.write_bytes(png_bytes(astronaut()[::2, ::2].copy()))
    page.set_input_files("#file", str(photo))
    row = page.locator("#media-list tr", has_text="browser.png")
    expect(row.locator(".status")).to_have_text(re.compile("queued|processing|completed"))
    expect(page.locator("#media-list")).not_to_contain_text("Nothing yet.")
    expect(page.locator("#pager-summary")).to_have_text("Page 1 of 1 (1 item)")
    expect(row.locator(".status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#upload-status")).to_contain_text("browser.png: completed")
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"
    expect(page.get_by_label("writing")).to_be_checked()
    expect(page.get_by_label("license plates")).not_to_be_checked()
    expect(page.get_by_label("heads")).to_be_checked()
    page.screenshot(path=str(screenshots / "media.png"), full_page=True)
    # A file over the limit is refused in the browser, before it is sent (the limit lowered here
    # to the photo's size less one byte, as a 1 GB file is no fixture).
    page.evaluate(f"document.getElementById('upload').dataset.maxBytes = '{photo.stat().st_size - 1}'")
    page.set_input_files("#file", str(photo))
    expect(page.locator("#upload-status")).to_contain_text(
        f"browser.png: refused: larger than the {photo.stat().st_size - 1} bytes limit"
    )
    expect(page.locator("#pager-summary")).to_have_text("Page 1 of 1 (1 item)")
    row.get_by_role("link", name="browser.png").click()
    expect(page.locator("h1")).to_have_text("browser.png")
    expect(page.locator("#detail-status")).to_have_text("completed")
    expect(page.locator(".muted").first).to_contain_text("heads, writing")


def add_webhook_and_test_it(page: Page, receiver: Receiver, screenshots: Path) -> None:
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_role("button", name="Add endpoint").click()
    assert page.locator("#new-secret").inner_text().strip().startswith("whsec_")
    page.get_by_role("button", name="Send test event").click()
    receiver.wait_for(1, "webhook.test")
    deadline = time.monotonic() + 10
    while "delivered" not in page.locator("tr.delivery").first.inner_text() and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    expect(page.locator("tr.delivery").first).to_contain_text("200")
    page.screenshot(path=str(screenshots / "webhooks.png"), full_page=True)


def _form_token(http: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).text)
    assert match, path
    return match.group(1)


def _signed_up(server: Server, email: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=30)
    token = _form_token(http, "/dashboard/signup")
    response = http.post("/dashboard/signup", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return http


def test_session_cookie_flags_and_csrf(dash_server: Server) -> None:
    http = httpx.Client(base_url=dash_server.url, timeout=30)
    token = _form_token(http, "/dashboard/signup")
    response = http.post(
        "/dashboard/signup", data={"csrf_token": token, "email": "a@example.com", "password": PASSWORD}
    )
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("piiblur_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    # Without the token, or with another one, a form post is refused and changes nothing.
    assert http.post("/dashboard/settings", data={"retention_hours": "99"}).status_code == 403
    assert http.post("/dashboard/settings", data={"retention_hours": "99", "csrf_token": "forged"}).status_code == 403
    assert http.post("/dashboard/keys", data={}).status_code == 403
    assert 'value="0"' in http.get("/dashboard/settings").text
    assert http.post("/dashboard/login", data={"email": "a@example.com", "password": PASSWORD}).status_code == 403


def test_other_accounts_media_page_is_404(dash_server: Server) -> None:
    owner = _signed_up(dash_server, "owner@example.com")
    csrf = re.search(r'data-csrf="([^"]+)"', owner.get("/dashboard/media").text)
    assert csrf
    files = {"file": ("mine.png", png_bytes(astronaut()[::4, ::4].copy()))}
    created = owner.post(
        "/dashboard/media/upload",
        files=files,
        data={"pii_categories": "heads"},
        headers={"X-CSRF-Token": csrf.group(1)},
    )
    assert created.status_code == 201, created.text
    media_id = created.json()["media_id"]
    stranger = _signed_up(dash_server, "stranger@example.com")
    for path in (f"/dashboard/media/{media_id}", f"/dashboard/media/{media_id}/file/original"):
        assert stranger.get(path).status_code == 404
    assert owner.get(f"/dashboard/media/{media_id}").status_code == 200
    assert httpx.get(f"{dash_server.url}/dashboard/media/{media_id}").status_code == 303, "signed out: to log-in"


def test_passwords_never_stored_or_logged_in_clear(dash_server: Server) -> None:
    _signed_up(dash_server, "secretive@example.com")
    database = (dash_server.data_dir / "piiblur.db").read_bytes() + b"".join(
        p.read_bytes() for p in dash_server.data_dir.glob("piiblur.db-*")
    )
    assert PASSWORD.encode() not in database
    assert b"$argon2id$" in database
    logs = b"".join(p.read_bytes() for p in dash_server.data_dir.parent.glob("server-*.log"))
    assert PASSWORD.encode() not in logs


def test_login_is_rate_limited(dash_server: Server) -> None:
    http = httpx.Client(base_url=dash_server.url, timeout=30)
    codes = []
    for _ in range(12):
        token = _form_token(http, "/dashboard/login")
        codes.append(
            http.post(
                "/dashboard/login", data={"csrf_token": token, "email": "x@example.com", "password": "nope"}
            ).status_code
        )
    assert codes[0] == 401 and codes[-1] == 429


def test_review_editor_in_chromium(dash_server: Server, screenshots: Path) -> None:
    """A held photo: remove a detection the reviewer rejects, add a missed face by dragging,
    approve with the keyboard, and check the released file."""
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian package 'chromium'): browser test not run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        api = sign_up_with_review_mode(page, dash_server)
        media_id = api.post(
            "/api/v1/media/redact",
            files={"file": ("astronaut.png", png_bytes(astronaut()))},
            data={"pii_categories[]": ["heads"]},
        ).json()["media_id"]
        deadline = time.monotonic() + 60
        while api.get(f"/api/v1/media/{media_id}").json()["status"] != "awaiting_review":
            assert time.monotonic() < deadline, "not held for review"
            time.sleep(0.3)
        page.goto(f"{dash_server.url}/dashboard/media/{media_id}")
        added = edit_and_approve(page, screenshots)
        result = np.asarray(Image.open(io.BytesIO(api.get(f"/api/v1/media/{media_id}/download").content)))
        before = astronaut().astype(int)
        face = (slice(30, 190), slice(170, 290))
        assert np.abs(result[face].astype(int) - before[face]).mean() == 0, "the removed detection is not hidden"
        assert np.abs(result[added].astype(int) - before[added]).mean() > 10, "the added face is hidden"
        page.get_by_role("link", name="Audit report").click()
        expect(page.locator("h1")).to_have_text("Redaction audit")
        expect(page.locator("body")).to_contain_text("dashboard:reviewer@example.com")
        page.screenshot(path=str(screenshots / "audit.png"), full_page=True)
        browser.close()


def sign_up_with_review_mode(page: Page, server: Server, email: str = "reviewer@example.com") -> httpx.Client:
    page.goto(server.url + "/dashboard/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Review mode").check()
    page.get_by_role("button", name="Save").nth(1).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Review mode")).to_be_checked()
    api_key = create_api_key(page, None)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60)


def edit_and_approve(page: Page, screenshots: Path) -> tuple[slice, slice]:
    """Returns the added box's inner pixels (rows, columns) in the photo."""
    expect(page.get_by_role("note")).to_contain_text("Held for review")
    expect(page.get_by_alt_text("Redacted preview")).to_be_visible()
    boxes = page.locator("#editor-boxes rect")
    expect(boxes).to_have_count(1)
    page.screenshot(path=str(screenshots / "review_editor.png"), full_page=True)
    boxes.first.click()  # the reviewer rejects this detection
    expect(boxes.first).to_have_class(re.compile("removed"))
    page.get_by_label("New boxes are").select_option("heads")
    frame = page.locator("#editor-boxes").bounding_box()
    assert frame is not None
    scale = frame["width"] / 512
    x, y, w, h = 300, 330, 120, 100  # a region the detector did not find
    page.mouse.move(frame["x"] + x * scale, frame["y"] + y * scale)
    page.mouse.down()
    page.mouse.move(frame["x"] + (x + w / 2) * scale, frame["y"] + (y + h / 2) * scale, steps=5)
    page.mouse.move(frame["x"] + (x + w) * scale, frame["y"] + (y + h) * scale, steps=5)
    page.mouse.up()
    expect(boxes).to_have_count(2)
    expect(page.locator("#editor-status")).to_have_text("2 changes not yet rendered")
    page.screenshot(path=str(screenshots / "review_editor_edited.png"), full_page=True)
    page.keyboard.press("a")  # approve and render
    expect(page.locator("#detail-status")).to_have_text("completed", timeout=60_000)
    expect(page.get_by_alt_text("Redacted result")).to_be_visible()
    return slice(y + 4, y + h - 4), slice(x + 4, x + w - 4)


def test_video_review_timeline_in_chromium(dash_server: Server, tmp_path: Path, screenshots: Path) -> None:
    """A held video: the tracks on a timeline, scrubbing to a frame shows its boxes, a click on
    a track removes it from the whole video, and the render shows the face again."""
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian package 'chromium'): browser test not run")
    from playwright.sync_api import sync_playwright

    clip = render_video(tmp_path / "walk.mp4", 2.0, fps=10, audio=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        api = sign_up_with_review_mode(page, dash_server, "video-reviewer@example.com")
        files = {"file": ("walk.mp4", clip.path.read_bytes())}
        media_id = api.post("/api/v1/media/redact", files=files, data={"pii_categories[]": ["heads"]}).json()[
            "media_id"
        ]
        deadline = time.monotonic() + 120
        while api.get(f"/api/v1/media/{media_id}").json()["status"] != "awaiting_review":
            assert time.monotonic() < deadline, "not held for review"
            time.sleep(0.3)
        page.goto(f"{dash_server.url}/dashboard/media/{media_id}")
        tracks = page.locator("#tracks .track")
        expect(tracks).to_have_count(1)
        expect(tracks.first).to_contain_text("heads")
        page.locator("#scrub").fill("12")
        expect(page.locator("#frame-label")).to_have_text("frame 12 of 20")
        expect(page.locator("#editor-boxes rect")).to_have_count(1)
        # The original is served with byte ranges, so the player itself seeks to the frame.
        page.wait_for_function(
            """() => { const v = document.getElementById("editor-picture");
                       return v.seekable.length === 1 && v.seekable.end(0) > 1.9 && !v.seeking
                              && Math.abs(v.currentTime - 1.25) < 0.06; }"""
        )
        page.screenshot(path=str(screenshots / "review_editor_video.png"), full_page=True)
        tracks.first.click()
        expect(tracks.first).to_have_class(re.compile("removed"))
        expect(page.locator("#editor-boxes rect")).to_have_class(re.compile("removed"))
        page.get_by_role("button", name="Approve and render").click()
        expect(page.locator("#detail-status")).to_have_text("completed", timeout=120_000)
        browser.close()
    result = tmp_path / "result.mp4"
    result.write_bytes(api.get(f"/api/v1/media/{media_id}/download").content)
    assert api.get(f"/api/v1/media/{media_id}/detections").json()["detections"] == [], "the track is gone"
    with av.open(str(result)) as container:
        shown = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(clip.path)) as container:
        source = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert max(float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(source, shown, strict=True)) < 2
