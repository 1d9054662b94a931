"""Everything a request handler needs, built once per app (and replaceable in tests)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_api.backends import RegistryBackend
from control_api.engine import AudioValidator, DiarizeFn
from control_api.login_guard import LoginGuard
from control_api.ratelimit import RateLimiter
from control_api.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    backend: RegistryBackend
    diarize: DiarizeFn
    validate_audio: AudioValidator
    jwt_secret: str
    login_guard: LoginGuard
    redis_client: object | None = None
