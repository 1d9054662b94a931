"""Protocol v1 parsing and validation: pure functions, hostile inputs included."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inference_pod import protocol
from inference_pod.protocol import (
    AudioChunk,
    End,
    ErrorCode,
    ProtocolError,
    Start,
    StreamConfig,
    config_from_query,
    decode_pcm,
    exceeds_realtime,
    parse_text_message,
)
from voiceflow.segments import Segment


def code_of(fn, *args):
    with pytest.raises(ProtocolError) as info:
        fn(*args)
    return info.value.code


def test_start_message_parses_with_all_fields() -> None:
    msg = parse_text_message(
        json.dumps({"type": "start", "sample_rate": 48000, "encoding": "pcm_f32le", "protocol_version": 1})
    )
    assert msg == Start(StreamConfig(48000, "pcm_f32le", 1))


def test_start_defaults_and_unknown_fields_are_ignored() -> None:
    msg = parse_text_message('{"type":"start","client":"x"}')
    assert msg == Start(StreamConfig(16000, "pcm_s16le", 1))


def test_audio_chunk_and_end() -> None:
    msg = parse_text_message('{"type":"audio_chunk","data":[0, 0.5, -1.5],"sequence":7}')
    assert isinstance(msg, AudioChunk)
    assert msg.sequence == 7
    assert msg.samples.dtype == np.float32
    np.testing.assert_allclose(msg.samples, [0, 0.5, -1.0])  # clipped into [-1, 1]
    assert isinstance(parse_text_message('{"type":"end"}'), End)
    assert parse_text_message('{"type":"audio_chunk","data":[]}').samples.size == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", ErrorCode.MALFORMED_JSON),
        ("", ErrorCode.MALFORMED_JSON),
        ("[" * 100000 + "]" * 100000, ErrorCode.MALFORMED_JSON),  # recursion bomb
        ("[1,2]", ErrorCode.INVALID_MESSAGE),
        ('"start"', ErrorCode.INVALID_MESSAGE),
        ('{"sample_rate":16000}', ErrorCode.INVALID_MESSAGE),
        ('{"type":5}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"hello"}', ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ('{"type":"start","sample_rate":"fast"}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","sample_rate":true}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","sample_rate":16000.5}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","sample_rate":1}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","sample_rate":10000000}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","sample_rate":-16000}', ErrorCode.INVALID_SAMPLE_RATE),
        ('{"type":"start","encoding":"mp3"}', ErrorCode.UNSUPPORTED_ENCODING),
        ('{"type":"start","encoding":["pcm_s16le"]}', ErrorCode.UNSUPPORTED_ENCODING),
        ('{"type":"start","protocol_version":2}', ErrorCode.UNSUPPORTED_PROTOCOL_VERSION),
        ('{"type":"audio_chunk","data":"0.1,0.2"}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":{"0":1}}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":["0.1"]}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[0.1,[0.2]]}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[true]}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[null]}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[NaN]}', ErrorCode.INVALID_AUDIO),
        ('{"type":"audio_chunk","data":[Infinity]}', ErrorCode.INVALID_AUDIO),
        ('{"type":"audio_chunk","data":[1e400]}', ErrorCode.INVALID_AUDIO),
        ('{"type":"audio_chunk","data":[' + "9" * 400 + "]}", ErrorCode.INVALID_AUDIO),
        ('{"type":"audio_chunk","data":[0.1],"sequence":-1}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[0.1],"sequence":"3"}', ErrorCode.INVALID_MESSAGE),
        ('{"type":"audio_chunk","data":[0.1],"sequence":1.5}', ErrorCode.INVALID_MESSAGE),
    ],
)
def test_hostile_text_messages_get_a_precise_error(text: str, code: ErrorCode) -> None:
    assert code_of(parse_text_message, text) == code


def test_every_error_code_has_a_close_code() -> None:
    for code in ErrorCode:
        assert protocol.CLOSE_CODES[code] in {1003, 1007, 1008, 1009, 1011, 1012, 1013}
    assert ProtocolError(ErrorCode.FRAME_TOO_LARGE, "x").close_code == 1009
    assert ProtocolError(ErrorCode.MALFORMED_JSON, "x").close_code == 1007
    assert ProtocolError(ErrorCode.UNKNOWN_MESSAGE_TYPE, "x").close_code == 1003
    assert ProtocolError(ErrorCode.TOO_FAST, "x").close_code == 1008
    assert ProtocolError(ErrorCode.INTERNAL_ERROR, "x").close_code == 1011


def test_query_parameters_configure_the_stream() -> None:
    assert config_from_query({"sample_rate": "44100", "encoding": "pcm_f32le"}) == StreamConfig(44100, "pcm_f32le")
    assert config_from_query({}) == StreamConfig()
    assert code_of(config_from_query, {"sample_rate": "abc"}) == ErrorCode.INVALID_SAMPLE_RATE
    assert code_of(config_from_query, {"protocol_version": "9"}) == ErrorCode.UNSUPPORTED_PROTOCOL_VERSION


def test_decode_pcm_s16le_and_f32le() -> None:
    s16 = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes()
    np.testing.assert_allclose(decode_pcm(s16, "pcm_s16le"), [0, 0.5, -1.0, 32767 / 32768])
    f32 = np.array([0.25, -0.5, 3.0], dtype="<f4").tobytes()
    np.testing.assert_allclose(decode_pcm(f32, "pcm_f32le"), [0.25, -0.5, 1.0])
    assert decode_pcm(b"", "pcm_f32le").size == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_decode_pcm_rejects_non_finite_floats(bad: float) -> None:
    data = np.array([0.1, bad], dtype="<f4").tobytes()
    assert code_of(decode_pcm, data, "pcm_f32le") == ErrorCode.INVALID_AUDIO


def test_decode_pcm_rejects_partial_samples() -> None:
    assert code_of(decode_pcm, b"\x00\x01\x02", "pcm_s16le") == ErrorCode.INVALID_AUDIO
    assert code_of(decode_pcm, b"\x00\x01\x02\x03\x04", "pcm_f32le") == ErrorCode.INVALID_AUDIO


def test_frame_size_check() -> None:
    protocol.check_frame_size(100, 100)
    assert code_of(protocol.check_frame_size, 101, 100) == ErrorCode.FRAME_TOO_LARGE


def test_realtime_bound() -> None:
    # 10 s burst allowance, then up to 2x wall time.
    assert not exceeds_realtime(10.0, 0.0, 2.0, 10.0)
    assert exceeds_realtime(10.1, 0.0, 2.0, 10.0)
    assert not exceeds_realtime(30.0, 10.0, 2.0, 10.0)
    assert exceeds_realtime(31.0, 10.0, 2.0, 10.0)
    assert not exceeds_realtime(5.0, -3.0, 2.0, 10.0)  # clock oddities never count against the client


def test_messages_are_json_serialisable() -> None:
    # numpy scalars, as the engine's arithmetic may leave them in a segment
    seg = Segment(np.float32(0.5), 1.25, "SPEAKER_00", np.bool_(True))  # type: ignore[arg-type]
    for msg in (
        protocol.result_message(3, [seg], 12.34567),
        protocol.final_message([seg]),
        protocol.ready_message("abc", "ge2e-1", StreamConfig()),
        protocol.error_message(ErrorCode.TOO_FAST, "slow down"),
    ):
        assert json.loads(json.dumps(msg))["type"] in {"result", "final", "ready", "error"}
    assert protocol.result_message(3, [seg], 12.34567)["segments"][0] == {
        "start": 0.5,
        "end": 1.25,
        "speaker": "SPEAKER_00",
        "final": True,
    }
