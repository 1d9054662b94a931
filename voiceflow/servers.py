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
# Loopback unless told otherwise: a server reachable from the network is a decision, not a default.
DEFAULT_HOST = "127.0.0.1"

_TOKEN_IN_URL = re.compile(r"([?&](?:access_)?token=)[^&\s\"']+", re.IGNORECASE)


def uvicorn_options(trusted_proxies: str = "") -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` / `uvicorn.run` that both servers share.

    `trusted_proxies`: comma-separated addresses/networks whose X-Forwarded-For is believed. Empty (the
    default): none is, so the client address is the peer's. uvicorn's own default believes any
    127.0.0.1 peer, so anything on the host could claim to be any client and dodge per-client limits.
    """
    from voiceflow.header_timeout import HeaderTimeoutProtocol  # uvicorn: imported only by a server

    proxies = trusted_proxies.strip()
    return {
        "http": HeaderTimeoutProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": 64 * 1024,
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


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (0.0.0.0 and "" are every interface: False)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
