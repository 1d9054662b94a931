"""Protocol v1 of `WS /ws/stream`: parsing and validation as pure functions, plus message builders.

Nothing here touches a socket: the server shell calls these and turns a `ProtocolError` into an
`error` message and the matching close code. Every check a hostile client could trip lives here so
it is unit-tested without a server (see docs/protocol.md for the wire format).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from voiceflow.segments import Segment

PROTOCOL_VERSION = 1
ENGINE_SAMPLE_RATE = 16000
# Bytes per sample of each accepted raw PCM encoding.
ENCODINGS: dict[str, int] = {"pcm_s16le": 2, "pcm_f32le": 4}
DEFAULT_ENCODING = "pcm_s16le"
# Outside this range a "sample rate" is a bug or an attack (resampling from 1 Hz or 10 MHz is absurd).
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000


class ErrorCode(StrEnum):
    """Machine-readable `code` of an `error` message; each maps to one WebSocket close code."""

    MALFORMED_JSON = "malformed_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    UNSUPPORTED_PROTOCOL_VERSION = "unsupported_protocol_version"
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    INVALID_SAMPLE_RATE = "invalid_sample_rate"
    INVALID_AUDIO = "invalid_audio"
    UNEXPECTED_MESSAGE = "unexpected_message"
    FRAME_TOO_LARGE = "frame_too_large"
    TOO_FAST = "too_fast"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_TOO_LONG = "session_too_long"
    OVERLOADED = "overloaded"
    INTERNAL_ERROR = "internal_error"
    # Refusals before the handshake completes (sent as an HTTP response body, not a close code).
    UNAUTHORIZED = "unauthorized"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    SHUTTING_DOWN = "shutting_down"


# RFC 6455 close codes: 1003 unsupported data, 1007 invalid payload, 1008 policy violation,
# 1009 message too big, 1011 internal error, 1012 service restart, 1013 try again later.
CLOSE_CODES: dict[ErrorCode, int] = {
    ErrorCode.MALFORMED_JSON: 1007,
    ErrorCode.INVALID_MESSAGE: 1007,
    ErrorCode.UNKNOWN_MESSAGE_TYPE: 1003,
    ErrorCode.UNSUPPORTED_PROTOCOL_VERSION: 1003,
    ErrorCode.UNSUPPORTED_ENCODING: 1003,
    ErrorCode.INVALID_SAMPLE_RATE: 1007,
    ErrorCode.INVALID_AUDIO: 1007,
    ErrorCode.UNEXPECTED_MESSAGE: 1008,
    ErrorCode.FRAME_TOO_LARGE: 1009,
    ErrorCode.TOO_FAST: 1008,
    ErrorCode.IDLE_TIMEOUT: 1008,
    ErrorCode.SESSION_TOO_LONG: 1008,
    ErrorCode.OVERLOADED: 1013,
    ErrorCode.INTERNAL_ERROR: 1011,
    ErrorCode.UNAUTHORIZED: 1008,
    ErrorCode.TOO_MANY_CONNECTIONS: 1013,
    ErrorCode.SHUTTING_DOWN: 1012,
}
CLOSE_NORMAL = 1000
CLOSE_SERVICE_RESTART = 1012


class ProtocolError(Exception):
    """A client mistake: reported as an `error` message, then the stream is closed with `close_code`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.code]


@dataclass(frozen=True)
class StreamConfig:
    sample_rate: int = ENGINE_SAMPLE_RATE
    encoding: str = DEFAULT_ENCODING
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Start:
    config: StreamConfig


@dataclass(frozen=True)
class AudioChunk:
    """The seed product's JSON audio: float samples at the stream's rate, one reply per chunk."""

    samples: np.ndarray
    sequence: int | None


@dataclass(frozen=True)
class End:
    pass


ClientMessage = Start | AudioChunk | End


def _is_int(value: Any) -> bool:
    # bool is an int subclass in Python; `true` is not a sample rate.
    return isinstance(value, int) and not isinstance(value, bool)


def decimal_int(text: str, max_digits: int = 18) -> int | None:
    """`text` as an int when it is plain ASCII digits, else None.

    Not `str.isdigit()` alone: "²" passes it and then int() raises, and 5000 digits make int() raise
    too (Python's conversion limit); either was a 500 from a query parameter.
    """
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit() and len(stripped) <= max_digits:
        return int(stripped)
    return None


def validate_sample_rate(value: Any) -> int:
    if isinstance(value, str) and decimal_int(value) is not None:
        value = decimal_int(value)
    if not _is_int(value):
        raise ProtocolError(ErrorCode.INVALID_SAMPLE_RATE, f"sample_rate must be an integer, got {value!r}")
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise ProtocolError(
            ErrorCode.INVALID_SAMPLE_RATE,
            f"sample_rate {value} outside the supported {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
        )
    return int(value)


def validate_encoding(value: Any) -> str:
    if not isinstance(value, str) or value not in ENCODINGS:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_ENCODING, f"encoding must be one of {sorted(ENCODINGS)}, got {value!r}"
        )
    return value


def validate_protocol_version(value: Any) -> int:
    if isinstance(value, str) and decimal_int(value) is not None:
        value = decimal_int(value)
    if not _is_int(value) or value != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
            f"protocol_version {value!r} is not supported (this server speaks {PROTOCOL_VERSION})",
        )
    return int(value)


