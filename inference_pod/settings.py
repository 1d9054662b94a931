"""Pod settings, read once from the environment (`VOICEFLOW_*`) so Helm can set every limit.

One frozen pydantic-settings model with defaults that suit a small CPU pod; `Settings.from_env()` is the
only place that reads `os.environ` (voiceflow_edge.settings), so everything else takes a `Settings` and
stays testable. Every limit is checked when a `Settings` is built: a bad value fails at start-up, naming
its variable, rather than at the first stream.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, PositiveFloat, PositiveInt, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import SettingsConfigDict

from voiceflow.config import ConfigError, EngineConfig, load_engine_config
from voiceflow.registry import DEFAULT_PIPELINE, PIPELINES
from voiceflow_edge.servers import DEFAULT_HOST
from voiceflow_edge.settings import CommaSeparated, EnvSettings


class Settings(EnvSettings):
    # Positive limits: zero or less would make the pod misbehave (refuse everything, never time out).
    # The pod treats an empty variable as unset (Helm renders optional values as "").
    model_config = SettingsConfigDict(env_ignore_empty=True)

    host: str = DEFAULT_HOST  # loopback; containers set VOICEFLOW_HOST=0.0.0.0 on purpose
    port: int = Field(default=3000, gt=0, lt=65536)
    # Model file (.onnx) or mounted directory holding one; None = the engine's bundled default.
    model_path: str | None = None
    # How often the model file is polled for changes (a ConfigMap/volume swap shows as a new mtime/inode).
    reload_poll_seconds: PositiveFloat = 2.0
    # Which diarization pipeline serves streams and /infer: "embedding" (VAD + window embeddings,
    # one speaker at a time) or "segmentation" (overlap-aware: two speakers' segments may overlap).
    pipeline: str = DEFAULT_PIPELINE
    # The segmentation model (.onnx) or a mounted directory holding one, used by the segmentation
    # pipeline only; None = the engine's bundled default. Hot-reloaded like the embedding model.
    segmentation_model_path: str | None = None
    # The engine's settings for streams and /infer (VAD, clustering, streaming.embedding_hops, ...):
    # a YAML or JSON file as `voiceflow diarize --config` reads it, e.g. a mounted ConfigMap; None =
    # the engine's defaults. Read and validated at start-up (a bad file stops the pod, naming the
    # setting); the pipeline stays VOICEFLOW_PIPELINE's, and a file naming one is refused.
    engine_config: str | None = None
    _engine: EngineConfig = PrivateAttr()

    # Limits.
    max_connections: PositiveInt = 1200
    max_connections_per_token: PositiveInt = 50
    max_frame_bytes: PositiveInt = 256 * 1024  # one binary frame
    # One JSON text message. The seed's clients send float samples as text (~17 bytes each, 25 at
    # worst), so 1 MiB holds 2 s of 16 kHz audio even at worst (800 KB) and ~3.8 s typically.
    max_text_frame_bytes: PositiveInt = 1024 * 1024
    max_session_seconds: PositiveFloat = 4 * 3600.0  # audio seconds per stream
    idle_timeout_seconds: PositiveFloat = 30.0  # no message at all for this long -> error + close
    max_infer_bytes: PositiveInt = 50 * 1024 * 1024  # POST /infer body
    # Audio may arrive up to this many times faster than real time, after an initial burst allowance;
    # past that the client is told `too_fast` (a paced client never gets near it).
    max_realtime_factor: PositiveFloat = 4.0
    realtime_burst_seconds: float = 10.0

    # Processing.
    step_seconds: PositiveFloat = 0.5  # binary audio is processed (and answered) in steps of this many seconds
    # Backpressure: once this much of a stream's audio waits unprocessed, the server stops reading
    # its socket (TCP pushes back on the sender) until the worker catches up.
    max_session_queue_seconds: PositiveFloat = 2.0
    # Load shedding: audio that waited longer than this before processing means the pod is behind:
    # the newest stream is shed (`overloaded`, close 1013), and any stream whose audio waited 3x
    # this is shed too, instead of ever-growing latency for everybody.
    max_queue_delay_seconds: PositiveFloat = 1.0
    # Global bound on feed jobs waiting for a worker; past it new streams are refused and the
    # most-behind streams shed, so latency stays bounded instead of growing for everybody.
    max_pending_jobs: PositiveInt = 512
    # Engine threads for live streams, per worker process. The INT8 embedding runs on the stream's
    # own thread (never batched across streams), so more threads buy no fuller batches; each thread
    # does keep its own malloc arena and onnxruntime buffers after a burst. 4 against 16, alternated
    # (benchmarks/loadgen.py, docs/deploy.md): the same P99 and CPU at 64 and 128 streams, ~22 MB
    # less at 128, and 1000 idle connections after a 256-stream overload in 280 MB instead of 325.
    # A float model (batched across streams) measured the same with 4 as with 16: its batches held
    # 1.0-1.4 windows either way.
    workers: PositiveInt = 4
    # POST /infer runs on threads of its own, so whole-file requests never take the streams' workers
    # (two 40-minute requests once held the shared pool for 27 s and every live stream was shed).
    infer_workers: PositiveInt = 1
    # /infer requests admitted at once (running or waiting for an infer worker); more get 503.
    max_infer_requests: PositiveInt = 4
    batch_max_windows: PositiveInt = 64  # cross-session embedding batch size
    # 0 = opportunistic: a batch is whatever queued while the previous one ran (no added latency).
    batch_wait_ms: float = 0.0
    # Worker processes behind the one port (SO_REUSEPORT), each a whole pod with its own model:
    # the GIL serialises a process's Python work (protocol, clustering), so only processes use
    # every core. 0 = one per CPU the pod may use (its cgroup quota, else its affinity); set by
    # `voiceflow serve --workers N`. The global limits are split across them (inference_pod/workers.py).
    processes: int = Field(default=0, ge=0)

    # Auth: when set, /ws/stream and /infer need a JWT signed with this key (the control API's).
    jwt_key: str | None = Field(default=None, repr=False)
    jwt_key_file: str | None = None  # a mounted Secret; read at start-up when jwt_key is unset
    jwt_algorithms: CommaSeparated = ("HS256",)  # VOICEFLOW_JWT_ALGORITHMS=HS256,HS512
    jwt_audience: str | None = None

    shutdown_grace_seconds: float = 20.0
    log_level: str = "info"

    @field_validator("pipeline")
    @classmethod
    def _known_pipeline(cls, pipeline: str) -> str:
        if pipeline not in PIPELINES:
            raise ValueError(f"must be one of {', '.join(PIPELINES)}")
        return pipeline

    @model_validator(mode="after")
    def _read_engine_config(self) -> Self:
        # Read once, here: the version of the file that was validated is the one the pod serves with
        # (runs only once every field is valid, so a bad pipeline's own error is the one to read).
        path, pipeline = self.engine_config, self.pipeline
        try:
            self._engine = EngineConfig(pipeline=pipeline) if path is None else load_engine_config(path, pipeline)
        except ConfigError as exc:  # reported as the setting's own error, so it names the variable
            error = PydanticCustomError("value_error", "{error}", {"error": str(exc)})
            details = InitErrorDetails(type=error, loc=("engine_config",), input=path)
            raise ValidationError.from_exception_data(type(self).__name__, [details]) from None
        return self

    def replace(self, **changes: Any) -> Self:
        """As `EnvSettings.replace`, but while the file and the pipeline stay the same the engine's
        settings already read are kept, not read again: the workers serve the version the supervisor
        validated."""
        if changes.keys() & {"engine_config", "pipeline"}:
            return super().replace(**changes)
        copy = super().replace(**changes, engine_config=None)  # every other change validated
        copy = copy.model_copy(update={"engine_config": self.engine_config})
        copy._engine = self._engine
        return copy

    @property
    def engine(self) -> EngineConfig:
        """The engine's settings for streams and /infer: VOICEFLOW_ENGINE_CONFIG's file with the pod's
        pipeline, or the defaults."""
        return self._engine

    def resolved_jwt_key(self) -> str | None:
        if self.jwt_key:
            return self.jwt_key
        if self.jwt_key_file:
            with open(self.jwt_key_file, encoding="utf-8") as fh:
                return fh.read().strip() or None
        return None

    def announced_limits(self) -> dict[str, float]:
        """The limits a client must keep, sent in `ready` so it can pace and size its frames to them."""
        return {
            "max_realtime_factor": self.max_realtime_factor,
            "realtime_burst_seconds": self.realtime_burst_seconds,
            "max_frame_bytes": self.max_frame_bytes,
            "max_text_frame_bytes": self.max_text_frame_bytes,
            "max_session_seconds": self.max_session_seconds,
            "idle_timeout_seconds": self.idle_timeout_seconds,
        }
