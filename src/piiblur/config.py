"""The one settings object. Every knob is a ``PIIBLUR_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from piiblur.domain import Plan
from piiblur.logs import LogFormat

GIB = 1024**3


class PlanLimits(BaseModel):
    """What one plan allows per minute and per calendar month."""

    requests_per_minute: int
    images_per_month: int
    video_minutes_per_month: int


DEFAULT_PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(requests_per_minute=60, images_per_month=100, video_minutes_per_month=10),
    Plan.STARTER: PlanLimits(requests_per_minute=120, images_per_month=5_000, video_minutes_per_month=30),
    Plan.PRO: PlanLimits(requests_per_minute=300, images_per_month=25_000, video_minutes_per_month=60),
    Plan.SCALE: PlanLimits(requests_per_minute=1_000, images_per_month=100_000, video_minutes_per_month=600),
    # Enterprise is "custom": these are the defaults an operator overrides per account.
    Plan.ENTERPRISE: PlanLimits(requests_per_minute=3_000, images_per_month=1_000_000, video_minutes_per_month=6_000),
}


class Settings(BaseSettings):
    """Service configuration. Defaults give a self-contained single machine under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="PIIBLUR_", extra="ignore")

    data_dir: Path = Path("piiblur-data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    storage_url: str | None = Field(
        default=None, description="file:///path or s3://bucket/prefix; default data_dir/media"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO...); default AWS")
    s3_region: str | None = None
    s3_access_key_id: str | None = Field(default=None, description="default: boto3's own credential chain")
    s3_secret_access_key: str | None = None
    s3_presigned_downloads: bool = Field(
        default=False, description="Answer downloads with a redirect to a presigned URL instead of streaming"
    )
    s3_presign_seconds: int = Field(default=300, ge=1, le=604_800)
    database_pool_size: int = Field(default=10, ge=1, description="Connections kept per process (not SQLite)")
    database_max_overflow: int = Field(default=20, ge=0)

    broker_url: str | None = Field(
        default=None, description="Celery broker (redis://, amqp://); set: the API only enqueues, workers run apart"
    )
    ratelimit_storage_url: str | None = Field(
        default=None, description="limits storage shared by API processes (redis://...); default in memory"
    )
    job_lease_seconds: float = Field(
        default=120.0, gt=0, description="A processing job whose worker has not reported for this long is retaken"
    )
    job_max_attempts: int = Field(default=3, ge=1, description="Attempts before a job that kills its worker fails")
    job_visibility_timeout_seconds: int = Field(
        default=6 * 3600, ge=60, description="Broker visibility timeout: longer than the longest job"
    )
    worker_soft_shutdown_seconds: float = Field(
        default=30.0, ge=0, description="On stop, time a worker gives its job to finish before handing it back"
    )
    video_segment_seconds: float = Field(
        default=20.0,
        ge=0,
        description="In a fleet, videos over twice this are split across workers; 0: never",
    )
    worker_max_memory_mib: int = Field(default=6144, ge=256, description="A worker child above this is replaced")
    # prometheus_client's own variable (it reads it too): where processes of one host keep their
    # metric values, so that a scrape of any of them adds up all of them.
    prometheus_multiproc_dir: Path | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    public_base_url: str | None = Field(default=None, description="Base for download_url; default: the request's")

    host: str = "127.0.0.1"
    port: int = 8000
    # Slow clients (api/slow_clients.py): an unfinished request must not hold a connection for ever.
    request_header_timeout_seconds: float = Field(default=10.0, gt=0, description="Longest a request's headers take")
    request_body_idle_seconds: float = Field(
        default=30.0, gt=0, description="Longest pause while a request body arrives (a lying Content-Length)"
    )
    min_upload_bytes_per_second: int = Field(
        default=1024, ge=0, description="Slowest average body rate, checked once the body has taken the idle time"
    )

    workers: int = Field(default=1, ge=0, description="In-process worker threads; 0 runs the API alone")
    worker_poll_seconds: float = 2.0

    max_upload_bytes: int = GIB
    max_video_seconds: float = 600.0
    max_image_pixels: int = Field(default=100_000_000, ge=1, description="Larger pictures are refused at upload")
    plan_limits: dict[Plan, PlanLimits] = Field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))

    log_format: LogFormat = Field(default="text", description="text (key=value) or json (one object a line)")
    log_level: str = "INFO"

    inference_threads: int = Field(default=0, ge=0, description="onnxruntime intra-op threads; 0 = all cores")
    execution_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="onnxruntime execution providers to try before the CPU, comma-separated, e.g. "
        "CUDAExecutionProvider or TensorrtExecutionProvider,CUDAExecutionProvider (needs onnxruntime-gpu)",
    )

    secret_key: str | None = Field(
        default=None, description="Encrypts webhook secrets at rest; default: a key generated once in data_dir"
    )
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhook URLs on loopback/private/link-local addresses (tests, intranets)"
    )
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        description="Seconds before each retry (jitter added); about a day in all by default",
    )
    webhook_timeout_seconds: float = 10.0
    webhook_poll_seconds: float = 1.0

    video_hwaccel: str | None = Field(
        default=None, description="FFmpeg device to decode videos on (cuda, qsv, vaapi...); software if unset"
    )
    video_h264_encoder: str = Field(
        default="libx264", description="H.264 encoder for mp4 and mov output (h264_nvenc, h264_qsv...)"
    )
    video_partial_looks: bool = Field(
        default=True,
        description=(
            "between full looks, look at a video keyframe only around tracked objects and where it changed "
            "(faster on still cameras); false: every keyframe is looked at whole"
        ),
    )

    @field_validator("execution_providers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Resolved once, when settings load: every part of a process (and every message) then
        means the same folder, whatever directory a thread or a subprocess works in later."""
        return value.expanduser().resolve()

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    def has_state(self) -> bool:
        """Whether this configuration points at an existing installation (its database file, for
        the embedded default; an external database is assumed to exist)."""
        return not self.uses_embedded_database or (self.data_dir / "piiblur.db").exists()

    def with_data_dir(self, data_dir: Path | None) -> Settings:
        """These settings with another state folder (``--data-dir``), validated like the variable."""
        if data_dir is None:
            return self
        return self.model_copy(update={"data_dir": self._absolute(data_dir)})

    def scratch_dir(self) -> Path:
        """Where uploads are spooled and jobs keep their working files: inside the state folder
        (personal data never lands in the system's temporary folder), created on first use."""
        folder = self.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'piiblur.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "media").resolve().as_uri()

    @property
    def request_sessions(self) -> int:
        """Requests that hold a database session at once: the connections of the pool minus those
        the background threads need (workers and their heartbeats, webhook sender, housekeeper)."""
        background = 2 * self.workers + 4
        return max(4, self.database_pool_size + self.database_max_overflow - background)

    @property
    def base_url(self) -> str:
        """Where this service is reached, for links in webhooks sent outside any request."""
        return self.public_base_url or f"http://{self.host}:{self.port}"

    def limits_for(self, plan: Plan) -> PlanLimits:
        return self.plan_limits.get(plan, DEFAULT_PLAN_LIMITS[plan])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