def config_from_fields(fields: Mapping[str, Any], base: StreamConfig | None = None) -> StreamConfig:
    """Stream configuration from a start message or query parameters; absent fields keep `base`."""
    base = base or StreamConfig()
    sample_rate = base.sample_rate
    encoding = base.encoding
    version = base.protocol_version
    if fields.get("sample_rate") is not None:
        sample_rate = validate_sample_rate(fields["sample_rate"])
    if fields.get("encoding") is not None:
        encoding = validate_encoding(fields["encoding"])
    if fields.get("protocol_version") is not None:
        version = validate_protocol_version(fields["protocol_version"])
    return StreamConfig(sample_rate=sample_rate, encoding=encoding, protocol_version=version)


def config_from_query(query: Mapping[str, str]) -> StreamConfig:
    """Query parameters (`?sample_rate=48000&encoding=pcm_f32le`) say the same as a start message."""
    return config_from_fields({k: query.get(k) for k in ("sample_rate", "encoding", "protocol_version")})


def check_frame_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ProtocolError(ErrorCode.FRAME_TOO_LARGE, f"message of {size} bytes exceeds the {max_bytes} limit")


def finite_float32(samples: np.ndarray) -> np.ndarray:
    """Reject NaN/inf (they would poison the model's state); clip the rest into [-1, 1].

    Checked and clipped in the input's precision, then cast: a float64 1e308 is a finite sample to clip,
    where casting first would make it inf and refuse it.
    """
    samples = np.asarray(samples)
    if samples.size and not np.isfinite(samples).all():
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio contains NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def decode_pcm(data: bytes, encoding: str) -> np.ndarray:
    """Raw little-endian PCM bytes -> float32 samples in [-1, 1], validated."""
    width = ENCODINGS[encoding]
    if len(data) % width:
        raise ProtocolError(
            ErrorCode.INVALID_AUDIO,
            f"binary frame of {len(data)} bytes is not a whole number of {width}-byte {encoding} samples",
        )
    if encoding == "pcm_s16le":
        # int16 cannot be NaN; scale by 32768 so -32768 maps to exactly -1.
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    return finite_float32(np.frombuffer(data, dtype="<f4").copy())


def parse_text_message(text: str) -> ClientMessage:
    """One text frame -> a typed client message, or ProtocolError naming exactly what is wrong."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: deeply nested arrays ([[[[...) are a cheap way to crash a naive parser.
        raise ProtocolError(ErrorCode.MALFORMED_JSON, f"text message is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a text message must be a JSON object with a 'type'")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message has no string 'type' field")
    if kind == "start":
        return Start(config_from_fields(obj))
    if kind == "audio_chunk":
        return AudioChunk(samples=parse_float_array(obj.get("data")), sequence=parse_sequence(obj))
    if kind == "end":
        return End()
    raise ProtocolError(
        ErrorCode.UNKNOWN_MESSAGE_TYPE,
        f"unknown message type {kind[:40]!r} (expected start, audio_chunk, end)",
    )


def parse_sequence(obj: Mapping[str, Any]) -> int | None:
    seq = obj.get("sequence")
    if seq is None:
        return None
    if not _is_int(seq) or seq < 0 or seq > 2**53:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"sequence must be a non-negative integer, got {seq!r}")
    return int(seq)


def parse_float_array(data: Any) -> np.ndarray:
    """`data` of an audio_chunk: a flat list of JSON numbers (no strings, bools, nesting or NaN)."""
    if not isinstance(data, list):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "audio_chunk 'data' must be an array of numbers")
    if not data:
        return np.zeros(0, dtype=np.float32)
    # numpy would happily turn "0.5" or True into numbers; wrong types are the client's bug, say so.
    if not all(type(x) is float or type(x) is int for x in data):
        bad = next(x for x in data if type(x) is not float and type(x) is not int)
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            f"audio_chunk 'data' must hold only numbers, found {type(bad).__name__}",
        )
    try:
        arr = np.asarray(data, dtype=np.float64)
    except OverflowError:  # ints beyond float range
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio_chunk 'data' holds out-of-range numbers") from None
    if not np.isfinite(arr).all():
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio contains NaN or infinite samples")
    return finite_float32(arr)


def exceeds_realtime(received_seconds: float, elapsed_seconds: float, factor: float, burst_seconds: float) -> bool:
    """True when a client has sent more audio than `burst + factor * wall time` allows.

    A real-time client stays near factor 1; the burst absorbs connection start-up and network jitter.
    """
    return received_seconds > burst_seconds + factor * max(0.0, elapsed_seconds)


# --- server -> client messages -------------------------------------------------------------------


def segment_dict(segment: Segment) -> dict[str, Any]:
    return {
        "start": float(segment.start),
        "end": float(segment.end),
        "speaker": str(segment.speaker),
        "final": bool(segment.final),
    }


def ready_message(
    session_id: str, model_version: str, config: StreamConfig, limits: Mapping[str, float] | None = None
) -> dict[str, Any]:
    message = {
        "type": "ready",
        "session_id": session_id,
        "model_version": model_version,
        "protocol_version": config.protocol_version,
        "sample_rate": config.sample_rate,
        "encoding": config.encoding,
    }
    if limits is not None:
        message["limits"] = dict(limits)
    return message


def result_message(sequence: int, segments: Iterable[Segment], latency_ms: float) -> dict[str, Any]:
    return {
        "type": "result",
        "sequence": sequence,
        "segments": [segment_dict(s) for s in segments],
        "latency_ms": round(float(latency_ms), 3),
    }


def final_message(segments: Iterable[Segment], reason: str = "end") -> dict[str, Any]:
    return {"type": "final", "segments": [segment_dict(s) for s in segments], "reason": reason}


def error_message(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code.value, "message": message}
