"""uvicorn's httptools protocol with a deadline and a size cap on each request's head (see voiceflow_edge.servers)."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from voiceflow_edge.servers import HEADER_TIMEOUT_S, MAX_HEADER_BYTES


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head, and a cap on its size
    (uvicorn bounds headers only with h11; httptools would buffer them until the deadline)."""

    _header_deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after parsing: a read that completes the head (and may carry body bytes) disarms the
        # deadline and is not counted; only reads that leave the head unfinished add up.
        if self._header_deadline is not None and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._disarm_header_deadline()
                self.send_400_response("Request head too large.")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
