"""What every VoiceFlow HTTP server runs with (the inference pod and the Control API): header and idle
timeouts, header size caps, loopback by default, and access logs without tokens.

Light to import (CLI argument defaults read it); uvicorn is imported only when a server is built.

uvicorn starts no timer until a response is sent: a client that connects and never finishes its request
line and headers holds a file descriptor forever (1000 half-sent requests held 1000 of the pod's). Here a
connection must finish each request's headers within HEADER_TIMEOUT_S of starting it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

# A client gets this long to send a request's line and headers, from connecting (or from the first byte
# of a later request on a kept-alive connection); then the connection is closed.
HEADER_TIMEOUT_S = 10.0
# An idle kept-alive connection is closed after this long (uvicorn's own timer, between requests).
KEEP_ALIVE_S = 5
# A request's line and headers may hold at most this many bytes (then 400 and close).
MAX_HEADER_BYTES = 64 * 1024
# A request body that stops arriving for this long is abandoned (408): a trickling upload must not hold
# a connection, a worker and a half-written staging file forever.
BODY_IDLE_S = 60.0
# Loopback unless told otherwise: a server reachable from the network is a decision, not a default.
DEFAULT_HOST = "127.0.0.1"

# Reachable from the network, a server refuses to start with a signing key or password it could be
# guessed or forged with: shorter than these, or one that was ever shipped as a default.
MIN_SECRET_CHARS = 32
MIN_PASSWORD_CHARS = 12
KNOWN_SECRETS = frozenset(
    {
        "dev-only-change-me-0123456789abcdef",  # deploy/compose.yaml's JWT secret until issue 26
        "admin-dev-password",  # and its admin password
        "password",
        "changeme",
        "change-me",
        "secret",
        "admin",
        "voiceflow",
    }
)

_TOKEN_IN_URL = re.compile(r"([?&](?:access_)?token=)[^&\s\"']+", re.IGNORECASE)


def uvicorn_options(trusted_proxies: str = "") -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` / `uvicorn.run` that both servers share.

    `trusted_proxies`: comma-separated addresses/networks whose X-Forwarded-For is believed. Empty (the
    default): none is, so the client address is the peer's. uvicorn's own default believes any
    127.0.0.1 peer, so anything on the host could claim to be any client and dodge per-client limits.
    """
    from voiceflow_edge.header_timeout import HeaderTimeoutProtocol  # uvicorn: imported only by a server

    proxies = trusted_proxies.strip()
    return {
        "http": HeaderTimeoutProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }


def redact_tokens(text: str) -> str:
    """`?token=<jwt>` (the browser's way to authenticate a WebSocket) with the token replaced."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


class RedactTokensFilter(logging.Filter):
    """Drops tokens from uvicorn's access and WebSocket handshake lines (their path includes the query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def install_log_redaction() -> None:
    """Add the filter to uvicorn's loggers (after uvicorn configured logging: it replaces them)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())


def exposure_problems(host: str, secrets: dict[str, str | None], passwords: dict[str, str | None]) -> list[str]:
    """Why a server on `host` must not start with these signing keys and passwords ([] when it may).

    On loopback anything goes (a laptop, a test); elsewhere a key shorter than MIN_SECRET_CHARS or a
    password shorter than MIN_PASSWORD_CHARS, or any known default, is refused. Empty values are not
    checked here (unset means generated, or auth off, which callers warn about).
    """
    if is_loopback(host):
        return []
    problems = []
    for kinds, minimum in ((secrets, MIN_SECRET_CHARS), (passwords, MIN_PASSWORD_CHARS)):
        for name, value in kinds.items():
            if not value:
                continue
            if value in KNOWN_SECRETS or value.lower() in KNOWN_SECRETS:
                problems.append(f"{name} is a well-known default")
            elif len(value) < minimum:
                problems.append(f"{name} is shorter than {minimum} characters")
    return problems


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (0.0.0.0 and "" are every interface: False)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
