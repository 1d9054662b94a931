"""Settings, auth, metrics names and the batcher: small pure pieces of the pod."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import jwt
import numpy as np
import pytest

from inference_pod.auth import AuthError, ConnectionLimiter, extract_token, token_identity, verify_token
from inference_pod.batching import BatchingEmbedder
from inference_pod.metrics import METRIC_NAMES, Metrics
from inference_pod.settings import Settings

KEY = "test-signing-key-that-is-long-enough-for-hs256"


def test_settings_from_env_and_overrides() -> None:
    env = {
        "VOICEFLOW_PORT": "3100",
        "VOICEFLOW_MAX_FRAME_BYTES": "1000",
        "VOICEFLOW_IDLE_TIMEOUT_SECONDS": "1.5",
        "VOICEFLOW_JWT_ALGORITHMS": "HS256, HS512",
    }
    s = Settings.from_env(env, workers=2)
    assert (s.port, s.max_frame_bytes, s.idle_timeout_seconds, s.workers) == (3100, 1000, 1.5, 2)
    assert s.jwt_algorithms == ("HS256", "HS512")
    assert Settings.from_env({}).port == 3000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOICEFLOW_PORT": "x"}, r"VOICEFLOW_PORT: .*valid integer.*\(got 'x'\)"),
        ({"VOICEFLOW_MAX_CONNECTIONS": "0"}, r"VOICEFLOW_MAX_CONNECTIONS: .*greater than 0"),
        ({"VOICEFLOW_PORT": "70000"}, r"VOICEFLOW_PORT: .*less than 65536"),
        ({"VOICEFLOW_STEP_SECONDS": "nan"}, r"VOICEFLOW_STEP_SECONDS: .*greater than 0"),
        ({"VOICEFLOW_PROCESSES": "-1"}, r"VOICEFLOW_PROCESSES: .*greater than or equal to 0"),
        ({"VOICEFLOW_WORKERS": "x" * 10_000}, r"VOICEFLOW_WORKERS: .*\(got 'x{70,}\.\.\.\)$"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_an_empty_variable_is_unset_and_a_bad_override_is_named_as_a_setting() -> None:
    assert Settings.from_env({"VOICEFLOW_PORT": "", "VOICEFLOW_MODEL_PATH": ""}) == Settings()
    with pytest.raises(ValueError, match=r"^setting workers: .*greater than 0 \(got 0\)$"):
        Settings.from_env({"VOICEFLOW_WORKERS": "3"}, workers=0)
    with pytest.raises(ValueError, match="max_connections"):
        Settings(max_connections=0)  # built directly, too: a Settings is valid or does not exist


def test_jwt_key_file(tmp_path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    assert Settings(jwt_key_file=str(tmp_path / "key")).resolved_jwt_key() == KEY


def test_token_extraction() -> None:
    assert extract_token({"authorization": "Bearer abc"}, {}) == "abc"
    assert extract_token({"authorization": "Basic abc"}, {"token": "q"}) == "q"
    assert extract_token({}, {}) is None


def test_token_verification() -> None:
    good = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60, "typ": "access"}, KEY, algorithm="HS256")
    claims = verify_token(good, KEY, ["HS256"])
    assert token_identity(claims, good) == "sub:alice"
    expired = jwt.encode({"sub": "a", "exp": int(time.time()) - 10}, KEY, algorithm="HS256")
    refresh = jwt.encode({"sub": "a", "typ": "refresh", "exp": int(time.time()) + 60}, KEY, algorithm="HS256")
    wrong_key = jwt.encode({"sub": "a"}, KEY + "x", algorithm="HS256")
    none_alg = jwt.encode({"sub": "a"}, None, algorithm="none")
    for token, needle in [
        (expired, "expired"),
        (refresh, "refresh"),
        (wrong_key, "invalid"),
        (none_alg, "invalid"),
        ("garbage", "invalid"),
        (None, "required"),
    ]:
        with pytest.raises(AuthError, match=needle):
            verify_token(token, KEY, ["HS256"])


def test_connection_limiter() -> None:
    lim = ConnectionLimiter(2)
    assert lim.acquire("a") and lim.acquire("a") and not lim.acquire("a")
    assert lim.acquire("b")
    lim.release("a")
    assert lim.acquire("a")


def test_metric_names_are_exported() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    m = Metrics()
    m.set_model("v1", "abc")
    m.latency.labels(endpoint="stream").observe(0.01)
    text = m.exposition()[0].decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:
        # the parser reports counters without their `_total` suffix
        assert name.removesuffix("_total") in families, name
    for required in (
        "inference_latency_seconds",
        "inference_requests_total",
        "inference_errors_total",
        "websocket_connections_active",
    ):
        assert required in METRIC_NAMES


class CountingModel:
    rows_independent = True

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def embed(self, windows: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append(windows.shape[0])
        time.sleep(0.02)  # long enough for other threads' requests to queue behind this call
        return np.repeat(windows[:, :1], 4, axis=1) * np.arange(1, 5, dtype=np.float32)


def test_batcher_merges_concurrent_calls_and_routes_results_back() -> None:
    model = CountingModel()
    batcher = BatchingEmbedder(max_windows=64)
    batcher.start()
    embed = batcher.embed_fn(model)
    results: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        results[i] = embed(np.full((2, 8), float(i), dtype=np.float32))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    batcher.stop()
    for i in range(12):
        np.testing.assert_allclose(results[i], np.full((2, 4), float(i)) * np.arange(1, 5))
    assert sum(model.calls) == 24
    assert len(model.calls) < 12  # some calls were batched together


def test_a_model_whose_rows_depend_on_the_batch_is_never_batched_across_streams() -> None:
    # INT8 (dynamic quantization) scales activations by the whole batch: each stream calls it alone
    model = CountingModel()
    model.rows_independent = False
    batcher = BatchingEmbedder(max_windows=64)
    batcher.start()
    embed = batcher.embed_fn(model)
    threads = [threading.Thread(target=embed, args=(np.full((2, 8), float(i), dtype=np.float32),)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    batcher.stop()
    assert model.calls == [2] * 6  # one call per caller, none merged


def test_a_direct_call_counts_its_cpu_under_the_batchers_stage_not_the_callers() -> None:
    from inference_pod.batching import attributed_cpu

    class Busy:
        rows_independent = False

        def embed(self, windows: np.ndarray) -> np.ndarray:
            deadline = time.thread_time() + 0.02
            while time.thread_time() < deadline:  # CPU, not sleep: the thread's own time
                pass
            return windows[:, :4]

    counted: list[float] = []
    batcher = BatchingEmbedder(on_cpu=counted.append)
    batcher.start()
    before = attributed_cpu()
    batcher.embed_fn(Busy())(np.zeros((1, 8), np.float32))
    batcher.stop()
    assert len(counted) == 1 and counted[0] >= 0.02
    assert attributed_cpu() - before == pytest.approx(counted[0])  # the caller's own account leaves it out


def test_batcher_propagates_model_errors() -> None:
    class Broken:
        rows_independent = True

        def embed(self, windows: np.ndarray) -> np.ndarray:
            raise RuntimeError("boom")

    batcher = BatchingEmbedder()
    batcher.start()
    with pytest.raises(RuntimeError, match="boom"):
        batcher.embed_fn(Broken())(np.zeros((1, 4), np.float32))
    batcher.stop()


class PerChunkSegmentation:
    """Stands in for SegmentationModel: normalises each chunk on its own (as the network does, so
    padding a short chunk into a longer batch would change its output) and records every batch."""

    frame = 4

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []  # (rows, samples) per call
        self.lock = threading.Lock()

    def activity(self, chunks: np.ndarray) -> SimpleNamespace:
        with self.lock:
            self.batches.append(chunks.shape)
        time.sleep(0.02)  # other streams' chunks queue behind this call
        z = (chunks - chunks.mean(axis=1, keepdims=True)) / (chunks.std(axis=1, keepdims=True) + 1e-6)
        frames = z[:, : z.shape[1] // self.frame * self.frame].reshape(z.shape[0], -1, self.frame).mean(axis=2)
        hard = np.stack([frames > 0.5, frames < -0.5, np.abs(frames) < 0.1], axis=-1).astype(np.uint8)
        return SimpleNamespace(hard=hard, soft=hard.astype(np.float32))


def test_segmentation_batches_never_mix_chunk_lengths_and_return_each_caller_its_rows() -> None:
    model = PerChunkSegmentation()
    seen: list[int] = []
    batcher = BatchingEmbedder(max_windows=64, on_batch=seen.append)
    batcher.start()
    rng = np.random.default_rng(0)
    # 16 "streams" past their first 5 s (full chunks, 40 samples) and 8 still in it (shorter chunks of
    # two lengths), each with its own offset and scale so per-chunk normalisation matters.
    lengths = [40] * 16 + [24] * 4 + [12] * 4
    chunks = [(rng.standard_normal(n) * (1 + i) + i).astype(np.float32) for i, n in enumerate(lengths)]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(chunks))

    def stream(i: int) -> None:
        segment = batcher.segment_fn(model)  # one callable per stream, as the pod hands out
        start.wait(timeout=10)
        for _ in range(3):
            results[i] = segment(chunks[i][None, :])

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(chunks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    batcher.stop()
    for i, chunk in enumerate(chunks):
        alone = model.activity(chunk[None, :]).hard
        assert results[i].shape == (1, len(chunk) // model.frame, 3)
        np.testing.assert_array_equal(results[i], alone)  # its own rows, exactly as unbatched
    batched_calls = model.batches[: len(seen)]
    assert sum(rows for rows, _ in batched_calls) == 3 * len(chunks) == sum(seen)
    assert max(rows for rows, _ in batched_calls) > 1  # streams did share network calls
    # every call held chunks of one length (a [rows, samples] array cannot hold two)
    assert {samples for _, samples in batched_calls} <= {40, 24, 12}


def test_group_requests_keys_on_owner_call_and_shape() -> None:
    from inference_pod.batching import _Request, group_requests

    a, b = object(), object()

    def f(x: np.ndarray) -> np.ndarray:
        return x

    reqs = [
        _Request(a, "segment", f, np.zeros((1, 8), np.float32)),
        _Request(a, "segment", f, np.zeros((1, 6), np.float32)),  # shorter first chunk: own group
        _Request(a, "segment", f, np.zeros((2, 8), np.float32)),
        _Request(b, "segment", f, np.zeros((1, 8), np.float32)),  # another model object (hot reload)
        _Request(a, "embed", f, np.zeros((1, 8), np.float32)),  # another call of the same owner
    ]
    groups = group_requests(reqs)
    assert [[reqs.index(r) for r in g] for g in groups] == [[0, 2], [1], [3], [4]]


def test_overload_signal_decays_once_load_is_gone() -> None:
    from inference_pod.pod import Pod

    pod = Pod(Settings(max_queue_delay_seconds=1.0))
    try:
        assert not pod.overloaded()
        for _ in range(30):
            pod.observe_queue_delay(5.0)
        assert pod.overloaded()
        pod._delay_at -= 60.0  # a minute with no engine work at all
        assert not pod.overloaded()
    finally:
        pod.executor.shutdown()


def test_docs_list_every_setting_and_metric() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for name in Settings.model_fields:
        assert f"`VOICEFLOW_{name.upper()}`" in doc, name
    for name in METRIC_NAMES:
        assert name in doc, name


def test_model_fingerprint_sees_a_configmap_style_symlink_swap(tmp_path) -> None:
    """Kubernetes updates a mounted ConfigMap/volume by re-pointing `..data`; the file path stays."""
    import os

    from inference_pod.model_manager import fingerprint, resolve_model_file

    mount = tmp_path / "mount"
    mount.mkdir()
    for version in ("v1", "v2"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "model.onnx").write_bytes(version.encode() * 10)
    os.symlink(tmp_path / "v1", mount / "..data")
    os.symlink("..data/model.onnx", mount / "model.onnx")
    assert resolve_model_file(str(mount)) == mount / "model.onnx"
    before = fingerprint(str(mount))
    assert fingerprint(str(mount)) == before  # stable while nothing changes
    os.symlink(tmp_path / "v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")  # the atomic swap kubelet does
    assert fingerprint(str(mount)) != before
