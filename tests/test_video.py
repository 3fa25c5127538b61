"""The video pipeline on rendered clips: every frame hidden, sound kept, format and timing kept."""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, TypeVar

import av
import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from conftest import RenderedClip, astronaut, render_video
from piiblur.detect import Box, Detection, DetectionEngine, Look, default_engine
from piiblur.domain import ObfuscationType, PiiCategory
from piiblur.profiling import StageClock
from piiblur.redact.video import SOFTWARE, UnavailableCodecError, VideoCodecs, VideoRedaction, redact_video

HEADS = [PiiCategory.HEADS]
T = TypeVar("T")


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def uncovered_frames(clip: RenderedClip, output: Path) -> list[int]:
    """Frames where the face region of the output still looks like the input's face."""
    before, after = frames_of(clip.path), frames_of(output)
    assert len(before) == len(after)
    leaks = []
    for index, ((x, y, w, h), a, b) in enumerate(zip(clip.face_boxes, before, after, strict=True)):
        inner = (slice(y + h // 6, y + h - h // 6), slice(x + w // 6, x + w - w // 6))
        if np.abs(a[inner].astype(int) - b[inner].astype(int)).mean() < 8:
            leaks.append(index)
    return leaks


def redact(clip: RenderedClip, out: Path, file_format: str = "mp4") -> VideoRedaction:
    return redact_video(clip.path, out, file_format, HEADS, ObfuscationType.BLUR, default_engine())


def stream_facts(path: Path) -> dict[str, tuple[str, float]]:
    with av.open(str(path)) as container:
        facts = {}
        for stream in container.streams:
            duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
            facts[stream.type] = (stream.codec_context.name, duration)
        return facts


def test_mp4_keeps_frames_timing_and_audio(tmp_path: Path) -> None:
    clip = render_video(tmp_path / "in.mp4", 3.0, fps=25)
    out = tmp_path / "out.mp4"
    result = redact(clip, out)
    assert result.frames == 75 and len(result.keyframes) < 75, "detection runs on keyframes only"
    before, after = stream_facts(clip.path), stream_facts(out)
    assert after["video"][0] == "h264" and after["audio"][0] == before["audio"][0] == "aac"
    assert abs(after["video"][1] - before["video"][1]) <= 1 / 25
    assert abs(after["audio"][1] - before["audio"][1]) <= 0.05
    assert len(frames_of(out)) == 75
    assert uncovered_frames(clip, out) == []
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat"), "faststart: the index comes before the media data"


def test_fast_face_is_never_uncovered(tmp_path: Path) -> None:
    """The face crosses a 480-pixel frame three times a second: ~40 pixels a frame."""
    clip = render_video(tmp_path / "fast.mp4", 2.0, fps=25, size=(480, 270), crossings=6, audio=False)
    out = tmp_path / "out.mp4"
    result = redact(clip, out)
    assert uncovered_frames(clip, out) == [], result.keyframes
    assert len(result.detections) > 5 and result.object_counts() == {PiiCategory.HEADS: 1}, "one person"


def test_a_fast_face_does_not_drag_a_still_code_to_every_frame(tmp_path: Path) -> None:
    """Heads have their own channel: a face fast enough to be looked for at every frame does not
    make the codes channel look at a still QR code that often, and both are hidden throughout."""
    import zxingcpp

    import render

    faces = render_video(tmp_path / "fast.mp4", 2.0, fps=25, size=(640, 400), crossings=6, audio=False)
    code = render.code_image("https://example.com/ticket/123456", zxingcpp.BarcodeFormat.QRCode, scale=3)
    at = (640 - code.shape[1] - 8, 4)
    frames = []
    for frame in frames_of(faces.path):
        frame[at[1] : at[1] + code.shape[0], at[0] : at[0] + code.shape[1]] = code
        frames.append(frame)
    path = tmp_path / "face_and_code.mp4"
    write_clip(path, frames, fps=25)
    out = tmp_path / "out.mp4"
    categories = [PiiCategory.HEADS, PiiCategory.QR_CODES]
    result = redact_video(path, out, "mp4", categories, ObfuscationType.BLUR, default_engine())
    assert uncovered_frames(RenderedClip(path, faces.face_boxes, 25), out) == []
    code_box = (at[0], at[1], code.shape[1], code.shape[0])
    assert uncovered_frames(RenderedClip(path, [code_box] * len(frames), 25), out) == []
    assert result.plan is not None
    keyframes = {tuple(channel.categories): len(channel.keyframes) for channel in result.plan.channels}
    assert keyframes.keys() == {(PiiCategory.HEADS,), (PiiCategory.QR_CODES,)}, keyframes
    assert keyframes[(PiiCategory.HEADS,)] > len(frames) // 3, "the face is looked for often"
    assert keyframes[(PiiCategory.QR_CODES,)] <= len(frames) // 5, keyframes


def test_a_scene_cut_ends_tracks(tmp_path: Path) -> None:
    """The same face after a cut is counted again: nothing links the two shots."""
    clip = render_video(tmp_path / "cut.mp4", 2.0, fps=10, cut_at=10, audio=False)
    result = redact(clip, tmp_path / "out.mp4")
    assert result.object_counts() == {PiiCategory.HEADS: 2}


def test_webm_and_mov_keep_their_container(tmp_path: Path) -> None:
    webm = render_video(tmp_path / "in.webm", 1.5, fps=20, codec="libvpx-vp9")
    redact(webm, tmp_path / "out.webm", "webm")
    facts = stream_facts(tmp_path / "out.webm")
    assert facts["video"][0] == "vp9" and facts["audio"][0] == "opus"
    assert uncovered_frames(webm, tmp_path / "out.webm") == []

    mov = render_video(tmp_path / "in.mov", 1.0, fps=20)
    redact(mov, tmp_path / "out.mov", "mov")
    with av.open(str(tmp_path / "out.mov")) as container:
        assert "mov" in container.format.name and container.streams.video[0].codec_context.name == "h264"


def test_rotation_kept_and_location_removed(tmp_path: Path) -> None:
    tags = {"location": "+48.8577+002.2950/", "comment": "serial SN-123456"}
    clip = render_video(tmp_path / "phone.mp4", 1.0, fps=20, rotation=90, metadata=tags)
    with av.open(str(clip.path)) as container:
        assert container.metadata.get("location") == tags["location"], "the input carries a location"
        assert next(container.decode(video=0)).rotation == 90
    out = tmp_path / "out.mp4"
    redact(clip, out)
    with av.open(str(out)) as container:
        assert "location" not in container.metadata and "comment" not in container.metadata
        assert next(container.decode(video=0)).rotation == 90
    assert b"SN-123456" not in out.read_bytes() and b"+48.8577" not in out.read_bytes()


class RunAtOnce(Executor):
    """Detection that is done the moment it is submitted: a fast, idle machine."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class RunWhenAwaited(Executor):
    """Detection that is never done until the pipeline waits for it: a loaded machine."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return AwaitedFuture(functools.partial(fn, *args, **kwargs))


class AwaitedFuture(Future[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        super().__init__()
        self.call = call

    def result(self, timeout: float | None = None) -> T:
        if not self.done():
            self.set_result(self.call())
        return super().result(timeout)


def test_keyframes_do_not_depend_on_how_long_detection_takes(tmp_path: Path) -> None:
    """The stride adapts to motion seen at the keyframe still being detected: a slow machine
    must not look less often at a fast face (or at different frames) than a fast one."""
    clip = render_video(tmp_path / "in.mp4", 3.0, fps=25, size=(320, 240), crossings=2, audio=False)
    categories = [PiiCategory.HEADS, PiiCategory.QR_CODES, PiiCategory.LICENSE_PLATES]
    engine = default_engine()
    runs = [
        redact_video(clip.path, None, "mp4", categories, ObfuscationType.BLUR, engine, detection_pool=pool)
        for pool in (RunAtOnce, RunWhenAwaited)
    ]
    fast, slow = ([channel.keyframes for channel in run.plan.channels] for run in runs if run.plan is not None)
    assert fast == slow
    assert runs[0].regions_per_frame == runs[1].regions_per_frame
    assert len(set(runs[0].keyframes)) > len(fast[-1]) + 5, "the face moves: heads looked for more often"


def test_scene_cut_forces_a_keyframe(tmp_path: Path) -> None:
    clip = render_video(tmp_path / "cut.mp4", 2.0, fps=20, cut_at=23, audio=False)
    out = tmp_path / "out.mp4"
    result = redact(clip, out)
    assert 23 in result.keyframes
    assert uncovered_frames(clip, out) == []


@pytest.mark.parametrize("method", list(ObfuscationType))
def test_video_faces_are_not_found_after_redaction(tmp_path: Path, method: ObfuscationType) -> None:
    clip = render_video(tmp_path / "in.mp4", 1.0, fps=10, audio=False)
    out = tmp_path / "out.mp4"
    redact_video(clip.path, out, "mp4", HEADS, method, default_engine())
    for frame in frames_of(out):
        assert default_engine().detect(frame, HEADS) == []


def test_moving_plate_hidden_in_every_frame_beside_a_face(tmp_path: Path) -> None:
    """Two channels: heads on a short stride, OCR-based plates on a longer one; both every frame."""
    import render

    plate = render.license_plate()[:, :, :]
    plate = np.asarray(
        av.VideoFrame.from_ndarray(plate, format="rgb24").reformat(width=260, height=56).to_ndarray(format="rgb24")
    )
    background = render.photo("coffee", (640, 360))
    path = tmp_path / "plate.mp4"
    boxes = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for index in range(40):
            canvas = background.copy()
            x, y = 40 + 6 * index, 250
            canvas[y : y + 56, x : x + 260] = plate
            boxes.append((x, y, 260, 56))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode(None))
    clip = RenderedClip(path, boxes, 20)
    out = tmp_path / "out.mp4"
    categories = [PiiCategory.HEADS, PiiCategory.LICENSE_PLATES]
    result = redact_video(path, out, "mp4", categories, ObfuscationType.PIXELATION, default_engine())
    assert any(d.detection.category is PiiCategory.LICENSE_PLATES for d in result.detections)
    assert uncovered_frames(clip, out) == []
    assert result.object_counts() == {PiiCategory.LICENSE_PLATES: 1}, "one plate, seen on many keyframes"


def test_variable_frame_rate_timestamps_are_kept(tmp_path: Path) -> None:
    """A phone clip whose frames come 33, 100 and 50 ms apart keeps exactly those times."""
    from fractions import Fraction

    import render

    background = render.photo("coffee", (320, 240))
    path = tmp_path / "vfr.mp4"
    times_ms = [0]
    for step in [33, 100, 50] * 8:
        times_ms.append(times_ms[-1] + step)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for t in times_ms:
            frame = av.VideoFrame.from_ndarray(background, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    def seconds(file: Path) -> list[float]:
        with av.open(str(file)) as container:
            return [round(float(f.pts * f.time_base), 3) for f in container.decode(video=0)]

    assert seconds(path) == [t / 1000 for t in times_ms], "the input really is variable"
    out = tmp_path / "out.mp4"
    redact_video(path, out, "mp4", HEADS, ObfuscationType.BLUR, default_engine())
    assert seconds(out) == seconds(path)


def test_a_failing_encoder_stops_the_job_with_an_error(tmp_path: Path) -> None:
    """A frame the encoder refuses fails the redaction cleanly: the error reaches the caller,
    and the producer never blocks on a writer thread that has stopped writing."""
    from piiblur.redact.muxing import QUEUE_DEPTH, BackgroundMuxer

    with av.open(str(tmp_path / "out.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        muxer = BackgroundMuxer(out, stream, ObfuscationType.BLUR)
        wrong_size = np.zeros((96 * 3 // 2, 128), np.uint8)  # 128x96: not what the stream expects
        frame = av.VideoFrame.from_ndarray(wrong_size, format="yuv420p")
        with pytest.raises(RuntimeError, match="writing the redacted video failed"):
            for _ in range(QUEUE_DEPTH * 4):
                muxer.video(frame, wrong_size.copy(), [])
            muxer.close()
        muxer.abort()


def test_odd_sized_webm_keeps_its_size(tmp_path: Path) -> None:
    """VP9 allows odd widths and heights (4:2:0 chroma then rounds up); they must survive."""
    clip = render_video(tmp_path / "odd.webm", 1.0, fps=10, size=(321, 241), codec="libvpx-vp9")
    out = tmp_path / "out.webm"
    result = redact(clip, out, "webm")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (321, 241)
    assert result.frames == len(clip.face_boxes)
    assert uncovered_frames(clip, out) == []


def write_clip(path: Path, frames: list[np.ndarray], fps: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


class MissesEveryOtherKeyframe(DetectionEngine):
    """The real engine, whose plates are dropped at every other keyframe: a detector that misses
    a static object now and then, as real ones do."""

    def __init__(self, engine: DetectionEngine) -> None:
        super().__init__(engine.detectors, engine.calibration)
        self.calls = 0

    def look(self, image: np.ndarray, categories: object, *args: object) -> Look:  # type: ignore[override]
        found = super().look(image, categories, *args)  # type: ignore[arg-type]
        self.calls += 1
        if self.calls % 2:
            return found
        return Look([d for d in found.detections if d.category is not PiiCategory.LICENSE_PLATES], found.unsure)


def test_a_static_plate_missed_at_every_other_keyframe_never_shows(tmp_path: Path) -> None:
    import render

    plate = np.asarray(Image.fromarray(render.license_plate()).resize((260, 56)))
    frame = render.photo("coffee", (640, 360)).copy()
    frame[250:306, 200:460] = plate
    path = tmp_path / "static.mp4"
    write_clip(path, [frame] * 60, fps=20)
    clip = RenderedClip(path, [(200, 250, 260, 56)] * 60, 20)
    engine = MissesEveryOtherKeyframe(default_engine())
    out = tmp_path / "out.mp4"
    result = redact_video(path, out, "mp4", [PiiCategory.LICENSE_PLATES], ObfuscationType.BLUR, engine)
    assert engine.calls >= 4, "several keyframes, half of them without the plate"
    assert uncovered_frames(clip, out) == [], result.keyframes
    assert result.object_counts() == {PiiCategory.LICENSE_PLATES: 1}


def test_a_face_coming_into_a_still_scene_is_hidden_between_full_looks(tmp_path: Path) -> None:
    """A still camera: between full looks the face model sees only the tracked face and what
    changed. A second face that comes in at frame 13 (after the full look at 10) and one that walks
    across are hidden in every frame they show in, and partial looks did happen."""
    import render

    face = np.asarray(Image.fromarray(astronaut()[20:230, 160:310]).resize((60, 84)))
    background = render.photo("coffee", (1280, 720))
    frames, boxes = [], []
    for index in range(40):
        frame = background.copy()
        walker_x = 100 + 25 * index  # 25 px a frame: fast for its size, the stride shrinks
        frame[300:384, walker_x : walker_x + 60] = face
        shown = [(walker_x, 300, 60, 84)]
        if index >= 13:
            frame[500:584, 1000:1060] = face
            shown.append((1000, 500, 60, 84))
        frames.append(frame)
        boxes.append(shown)
    path, out = tmp_path / "still.mp4", tmp_path / "out.mp4"
    write_clip(path, frames, fps=20)
    result = redact_video(path, out, "mp4", HEADS, ObfuscationType.BLUR, default_engine())
    assert result.partial_keyframes, result.keyframes
    leaks = []
    for index, (a, b) in enumerate(zip(frames_of(path), frames_of(out), strict=True)):
        for x, y, w, h in boxes[index]:
            inner = (slice(y + h // 6, y + h - h // 6), slice(x + w // 6, x + w - w // 6))
            if np.abs(a[inner].astype(int) - b[inner].astype(int)).mean() < 8:
                leaks.append((index, x))
    assert leaks == [], (leaks, result.keyframes, result.partial_keyframes)
    assert result.object_counts() == {PiiCategory.HEADS: 2}
    whole = redact_video(path, out, "mp4", HEADS, ObfuscationType.BLUR, default_engine(), partial_looks=False)
    assert whole.partial_keyframes == [] and whole.object_counts() == {PiiCategory.HEADS: 2}


def motorcycle_with_plate() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """scikit-image's photo of a motorcycle, with a rear plate where one hangs (under the tail
    light), and that plate's box."""
    import render

    photo = np.asarray(Image.open(Path(skimage.data.__file__).parent / "motorcycle_left.png").convert("RGB")).copy()
    plate = np.asarray(Image.fromarray(render.license_plate()).resize((96, 22)))
    x, y = 52, 232
    photo[y : y + 22, x : x + 96] = plate
    return photo, (x, y, 96, 22)


def test_a_plate_is_hidden_from_the_first_frame_it_can_be_read_in_a_zoom(tmp_path: Path) -> None:
    import render

    """A slow zoom onto the bike: the plate grows from a few pixels to legible. It is hidden in
    every frame from the first one from which the detector, looking at each frame alone, finds it
    every time (before that it is a 4 px smudge found now and then)."""
    photo, (px, py, pw, ph) = motorcycle_with_plate()
    height, width = photo.shape[:2]
    out_size, frames, boxes = (480, 324), [], []
    focus = np.array([px + pw / 2, py + ph / 2]) * 0.5 + np.array([width / 2, height / 2]) * 0.5
    pad = 2  # the bike far away in its garage's floor: gravel all around
    canvas = np.asarray(Image.fromarray(render.photo("gravel", (width * (2 * pad + 1), height * (2 * pad + 1))))).copy()
    canvas[pad * height : (pad + 1) * height, pad * width : (pad + 1) * width] = photo
    for index in range(80):
        span = 4.0 * (1.0 / 4.0) ** (index / 79)  # the window shrinks steadily from 4 to 1 photo widths in 4 s
        w, h = width * span, height * span
        x0, y0 = pad * width + focus[0] - w / 2, pad * height + focus[1] - h / 2
        scale = out_size[0] / w
        matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
        frames.append(cv2.warpAffine(canvas, matrix, out_size, flags=cv2.INTER_AREA))
        boxes.append(
            (
                int((pad * width + px - x0) * scale),
                int((pad * height + py - y0) * scale),
                int(pw * scale),
                int(ph * scale),
            )
        )
    path = tmp_path / "zoom.mp4"
    write_clip(path, frames, fps=20)
    decoded = frames_of(path)
    engine = default_engine()
    found = [covered(boxes[i], engine.detect(f, [PiiCategory.LICENSE_PLATES])) for i, f in enumerate(decoded)]
    assert found[-1] and not found[0], "the plate is too small to read at first, then read"
    legible = next(i for i in range(len(found)) if all(found[i:]))
    out = tmp_path / "out.mp4"
    redact_video(path, out, "mp4", [PiiCategory.LICENSE_PLATES], ObfuscationType.BLUR, engine)
    clip = RenderedClip(path, boxes, 20)
    assert [i for i in uncovered_frames(clip, out) if i >= legible] == [], legible


def covered(box: tuple[int, int, int, int], detections: list[Detection]) -> bool:
    x, y, w, h = box
    return any(d.box.intersection_area(Box(x, y, w, h)) >= 0.7 * w * h for d in detections)


def test_stage_clock_counts_every_stage_of_a_redaction(tmp_path: Path) -> None:
    clip = render_video(tmp_path / "clip.mp4", 2.0, fps=10)
    clock = StageClock()
    with clock.active():
        result = redact(clip, tmp_path / "out.mp4")
    stages = {name: (seconds, calls) for name, seconds, calls in clock.table()}
    frames = len(clip.face_boxes)
    assert stages["hiding"][1] == frames and stages["frame copy"][1] == frames
    assert stages["detect: centerface"][1] == len(result.keyframes) == stages["to RGB"][1]
    assert stages["encode"][1] == frames + 1, "each frame, then the encoder's flush"
    assert all(seconds >= 0 for seconds, _ in stages.values())
    busy = stages["detect: centerface"][0]
    with clock.active():  # a second run adds to the same clock; off again afterwards
        redact(clip, tmp_path / "again.mp4")
    assert clock.table() and {n: c for n, _, c in clock.table()}["hiding"] == 2 * frames
    redact(clip, tmp_path / "unclocked.mp4")
    assert {n: c for n, _, c in clock.table()}["hiding"] == 2 * frames
    assert {n: s for n, s, _ in clock.table()}["detect: centerface"] > busy


def test_video_codecs_are_checked_by_name_before_any_work() -> None:
    SOFTWARE.check()
    with pytest.raises(UnavailableCodecError, match="'nosuch' not in this FFmpeg build"):
        VideoCodecs(hwaccel="nosuch").check()
    with pytest.raises(UnavailableCodecError, match=r"H\.264 encoder 'h264_nope'"):
        VideoCodecs(h264_encoder="h264_nope").check()
