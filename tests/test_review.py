"""Review before release, through the real server: held items, edited detections, renders,
detection-only items, always/never-hide regions, the audit record, tenant isolation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import ASTRONAUT_FACE, Client, Server, astronaut, make_client, png_bytes, render_video
from test_webhooks import FAST_RETRIES, Receiver

HEADS = {"pii_categories[]": "heads"}
# A patch of the astronaut photo without any face or text (her suit and the flag's stripes):
# where a reviewer adds a box the detectors did not find.
MISSED = [300, 330, 120, 100]


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("review") / "data", env=FAST_RETRIES).start()
    yield server
    server.stop()


@pytest.fixture
def user(review_server: Server) -> Iterator[Client]:
    made = make_client(review_server)
    yield made
    made.http.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def upload(client: Client, content: bytes, name: str = "astronaut.png", path: str = "redact", **fields: str) -> str:
    response = client.http.post(f"/api/v1/media/{path}", files={"file": (name, content)}, data=HEADS | fields)
    assert response.status_code == 201, response.text
    return str(response.json()["media_id"])


def pixels(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB")).astype(int)


def changed(before: np.ndarray, after: np.ndarray, box: list[int] | tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    return float(np.abs(before[y : y + h, x : x + w] - after[y : y + h, x : x + w]).mean())


FACE = (
    ASTRONAUT_FACE[0],
    ASTRONAUT_FACE[1],
    ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0],
    ASTRONAUT_FACE[3] - ASTRONAUT_FACE[1],
)


def test_review_mode_holds_a_photo_and_renders_the_corrected_detections(user: Client, receiver: Receiver) -> None:
    hook = user.http.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["media.awaiting_review"]})
    assert hook.status_code == 201, hook.text
    original = png_bytes(astronaut())
    media_id = upload(user, original, review="true")
    assert user.wait(media_id)["status"] == "awaiting_review"
    ((_, body),) = receiver.wait_for(1, "media.awaiting_review")
    assert json.loads(body)["media_id"] == media_id

    assert user.http.get(f"/api/v1/media/{media_id}/download").status_code == 404, "nothing released"
    preview = user.http.get(f"/api/v1/media/{media_id}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(preview.content))
    assert max(shown.size) <= 960 and shown.format == "JPEG"
    small_face = [round(v * shown.width / 512) for v in FACE]
    preview_before = np.asarray(Image.fromarray(astronaut()).resize(shown.size)).astype(int)
    assert changed(preview_before, pixels(preview.content), small_face) > 10, "the preview hides the face"

    found = user.http.get(f"/api/v1/media/{media_id}/detections").json()["detections"]
    (head,) = [d for d in found if d["category"] == "heads"]
    assert head["source"] == "detector" and head["id"] and head["detector"]
    edit = {
        "operations": [
            {"op": "remove", "id": head["id"]},  # the reviewer says: not to be hidden
            {"op": "add", "detection": {"category": "tattoos", "box": MISSED}},
        ]
    }
    saved = user.http.patch(f"/api/v1/media/{media_id}/detections", json=edit)
    assert saved.status_code == 200 and saved.json()["original_retained_until_render"] is True, saved.text
    rendered = user.http.post(f"/api/v1/media/{media_id}/render")
    assert rendered.status_code == 202 and rendered.json()["status"] == "queued"
    detail = user.wait(media_id)
    assert detail["status"] == "completed" and detail["renders"] == 1, detail

    result = pixels(user.http.get(f"/api/v1/media/{media_id}/download").content)
    assert changed(pixels(original), result, FACE) == 0, "the removed detection is not hidden (PNG: exact)"
    assert changed(pixels(original), result, MISSED) > 10, "the added box is hidden"

    steps = user.http.get(f"/api/v1/media/{media_id}/audit").json()["steps"]
    actions = [s["action"] for s in steps]
    assert actions[:4] == ["uploaded", "detected", "held_for_review", "detections_edited"], actions
    assert actions[4:7] == ["render_requested", "rendered", "released"], actions
    assert actions[7:] == ["original_deleted"], "retention 0: the original goes once rendered"
    edit_step = steps[3]
    assert (
        edit_step["actor"].startswith("api_key:pb_")
        and edit_step["details"]["operations"][0]["before"]["id"] == head["id"]
    )
    assert steps[1]["actor"] == "detector" and steps[1]["details"]["counts"] == {"heads": 1}
    report = user.http.get(f"/api/v1/media/{media_id}/audit", params={"format": "html"})
    assert report.status_code == 200 and "Redaction audit" in report.text
    assert report.text.count("<img") == 1, "one thumbnail: the tattoo box, from the redacted output"


def test_edits_need_the_original_and_a_finished_detection(user: Client) -> None:
    media_id = upload(user, png_bytes(astronaut()))
    assert user.wait(media_id)["status"] == "completed"
    edit = {"operations": [{"op": "add", "detection": {"category": "heads", "box": MISSED}}]}
    refused = user.http.patch(f"/api/v1/media/{media_id}/detections", json=edit)
    assert refused.status_code == 409 and "deleted" in refused.json()["error"], "retention 0 deleted the original"
    assert user.http.post(f"/api/v1/media/{media_id}/render").status_code == 409


def test_a_correction_after_release_renders_a_new_version(user: Client) -> None:
    assert user.http.patch("/api/v1/account", json={"retention_hours": 24}).status_code == 200
    original = png_bytes(astronaut())
    media_id = upload(user, original)
    assert user.wait(media_id)["status"] == "completed"
    first = pixels(user.http.get(f"/api/v1/media/{media_id}/download").content)
    assert changed(pixels(original), first, FACE) > 10 and changed(pixels(original), first, MISSED) == 0
    current = user.http.get(f"/api/v1/media/{media_id}/detections").json()["detections"]
    replaced = {"detections": [*current, {"category": "writing", "box": MISSED}]}
    assert user.http.put(f"/api/v1/media/{media_id}/detections", json=replaced).status_code == 200
    assert user.http.post(f"/api/v1/media/{media_id}/render").status_code == 202
    detail = user.wait(media_id)
    assert detail["status"] == "completed" and detail["renders"] == 2
    second = pixels(user.http.get(f"/api/v1/media/{media_id}/download").content)
    assert changed(pixels(original), second, FACE) > 10, "the detected face is still hidden"
    assert changed(pixels(original), second, MISSED) > 10, "and the added box too"
    sources = user.http.get(f"/api/v1/media/{media_id}/audit").json()["detections_by_source"]
    assert sources == {"detector": 1, "reviewer": 1}


def test_the_account_review_mode_holds_uploads_unless_they_say_otherwise(user: Client) -> None:
    assert user.http.patch("/api/v1/account", json={"review_mode": True}).json()["review_mode"] is True
    held = upload(user, png_bytes(astronaut()))
    released = upload(user, png_bytes(astronaut()), review="false")
    assert user.wait(held)["status"] == "awaiting_review"
    assert user.wait(released)["status"] == "completed"
    bad = user.http.post(
        "/api/v1/media/redact", files={"file": ("a.png", png_bytes(astronaut()))}, data=HEADS | {"review": "maybe"}
    )
    assert bad.status_code == 422 and "review" in bad.json()["error"]
    assert user.http.patch("/api/v1/account", json={"review_mode": 1}).status_code == 422


def test_detection_only_stores_boxes_renders_nothing_and_counts_as_an_item(user: Client) -> None:
    before = user.http.get("/api/v1/usage").json()["images"]["used"]
    media_id = upload(user, png_bytes(astronaut()), path="detect")
    detail = user.wait(media_id)
    assert detail["status"] == "completed" and detail["mode"] == "detect" and detail["renders"] == 0
    missing = user.http.get(f"/api/v1/media/{media_id}/download")
    assert missing.status_code == 404 and "Detection only" in missing.json()["error"]
    found = user.http.get(f"/api/v1/media/{media_id}/detections").json()
    assert found["counts"] == {"heads": 1}
    assert user.http.get("/api/v1/usage").json()["images"]["used"] == before + 1


def test_always_and_never_hide_regions(user: Client) -> None:
    original = png_bytes(astronaut())
    around_face = [FACE[0] - 20, FACE[1] - 20, FACE[2] + 40, FACE[3] + 40]
    media_id = upload(user, original, never_hide=json.dumps([around_face]), always_hide=json.dumps([MISSED]))
    assert user.wait(media_id)["status"] == "completed"
    result = pixels(user.http.get(f"/api/v1/media/{media_id}/download").content)
    assert changed(pixels(original), result, FACE) == 0, "the face lies in a never-hide region"
    assert changed(pixels(original), result, MISSED) > 10, "the always-hide box is hidden"
    assert user.http.get(f"/api/v1/media/{media_id}/detections").json()["counts"] == {}
    for value in ("[1, 2]", "not json", "[[0, 0, 0, 10]]", '[[1, 2, 3, "4"]]'):
        bad = user.http.post(
            "/api/v1/media/redact", files={"file": ("a.png", original)}, data=HEADS | {"always_hide": value}
        )
        assert bad.status_code == 422 and "always_hide" in bad.json()["error"], (value, bad.text)


def test_every_review_endpoint_keeps_accounts_apart(user: Client, review_server: Server) -> None:
    media_id = upload(user, png_bytes(astronaut()), review="true")
    assert user.wait(media_id)["status"] == "awaiting_review"
    other = make_client(review_server)
    edit = {"operations": [{"op": "add", "detection": {"category": "heads", "box": MISSED}}]}
    attempts = [
        other.http.put(f"/api/v1/media/{media_id}/detections", json={"detections": []}),
        other.http.patch(f"/api/v1/media/{media_id}/detections", json=edit),
        other.http.post(f"/api/v1/media/{media_id}/render"),
        other.http.get(f"/api/v1/media/{media_id}/preview"),
        other.http.get(f"/api/v1/media/{media_id}/audit"),
        other.http.get(f"/api/v1/media/{media_id}/audit", params={"format": "html"}),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    assert len(user.http.get(f"/api/v1/media/{media_id}/detections").json()["detections"]) == 1, "untouched"
    other.http.close()


def test_a_box_added_on_a_frame_range_is_hidden_there_only(user: Client, tmp_path: Path) -> None:
    assert user.http.patch("/api/v1/account", json={"retention_hours": 24}).status_code == 200  # two renders
    clip = render_video(tmp_path / "clip.mp4", 2.0, fps=10, audio=False)
    media_id = upload(user, clip.path.read_bytes(), name="clip.mp4", review="true")
    assert user.wait(media_id, timeout=120)["status"] == "awaiting_review"
    found = user.http.get(f"/api/v1/media/{media_id}/detections").json()
    assert found["frames"] == 20
    (track,) = {d["track"] for d in found["detections"] if d["category"] == "heads"}
    remove = {"operations": [{"op": "remove_track", "track": track, "frame_start": 12, "frame_end": 15}]}
    first = render_edited(user, media_id, remove, tmp_path / "first.mp4")
    before = frames(clip.path)
    assert len(before) == len(first) == 20
    face_hidden = [i for i in range(20) if changed(before[i], first[i], inner(clip.face_boxes[i])) > 8]
    assert face_hidden == [i for i in range(20) if not 12 <= i <= 15], "the face track is shown on 12-15 only"

    corner = [4, 4, 60, 40]  # the moving head's ellipse passes here too: compare with the first render
    add = {
        "operations": [{"op": "add", "detection": {"category": "writing", "box": corner, "frame": 5, "frame_end": 9}}]
    }
    second = render_edited(user, media_id, add, tmp_path / "second.mp4")
    span = range(5, 10)
    assert all(changed(before[i], second[i], corner) > 6 for i in span), "hidden in every frame of the range"
    outside = [round(changed(first[i], second[i], corner), 1) for i in range(20) if i not in span]
    assert max(outside) < 3, f"and nowhere else: {outside}"
    assert user.http.get(f"/api/v1/media/{media_id}").json()["renders"] == 2


def render_edited(user: Client, media_id: str, edit: dict[str, object], out: Path) -> list[np.ndarray]:
    assert user.http.patch(f"/api/v1/media/{media_id}/detections", json=edit).status_code == 200
    assert user.http.post(f"/api/v1/media/{media_id}/render").status_code == 202
    assert user.wait(media_id, timeout=120)["status"] == "completed"
    out.write_bytes(user.http.get(f"/api/v1/media/{media_id}/download").content)
    return frames(out)


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]


def inner(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    return x + w // 6, y + h // 6, w - w // 3, h - h // 3
