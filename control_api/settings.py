"""Runtime settings of the Control API, read once from the environment (`VOICEFLOW_*`).

Every field has a plain default that makes `voiceflow api` work embedded on a laptop (SQLite file,
in-process rate limits, local storage); `Settings.from_env()` alone reads the environment
(voiceflow_edge.settings), and tests build one directly.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field

from voiceflow_edge.settings import EnvSettings

DEFAULT_STATE_DIR = Path(os.path.expanduser("~")) / ".voiceflow" / "control_api"

# `{python}` is the interpreter running the API, so the templates work inside any virtualenv.
# The pipelines' commands (docs/pipelines.md): `train` writes checkpoint.pt/model.pt into --out,
# `export` writes the ONNX file and its .json metadata.
DEFAULT_TRAIN_COMMAND = "{python} -m voiceflow_cli.main train --config {config} --out {output_dir} --no-progress"
DEFAULT_EXPORT_COMMAND = "{python} -m voiceflow_cli.main export {checkpoint} --out {output}"


class Settings(EnvSettings):
    database_url: str = ""  # empty: SQLite file under state_dir
    redis_url: str = ""  # empty: in-process rate limits
    redis_prefix: str = "voiceflow:"
    state_dir: Path = DEFAULT_STATE_DIR
    jwt_secret: str = Field(default="", repr=False)  # empty: generated once, kept in state_dir
    jwt_algorithm: str = "HS256"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 7 * 24 * 3600
    admin_username: str = "admin"
    admin_password: str = Field(default="", repr=False)  # empty: admin_password_file, else no admin
    # With admin_password empty: the admin's password is read from this file, generated (0600) on first
    # start when missing, as the JWT secret is (deploy/compose.yaml ships no password).
    admin_password_file: str = ""
    rate_limit: int = 100
    # Comma-separated proxy addresses/networks whose X-Forwarded-For names the client (rate limits, login
    # throttling and audit use the client address). Empty: no proxy is trusted.
    trusted_proxies: str = ""
    rate_limit_window_s: int = 60
    max_upload_bytes: int = 100 * 1024 * 1024
    max_audio_seconds: float = 30 * 60
    max_files_per_job: int = 64
    # Comma-separated folders an embedded training config's paths (data.data_root, cache_dir) must lie in.
    # Empty: /data, the trainer's default data folder and state_dir (control_api.train_paths).
    train_roots: str = ""
    reference_root: str = ""  # empty: batch jobs by server-side reference are refused
    # Batch worker threads started inside the API process; 0 leaves the work to `voiceflow api worker`.
    embedded_workers: int = 1
    # A running file's or training run's lease. Its worker renews it every lease_s / 3 (a heartbeat, 5 s)
    # while alive, so a long job is never taken over; after a crash or SIGKILL the work is claimed again
    # within lease_s (15 s), instead of waiting out a long fixed lease.
    lease_s: float = 15.0
    poll_interval_s: float = 0.5
    diarize_fn: str = "control_api.engine:engine_diarize"
    registry_mode: str = "auto"  # auto | embedded | kubernetes
    k8s_namespace: str = "default"
    train_command: str = DEFAULT_TRAIN_COMMAND
    export_command: str = DEFAULT_EXPORT_COMMAND
    # Run after a successful export when set, e.g. "{python} -m voiceflow_cli.main evaluate --model {model}
    # --data ... --gate --json-out {json_out}": a non-zero exit (a refused gate) fails the model, and the
    # numbers of the report's "model" section become its metrics (DER, speed).
    evaluate_command: str = ""
    command_timeout_s: float = 6 * 3600
    # Embedded `activate` publishes the model here as model.onnx; `voiceflow serve --model <dir>` watches
    # it and hot-reloads. Empty: <state_dir>/active.
    active_model_dir: str = ""
    db_schema: str = ""  # PostgreSQL schema to use (tests isolate themselves with one each)

    @property
    def storage_dir(self) -> Path:
        return Path(self.state_dir) / "storage"

    @property
    def effective_active_model_dir(self) -> Path:
        return Path(self.active_model_dir) if self.active_model_dir else Path(self.state_dir) / "active"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.state_dir) / 'control_api.db'}"

    def resolved_jwt_secret(self) -> str:
        """The signing key; generated and persisted on first use so every process of one install agrees."""
        if self.jwt_secret:
            return self.jwt_secret
        return generated_secret(Path(self.state_dir) / "jwt_secret", 48)

    def resolved_admin_password(self) -> str:
        """The first admin's password: the setting, else the file (generated when missing), else ""."""
        if self.admin_password or not self.admin_password_file:
            return self.admin_password
        return generated_secret(Path(self.admin_password_file), 18)


def generated_secret(path: Path, nbytes: int) -> str:
    """The secret kept in `path`, created (random, mode 600) by whichever process gets there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside then hard-linked: when two processes start together exactly one secret wins
        # and nobody ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
