"""The clustering method is chosen by config, and a method that needs a PLDA says so at start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.clustering.plda_train import train_plda
from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.clustering.plda import PLDAError, plda_path, save_plda
from voiceflow.config import ConfigError, parse_engine_config
from voiceflow.embedding import MODELS_DIR, EmbeddingModel
from voiceflow.pipeline import DiarizationConfig, Diarizer

SAMPLE = Path(__file__).resolve().parents[2] / "voiceflow" / "samples" / "conversation.wav"


def test_engine_config_selects_the_method_and_its_settings() -> None:
    config = parse_engine_config(
        {
            "offline": {
                "clustering": {"algorithm": "vbx", "vbx": {"fb": 10, "loop_p": 0.9}, "nmesc": {"max_p_fraction": 0.2}}
            }
        }
    )
    assert config.offline.clustering.algorithm == "vbx"
    assert config.offline.clustering.vbx.fb == 10.0 and config.offline.clustering.vbx.loop_p == 0.9
    assert config.offline.clustering.nmesc.max_p_fraction == 0.2
    with pytest.raises(ConfigError, match="algorithm"):
        parse_engine_config({"offline": {"clustering": {"algorithm": "k-means"}}})
    with pytest.raises(ConfigError, match="loop_p"):
        parse_engine_config({"offline": {"clustering": {"vbx": {"loop_p": 1.5}}}})


@pytest.fixture()
def bare_model(tmp_path: Path) -> EmbeddingModel:
    """GE2E copied alone into an empty folder: no PLDA beside it."""
    shutil.copy(MODELS_DIR / "ge2e.onnx", tmp_path / "m.onnx")
    shutil.copy(MODELS_DIR / "ge2e.json", tmp_path / "m.json")
    return EmbeddingModel.load(tmp_path / "m.onnx")


def test_a_plda_method_without_the_models_plda_is_a_clear_error(bare_model: EmbeddingModel) -> None:
    for method in ("vbx", "ahc-vbx"):
        config = DiarizationConfig().with_overrides(clustering=OfflineClusteringConfig(algorithm=method))
        with pytest.raises(PLDAError, match=r"m\.onnx's PLDA.*not found"):
            Diarizer(config, embedding_model=bare_model)
    Diarizer(DiarizationConfig(), embedding_model=bare_model)  # "ahc" needs none


def test_a_plda_for_another_embedding_size_is_refused(bare_model: EmbeddingModel) -> None:
    rng = np.random.default_rng(0)
    save_plda(plda_path(bare_model.path), train_plda(rng.standard_normal((60, 16)), np.repeat(np.arange(6), 10), 4))
    config = DiarizationConfig().with_overrides(clustering=OfflineClusteringConfig(algorithm="vbx"))
    with pytest.raises(PLDAError, match="16-d embeddings"):
        Diarizer(config, embedding_model=bare_model)


def test_a_plda_method_diarizes_with_the_models_plda(bare_model: EmbeddingModel) -> None:
    rng = np.random.default_rng(1)
    dim = bare_model.dimension
    save_plda(plda_path(bare_model.path), train_plda(rng.standard_normal((400, dim)), np.repeat(np.arange(40), 10), 16))
    config = DiarizationConfig().with_overrides(clustering=OfflineClusteringConfig(algorithm="ahc-vbx"))
    diarizer = Diarizer(config, embedding_model=bare_model)
    assert diarizer.plda is not None and diarizer.plda.input_dim == dim
    segments = diarizer.diarize_file(SAMPLE)
    assert segments and all(s.end > s.start for s in segments)
    assert len({s.speaker for s in diarizer.diarize_file(SAMPLE, num_speakers=2)}) == 2


def test_streaming_plda_scoring_loads_the_models_plda(bare_model: EmbeddingModel) -> None:
    from voiceflow.clustering.online import OnlineClusteringConfig
    from voiceflow.streaming import StreamingConfig, StreamingSession

    config = StreamingConfig(clustering=OnlineClusteringConfig(scoring="plda"))
    with pytest.raises(PLDAError, match="not found"):
        StreamingSession.for_model(bare_model, config=config)
    rng = np.random.default_rng(2)
    dim = bare_model.dimension
    save_plda(plda_path(bare_model.path), train_plda(rng.standard_normal((400, dim)), np.repeat(np.arange(40), 10), 16))
    session = StreamingSession.for_model(bare_model, config=config)
    assert session.clusterer.plda is not None and session.clusterer.centred == (bare_model.background_mean is not None)


def test_auto_runs_vbx_with_a_plda_and_ahc_without(bare_model: EmbeddingModel) -> None:
    from voiceflow.clustering.offline import resolve_algorithm

    auto = DiarizationConfig().with_overrides(clustering=OfflineClusteringConfig(algorithm="auto"))
    assert Diarizer(auto, embedding_model=bare_model).plda is None  # no PLDA: today's AHC runs
    assert resolve_algorithm("auto", False) == "ahc" and resolve_algorithm("auto", True) == "vbx"
    assert resolve_algorithm("nme-sc", True) == "nme-sc"
    path = plda_path(bare_model.path)
    path.write_bytes(b"not a PLDA")
    with pytest.raises(PLDAError, match="unreadable"):  # a PLDA that is there but broken is never skipped
        Diarizer(auto, embedding_model=bare_model)
    rng = np.random.default_rng(3)
    dim = bare_model.dimension
    save_plda(path, train_plda(rng.standard_normal((400, dim)), np.repeat(np.arange(40), 10), 16))
    assert Diarizer(auto, embedding_model=bare_model).plda is not None
