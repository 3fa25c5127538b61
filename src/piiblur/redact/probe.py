"""What a file really is, from its bytes, never its name.

Uploads are sniffed by magic numbers, then fully decoded (images) or opened and test-decoded
(videos), so a truncated or mislabeled file is refused at upload with a clear message instead of
failing later in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

from piiblur.domain import MediaType

if TYPE_CHECKING:  # PyAV (FFmpeg) loads in 70 ms: photos never need it
    import av
    import av.container

IMAGE_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
# Decoding costs about 3 bytes per pixel and redaction several times that: the default limit
# (``Settings.max_image_pixels``) keeps one photo's peak near 3 GB; larger pictures are refused.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000

# The largest frame of the largest H.264/HEVC level (6.2: 8192x4320). A video declaring more
# (16384x16384 would take 400 MB a frame, times the frames in flight) is refused before decoding,
# and the decoder is told the same bound, for a bitstream whose frames differ from its header.
MAX_VIDEO_SIZE = (8192, 4320)
MAX_VIDEO_PIXELS = MAX_VIDEO_SIZE[0] * MAX_VIDEO_SIZE[1]
# FFmpeg reads the uploaded file and nothing else: no other protocol (a crafted container cannot
# make it open a URL or another local file), no external data references, and the demuxer that the
# sniffed bytes named (never one FFmpeg guesses, such as a playlist).
DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska"}
SAFE_INPUT_OPTIONS = {"protocol_whitelist": "file", "enable_drefs": "0"}


class UnsupportedMediaError(ValueError):
    """The file is empty, corrupt, or not one of the supported formats."""


@dataclass(frozen=True)
class MediaInfo:
    media_type: MediaType
    file_format: str  # jpeg, png, webp, mp4, mov, webm
    width: int
    height: int
    duration_seconds: float | None = None

    @property
    def extension(self) -> str:
        return "jpg" if self.file_format == "jpeg" else self.file_format


def content_type_for(file_format: str) -> str:
    if file_format in IMAGE_FORMATS.values():
        return f"image/{file_format}"
    return "video/quicktime" if file_format == "mov" else f"video/{file_format}"


def sniff_format(head: bytes) -> str | None:
    """The format named by the first bytes of a file, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else None
    return None


def probe(path: Path, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> MediaInfo:
    """Identify and validate a media file; raises ``UnsupportedMediaError`` with a user-facing reason."""
    with path.open("rb") as handle:
        head = handle.read(64)
    if not head:
        raise UnsupportedMediaError("Uploaded file is empty")
    file_format = sniff_format(head)
    if file_format is None:
        raise UnsupportedMediaError("Unsupported file type. Supported formats: jpg, jpeg, png, webp, mp4, mov, webm")
    if file_format in IMAGE_FORMATS.values():
        return _probe_image(path, file_format, max_image_pixels)
    return _probe_video(path, file_format)


def _probe_image(path: Path, file_format: str, max_pixels: int) -> MediaInfo:
    try:
        with Image.open(path) as image:  # reads the header only: the size is known before any decoding
            if image.width * image.height > max_pixels:
                raise UnsupportedMediaError(
                    f"Image is too large ({image.width}x{image.height}; at most {max_pixels // 1_000_000} megapixels)"
                )
            image.load()  # a full decode: truncated files fail here, not in the worker
            return MediaInfo(MediaType.IMAGE, file_format, image.width, image.height)
    except Image.DecompressionBombError as error:  # Pillow's own guard, before the size is even read
        raise UnsupportedMediaError(f"Image is too large (at most {max_pixels // 1_000_000} megapixels)") from error
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise UnsupportedMediaError(f"Image file is corrupt or truncated ({file_format})") from error


def open_video(path: Path, file_format: str | None = None, hwaccel: str | None = None) -> av.container.InputContainer:
    """A video opened for reading with the guards above; raises ``UnsupportedMediaError`` for a
    file whose bytes do not name a supported video container. ``file_format``: already sniffed;
    ``hwaccel``: an FFmpeg device type (cuda, qsv, vaapi...) to decode on, falling back to the
    software decoder for what the device cannot decode."""
    if file_format is None:
        with path.open("rb") as handle:
            file_format = sniff_format(handle.read(64))
    if file_format not in DEMUXERS:
        raise UnsupportedMediaError("Not a supported video container (mp4, mov, webm)")
    import av
    from av.codec.hwaccel import HWAccel

    device = HWAccel(hwaccel, allow_software_fallback=True) if hwaccel else None
    container = av.open(str(path), format=DEMUXERS[file_format], options=SAFE_INPUT_OPTIONS, hwaccel=device)
    for stream in container.streams.video:
        stream.codec_context.options = {"max_pixels": str(MAX_VIDEO_PIXELS)}
    return container


def _probe_video(path: Path, file_format: str) -> MediaInfo:
    import av

    try:
        with open_video(path, file_format) as container:
            if not container.streams.video:
                raise UnsupportedMediaError("Video file has no video stream")
            stream = container.streams.video[0]
            if stream.width * stream.height > MAX_VIDEO_PIXELS:
                raise UnsupportedMediaError(
                    f"Video frames are too large ({stream.width}x{stream.height}; "
                    f"at most {MAX_VIDEO_SIZE[0]}x{MAX_VIDEO_SIZE[1]})"
                )
            duration = _duration_seconds(container, stream)
            for _frame in container.decode(stream):
                break
            else:
                raise UnsupportedMediaError("Video file has no decodable frames")
            return MediaInfo(MediaType.VIDEO, file_format, stream.width, stream.height, duration)
    except av.FFmpegError as error:
        raise UnsupportedMediaError(f"Video file is corrupt or unreadable ({file_format})") from error


def _duration_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """How long the video really is, from its packets' timestamps: a container header can claim
    anything (a WebM saying 2 s that holds 700 s was billed a minute and redacted whole). Reading
    the packets costs one pass over the file, without decoding."""
    measured = _measured_seconds(container)
    if measured is not None:
        return measured
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    raise UnsupportedMediaError("Video duration could not be determined")


def _measured_seconds(container: av.container.InputContainer) -> float | None:
    """From the earliest start to the latest end of any packet of any stream; None without timestamps."""
    start: float | None = None
    end: float | None = None
    for packet in container.demux():
        if packet.pts is None or packet.stream.time_base is None:
            continue
        base = packet.stream.time_base
        first = float(packet.pts * base)
        last = float((packet.pts + (packet.duration or 0)) * base)
        start = first if start is None else min(start, first)
        end = last if end is None else max(end, last)
    container.seek(0)
    if start is None or end is None:
        return None
    return max(0.0, end - start)
