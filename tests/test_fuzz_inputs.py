"""Fuzz targets over every parser a hostile client reaches (issue 26), run in the suite on a fixed budget.

Each target states the contract of its parser: for any input it returns a well-formed value or raises its
one documented error type (ProtocolError, AudioError, UploadRejected) - never another exception, never
NaN, never a sample outside [-1, 1], never a path outside its root. Hypothesis with a fixed example count
and derandomized draws: the same inputs every run (no flakes), a few seconds in all. Widen the budget
locally with VOICEFLOW_FUZZ_EXAMPLES=5000.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_api import edge, uploads
from inference_pod import protocol
from inference_pod.protocol import ProtocolError
from voiceflow.audio import AudioError, decode_audio_bytes, pcm_bytes_to_float, probe_audio_bytes

BUDGET = int(os.environ.get("VOICEFLOW_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=BUDGET,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
DECODE = settings(FUZZ, max_examples=max(BUDGET // 3, 10))  # each example runs libsndfile


def _file(fmt: str, rate: int, channels: int, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (rate // 10, channels)).astype(np.float32)
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


# Valid files to mutate: fuzzing headers and frames of real containers reaches far deeper into the
# decoder than random bytes, which fail at the magic number.
SEEDS = [
    _file("WAV", 16000, 1, "PCM_16"),
    _file("WAV", 44100, 2, "FLOAT"),
    _file("WAV", 8000, 1, "DOUBLE"),
    _file("FLAC", 16000, 1),
    _file("FLAC", 48000, 2),
    _file("OGG", 16000, 1, "VORBIS"),
]


@st.composite
def mutated_audio(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        where = draw(st.integers(0, min(len(data) - 1, 200)))  # headers live at the start
        data[where] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # truncated uploads
    return bytes(data)


def _check_samples(samples: np.ndarray, peak: float = 1.0) -> None:
    assert samples.dtype == np.float32
    assert np.isfinite(samples).all()
    assert samples.size == 0 or float(np.abs(samples).max()) <= peak


# --- the WebSocket protocol ----------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "audio_chunk", "end", "nope", 3])},
    optional={
        "data": st.lists(st.floats() | st.integers() | st.text(max_size=3) | st.booleans(), max_size=50),
        "sequence": JSON_VALUES,
        "sample_rate": JSON_VALUES,
        "encoding": JSON_VALUES,
        "protocol_version": JSON_VALUES,
    },
)


@FUZZ
@given(st.one_of(st.text(max_size=300), MESSAGES.map(json.dumps), JSON_VALUES.map(json.dumps)))
def test_websocket_text_messages_parse_or_raise_protocol_error(text: str) -> None:
    try:
        message = protocol.parse_text_message(text)
    except ProtocolError as exc:
        assert exc.close_code >= 1000 and "\n" not in exc.message
        return
    if isinstance(message, protocol.AudioChunk):
        _check_samples(message.samples)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["sample_rate", "encoding", "protocol_version", "x"]),
        # Digits str.isdigit() accepts but int() refuses ("²", 5000 of them) crashed the handshake once.
        st.text(max_size=12) | st.sampled_from(["16000", " 1 ", "²", "١٦٠٠٠", "9" * 5000, "pcm_f32le"]),
    )
)
def test_query_configs_parse_or_raise_protocol_error(query: dict[str, str]) -> None:
    with contextlib.suppress(ProtocolError):
        protocol.config_from_query(query)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["pcm_s16le", "pcm_f32le"]))
def test_pcm_frames_decode_to_clean_samples_or_raise(data: bytes, encoding: str) -> None:
    for decode, error in ((protocol.decode_pcm, ProtocolError), (pcm_bytes_to_float, AudioError)):
        try:
            samples = decode(data, encoding)
        except error:
            continue
        _check_samples(samples)
        assert samples.size == len(data) // (2 if encoding == "pcm_s16le" else 4)


# --- audio files ---------------------------------------------------------------------------------------------


@DECODE
@given(st.one_of(mutated_audio(), st.binary(max_size=512)))
def test_audio_files_decode_to_clean_samples_or_raise_audio_error(data: bytes) -> None:
    try:
        samples = decode_audio_bytes(data, max_seconds=5.0)
    except AudioError as exc:
        assert "object at 0x" not in str(exc) and "\n" not in str(exc)
        return
    # Samples are clipped to [-1, 1] before resampling; the resampler's ringing may overshoot a little.
    _check_samples(samples, peak=1.5)
    assert samples.size <= 5.0 * 16000 + 1


@DECODE
@given(mutated_audio())
def test_probing_an_upload_agrees_with_decoding_it(data: bytes) -> None:
    try:
        seconds = probe_audio_bytes(data, max_seconds=5.0)
    except AudioError:
        with pytest.raises(AudioError):
            decode_audio_bytes(data, max_seconds=5.0)
        return
    assert 0 < seconds <= 5.0


# --- uploads and the edge of the Control API ------------------------------------------------------------------


@DECODE
@given(st.one_of(mutated_audio(), st.binary(max_size=256)), st.text(max_size=40) | st.none())
def test_uploads_are_staged_or_rejected_with_a_status(data: bytes, filename: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        try:
            staged = uploads.stage_upload(
                io.BytesIO(data),
                filename,
                staging,
                0,
                max_bytes=1 << 20,
                max_seconds=5.0,
                validate=lambda raw: probe_audio_bytes(raw, max_seconds=5.0),
            )
        except uploads.UploadRejected as exc:
            assert exc.status_code in (413, 415, 422) and "object at 0x" not in exc.message
            return
        assert staged.path.parent == staging and 0 < staged.duration_s <= 5.0
        assert "/" not in staged.filename and not staged.filename.startswith(".")


@FUZZ
@given(st.text(max_size=60))
def test_references_never_leave_their_root(reference: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "refs"
        root.mkdir()
        (root / "a.wav").write_bytes(b"RIFF")
        try:
            path = uploads.resolve_reference(reference, str(root))
        except uploads.UploadRejected as exc:
            assert exc.status_code == 422
            return
        assert path.resolve().is_relative_to(root.resolve())


@FUZZ
@given(
    st.text(max_size=40),
    st.binary(max_size=60),
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=60)), max_size=4),
)
def test_the_edge_answers_every_request_head(path: str, query: bytes, method: str, headers: list) -> None:
    policy = edge.EdgePolicy(upload_body_bytes=1 << 20, jwt_secret="s" * 40, jwt_algorithm="HS256")
    scope = {"type": "http", "method": method, "path": "/" + path, "query_string": query, "headers": headers}
    refusal = edge.check_request(scope, policy)
    if "\x00" in path:
        assert refusal is not None and refusal.status == 400
    if refusal is not None:
        assert refusal.status in (400, 401, 403, 413)
