"""The ``piiblur`` command as a script would use it: JSON in, JSON out, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import astronaut, jpeg_with_exif, render_video


def piiblur(
    data_dir: Path | None,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """The command in a subprocess; ``data_dir`` None: no PIIBLUR_DATA_DIR at all."""
    base = {k: v for k, v in os.environ.items() if k != "PIIBLUR_DATA_DIR"}
    env = base | ({"PIIBLUR_DATA_DIR": str(data_dir)} if data_dir else {}) | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "piiblur", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
        cwd=cwd,
    )


def test_admin_commands_never_create_an_empty_installation(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = piiblur(None, "keys", "create", "--account", "someone@example.com", "--json", check=False, cwd=elsewhere)
    assert refused.returncode == 1
    message = json.loads(refused.stdout)["error"]
    assert f"no PiiBlur installation in {elsewhere / 'piiblur-data'}" in message and "--data-dir" in message
    assert not (elsewhere / "piiblur-data").exists(), "no empty state folder appears"
    for command in (
        ["accounts", "list"],
        ["keys", "list"],
        ["webhooks", "list"],
        ["accounts", "show", "--email", "a@b"],
    ):
        assert piiblur(elsewhere / "typo", *command, check=False).returncode == 1, command
    assert not (elsewhere / "typo").exists()

    data = tmp_path / "state"
    created = json.loads(piiblur(None, "init", "--data-dir", str(data), "--json").stdout)
    assert created == {"data_dir": str(data), "created": True}
    assert (data / "piiblur.db").exists() and (data / "secret.key").exists()
    again = json.loads(piiblur(None, "init", "--data-dir", str(data), "--json").stdout)
    assert again == {"data_dir": str(data), "created": False}

    # --data-dir and PIIBLUR_DATA_DIR name the same place; a relative one is resolved where it is given.
    account = json.loads(
        piiblur(
            None, "accounts", "create", "--email", "a@example.com", "--data-dir", "state", "--json", cwd=tmp_path
        ).stdout
    )
    listed = json.loads(piiblur(data, "accounts", "list", "--json", cwd=elsewhere).stdout)["accounts"]
    assert [a["account_id"] for a in listed] == [account["account_id"]]


def test_accounts_and_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    piiblur(data, "init")
    account = json.loads(
        piiblur(data, "accounts", "create", "--email", "Ops@Example.com", "--plan", "pro", "--json").stdout
    )
    assert account["plan"] == "pro" and account["email"] == "ops@example.com"
    duplicate = piiblur(data, "accounts", "create", "--email", "ops@example.com", "--json", check=False)
    assert duplicate.returncode == 1 and "already exists" in json.loads(duplicate.stdout)["error"]

    key = json.loads(piiblur(data, "keys", "create", "--account", account["account_id"], "--json").stdout)
    assert set(key) == {"key_id", "api_key"} and key["api_key"].startswith("pb_")
    listed = json.loads(piiblur(data, "keys", "list", "--json").stdout)["keys"]
    assert [k["key_id"] for k in listed] == [key["key_id"]]
    assert listed[0]["prefix"] == key["api_key"][:11] and not listed[0]["revoked"]
    assert key["api_key"] not in json.dumps(listed), "a key is shown once, never listed"
    db = (data / "piiblur.db").read_bytes()
    assert key["api_key"].encode() not in db, "only the hash is stored"

    revoked = json.loads(piiblur(data, "keys", "revoke", key["key_id"], "--json").stdout)
    assert revoked == {"key_id": key["key_id"], "revoked": True}
    assert json.loads(piiblur(data, "keys", "list", "--json").stdout)["keys"][0]["revoked"]

    updated = piiblur(data, "accounts", "set", "--account", account["account_id"], "--retention-hours", "48", "--json")
    assert json.loads(updated.stdout)["retention_hours"] == 48
    missing = piiblur(data, "keys", "create", "--account", "nope", "--json", check=False)
    assert missing.returncode == 1 and "not found" in json.loads(missing.stdout)["error"]

    # By email, for people who have an email at hand rather than an id.
    other = json.loads(piiblur(data, "accounts", "create", "--email", "b@example.com", "--json").stdout)
    shown = json.loads(piiblur(data, "accounts", "show", "--email", "OPS@example.com", "--json").stdout)
    assert shown["account_id"] == account["account_id"] and shown["retention_hours"] == 48
    assert (
        json.loads(piiblur(data, "accounts", "show", "--account", other["account_id"], "--json").stdout)["email"]
        == "b@example.com"
    )
    unknown = piiblur(data, "accounts", "show", "--email", "c@example.com", "--json", check=False)
    assert unknown.returncode == 1 and "No account with email c@example.com" in json.loads(unknown.stdout)["error"]
    listed_accounts = json.loads(piiblur(data, "accounts", "list", "--json").stdout)["accounts"]
    assert [a["email"] for a in listed_accounts] == ["ops@example.com", "b@example.com"]
    second = json.loads(piiblur(data, "keys", "create", "--account", "b@example.com", "--json").stdout)
    for reference in (other["account_id"], "b@example.com"):
        only = json.loads(piiblur(data, "keys", "list", "--account", reference, "--json").stdout)["keys"]
        assert [k["key_id"] for k in only] == [second["key_id"]]
    # --quiet: just the value, for KEY=$(...) in a shell.
    quiet_key = piiblur(data, "keys", "create", "--account", "b@example.com", "--quiet").stdout
    assert quiet_key.startswith("pb_") and quiet_key.strip() == quiet_key.rstrip("\n") and len(quiet_key.split()) == 1
    quiet_account = piiblur(data, "accounts", "create", "--email", "q@example.com", "-q").stdout.strip()
    assert (
        quiet_account
        == json.loads(piiblur(data, "accounts", "show", "--email", "q@example.com", "--json").stdout)["account_id"]
    )
    assert len(json.loads(piiblur(data, "keys", "list", "--json").stdout)["keys"]) == 3


def test_detect_and_redact_offline(tmp_path: Path) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg_with_exif(astronaut()))
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((100, 160, 3), 90, np.uint8)).save(grey)

    one = json.loads(piiblur(tmp_path, "detect", str(photo), "--categories", "heads", "--json").stdout)
    assert (one["width"], one["height"]) == (512, 512)
    (head,) = one["detections"]
    assert head["category"] == "heads" and head["score"] > 0.5
    x, y, w, h = head["box"]
    assert x < 200 < x + w and y < 100 < y + h, "the box covers the astronaut's face"

    lines = piiblur(tmp_path, "detect", str(photo), str(grey), "--categories", "heads", "--json").stdout.splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["file"] for r in results] == [str(photo), str(grey)]
    assert len(results[0]["detections"]) == 1 and results[1]["detections"] == []

    out = tmp_path / "out.jpg"
    done = json.loads(piiblur(tmp_path, "redact", str(photo), str(out), "--categories", "heads", "--json").stdout)
    assert done == {"output": str(out), "detections": 1, "counts": {"heads": 1}}
    assert Image.open(out).format == "JPEG" and not Image.open(out).getexif()

    clip = render_video(tmp_path / "clip.mp4", 1.0, fps=10).path
    result = piiblur(tmp_path, "redact", str(clip), str(tmp_path / "out.mp4"), "--categories", "heads")
    assert "100%" in result.stderr, "a progress bar is drawn on the terminal"
    assert result.stdout.strip().endswith("1 object(s) hidden (1 heads)"), "one face crossing: one object"
    profiled = piiblur(tmp_path, "redact", str(clip), str(tmp_path / "p.mp4"), "-c", "heads", "--json", "--profile")
    done_line, stages_line = map(json.loads, profiled.stdout.splitlines())
    assert done_line["counts"] == {"heads": 1}
    assert done_line["frames"] == 10 and 0 < done_line["keyframes"] < 10 and done_line["partial_keyframes"] >= 0
    assert {"decode", "encode", "hiding", "detect: centerface", "model loading"} <= set(stages_line["stages"])
    assert stages_line["stages"]["hiding"]["calls"] == 10

    no_encoder = {"PIIBLUR_VIDEO_H264_ENCODER": "h264_nope"}
    refused = piiblur(
        tmp_path, "redact", str(clip), str(tmp_path / "x.mp4"), "-c", "heads", check=False, env=no_encoder
    )
    assert refused.returncode == 1 and "H.264 encoder 'h264_nope' not in this FFmpeg build" in refused.stderr
    assert not (tmp_path / "x.mp4").exists()

    no_gpu = {"PIIBLUR_EXECUTION_PROVIDERS": "NoSuchExecutionProvider"}
    refused = piiblur(tmp_path, "detect", str(photo), "--categories", "heads", check=False, env=no_gpu)
    assert refused.returncode == 1 and "NoSuchExecutionProvider not available" in refused.stderr

    bad = piiblur(tmp_path, "detect", str(photo), "--categories", "faces", check=False)
    assert bad.returncode == 1 and "Unknown PII category 'faces'" in bad.stderr


def test_redact_hides_and_keeps_fixed_regions(tmp_path: Path) -> None:
    """The API's always_hide / never_hide from the shell: the face region kept as it was, the
    flag's corner hidden though nothing was found there, the rest untouched."""
    original = astronaut()
    photo, out = tmp_path / "astronaut.png", tmp_path / "out.png"
    Image.fromarray(original).save(photo)
    regions = ("--never-hide", "150,30,160,180", "--always-hide", "0,0,100,100")
    piiblur(tmp_path, "redact", str(photo), str(out), "-c", "heads", *regions, "--json")
    change = np.abs(np.asarray(Image.open(out)).astype(int) - original.astype(int)).mean(axis=2)
    assert change[30:210, 150:310].max() == 0, "the never-hide region is exactly as it was"
    assert change[:100, :100].mean() > 10, "the always-hide region is hidden"
    assert change[400:, 400:].max() == 0, "nothing else is touched"
    bad = piiblur(tmp_path, "redact", str(photo), str(out), "-c", "heads", "--never-hide", "1,2,3", check=False)
    assert bad.returncode == 1 and "--never-hide '1,2,3': give X,Y,WIDTH,HEIGHT" in bad.stderr


def test_redact_and_detect_a_folder(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / ".thumbnails").mkdir()
    face = jpeg_with_exif(astronaut())
    (source / "astronaut.jpg").write_bytes(face)
    (source / ".thumbnails" / "astronaut.jpg").write_bytes(face)  # hidden: left alone
    Image.fromarray(np.full((100, 160, 3), 90, np.uint8)).save(source / "sub" / "grey.png")
    render_video(source / "sub" / "clip.mp4", 1.0, fps=10)
    (source / "notes.txt").write_text("not media")
    (source / "broken.jpg").write_bytes(face[:3000])
    target = tmp_path / "out"

    run = piiblur(tmp_path, "redact", str(source), str(target), "--categories", "heads", "--json", check=False)
    assert run.returncode == 1, "one file could not be redacted"
    results = {Path(r["file"]).relative_to(source).as_posix(): r for r in map(json.loads, run.stdout.splitlines())}
    assert sorted(results) == ["astronaut.jpg", "broken.jpg", "sub/clip.mp4", "sub/grey.png"]
    assert "corrupt or truncated" in results["broken.jpg"]["error"]
    assert results["astronaut.jpg"]["counts"] == {"heads": 1}
    assert results["sub/clip.mp4"]["counts"] == {"heads": 1}
    assert results["sub/grey.png"]["detections"] == 0
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == ["astronaut.jpg", "sub/clip.mp4", "sub/grey.png"]
    assert not np.array_equal(
        np.asarray(Image.open(target / "astronaut.jpg")), np.asarray(Image.open(source / "astronaut.jpg"))
    )
    assert "1 of 4 file(s) could not be redacted" in run.stderr

    again = piiblur(tmp_path, "redact", str(source), str(source), "--categories", "heads", check=False)
    assert again.returncode == 1 and "never replace the originals" in again.stderr

    lines = piiblur(tmp_path, "detect", str(source), "--categories", "heads", "--json", check=False)
    found = {Path(r["file"]).name: r for r in map(json.loads, lines.stdout.splitlines())}
    assert sorted(found) == ["astronaut.jpg", "broken.jpg", "grey.png"], "images only, videos and text skipped"
    assert len(found["astronaut.jpg"]["detections"]) == 1 and "error" in found["broken.jpg"]
    assert lines.returncode == 1
