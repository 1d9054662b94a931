"""Engine settings that make no sense, or make the engine misbehave silently, are refused: by the
dataclass itself (a ValueError naming the field) and through a config file, as `voiceflow diarize
--config` and the pod's VOICEFLOW_ENGINE_CONFIG read it (a ConfigError naming the setting)."""

import json
from pathlib import Path
from typing import Any

import pytest

from voiceflow.clustering.constrained import ConstrainedOnlineConfig
from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.clustering.online import OnlineClusteringConfig
from voiceflow.clustering.spectral import NMESCConfig
from voiceflow.clustering.vbx import VBxConfig
from voiceflow.config import ConfigError, load_engine_config
from voiceflow.pauses import PauseRules
from voiceflow.pipeline import DiarizationConfig
from voiceflow.segmentation.local_embeddings import LocalEmbeddingConfig
from voiceflow.segmentation.offline import SegmentationPipelineConfig
from voiceflow.streaming import StreamingConfig
from voiceflow.vad import VADConfig

NAN, INF = float("nan"), float("inf")

# (the dataclass, where it sits in an engine config file, the setting, a value it must refuse)
CASES: list[tuple[type, tuple[str, ...], str, Any]] = [
    (DiarizationConfig, ("offline",), "min_turn_seconds", -0.1),
    (DiarizationConfig, ("offline",), "min_turn_seconds", NAN),
    (DiarizationConfig, ("offline",), "min_turn_seconds", INF),
    (DiarizationConfig, ("offline",), "window_seconds", 0.4),
    (DiarizationConfig, ("offline",), "window_seconds", NAN),
    (DiarizationConfig, ("offline",), "step_seconds", 0.01),  # under the offline grid's 0.05 s
    (DiarizationConfig, ("offline",), "step_seconds", 2.0),  # longer than the 1.6 s window
    (DiarizationConfig, ("offline",), "min_window_speech", 1.01),
    (StreamingConfig, ("streaming",), "window_seconds", 11.0),
    (StreamingConfig, ("streaming",), "window_seconds", INF),
    (StreamingConfig, ("streaming",), "step_seconds", 0.02),  # under one 32 ms VAD frame
    (StreamingConfig, ("streaming",), "step_seconds", NAN),
    (StreamingConfig, ("streaming",), "min_window_speech", 1.5),  # above 1 no window is ever embedded
    (StreamingConfig, ("streaming",), "min_window_speech", -0.1),
    (StreamingConfig, ("streaming",), "min_window_speech", NAN),
    (PauseRules, ("streaming", "pauses"), "own_pause_seconds", -1.0),
    (PauseRules, ("offline", "pauses"), "own_pause_seconds", INF),
    (PauseRules, ("offline", "pauses"), "speaker_change_reach_seconds", NAN),
    (PauseRules, ("streaming", "pauses"), "speaker_change_reach_seconds", 11.0),
    (VADConfig, ("offline", "vad"), "neg_threshold", 0.0),
    (VADConfig, ("streaming", "vad"), "neg_threshold", 0.6),  # above the 0.4 threshold
    (VADConfig, ("offline", "vad"), "neg_threshold", NAN),
    (VADConfig, ("offline", "vad"), "min_speech_seconds", NAN),
    (VADConfig, ("streaming", "vad"), "min_speech_seconds", 1e6),
    (VADConfig, ("offline", "vad"), "min_silence_seconds", INF),
    (VADConfig, ("segmentation", "offline", "vad"), "speech_pad_seconds", 1e6),
    (VADConfig, ("offline", "vad"), "speech_pad_seconds", NAN),
    (OfflineClusteringConfig, ("offline", "clustering"), "reassign_iterations", -1),
    (OfflineClusteringConfig, ("offline", "clustering"), "min_cluster_fraction", 1.0),
    (OfflineClusteringConfig, ("offline", "clustering"), "min_cluster_fraction", -0.1),
    (OfflineClusteringConfig, ("segmentation", "offline", "clustering"), "min_cluster_fraction", NAN),
    (OfflineClusteringConfig, ("offline", "clustering"), "merge_threshold", -1.0),
    (OfflineClusteringConfig, ("offline", "clustering"), "merge_threshold", NAN),
    (NMESCConfig, ("offline", "clustering", "nmesc"), "seed", -1),
    (VBxConfig, ("offline", "clustering", "vbx"), "fa", NAN),
    (VBxConfig, ("offline", "clustering", "vbx"), "fa", INF),
    (VBxConfig, ("offline", "clustering", "ahc_vbx"), "fb", NAN),
    (VBxConfig, ("offline", "clustering", "vbx"), "init_smoothing", 0.0),
    (VBxConfig, ("offline", "clustering", "vbx"), "init_smoothing", -7.0),
    (VBxConfig, ("offline", "clustering", "vbx"), "epsilon", -1e-4),
    (VBxConfig, ("offline", "clustering", "vbx"), "epsilon", NAN),
    (VBxConfig, ("offline", "clustering", "ahc_vbx"), "min_prior", 1.0),
    (VBxConfig, ("offline", "clustering", "ahc_vbx"), "min_prior", -0.1),
    (VBxConfig, ("offline", "clustering", "vbx"), "calibration_offset", NAN),
    (VBxConfig, ("offline", "clustering", "vbx"), "calibration_offset", INF),
    (VBxConfig, ("offline", "clustering", "vbx"), "min_evidence_windows", 700),  # above the 600 cap
    (OnlineClusteringConfig, ("streaming", "clustering"), "candidate_agreement", 1.0),
    (OnlineClusteringConfig, ("streaming", "clustering"), "candidate_agreement", NAN),
    (OnlineClusteringConfig, ("streaming", "clustering"), "centroid_momentum", 1.5),
    (OnlineClusteringConfig, ("streaming", "clustering"), "centroid_momentum", -0.1),
    (OnlineClusteringConfig, ("streaming", "clustering"), "plda_threshold", NAN),
    (OnlineClusteringConfig, ("streaming", "clustering"), "plda_threshold", -INF),
    (ConstrainedOnlineConfig, ("segmentation", "streaming", "clustering"), "new_speaker_seconds", NAN),
    (ConstrainedOnlineConfig, ("segmentation", "streaming", "clustering"), "new_speaker_seconds", INF),
    (ConstrainedOnlineConfig, ("segmentation", "streaming", "clustering"), "update_seconds", NAN),
    (ConstrainedOnlineConfig, ("segmentation", "streaming", "clustering"), "update_seconds", -1.0),
    (SegmentationPipelineConfig, ("segmentation", "offline"), "min_on_seconds", NAN),
    (SegmentationPipelineConfig, ("segmentation", "offline"), "min_off_seconds", INF),
    (LocalEmbeddingConfig, ("segmentation", "offline", "local"), "min_speech_seconds", NAN),
    (LocalEmbeddingConfig, ("segmentation", "streaming", "local"), "min_speech_seconds", INF),
]


@pytest.mark.parametrize(
    ("cls", "where", "key", "value"), CASES, ids=lambda v: str(v) if not isinstance(v, tuple) else ".".join(v)
)
def test_config_refuses_nonsense(cls: type, where: tuple[str, ...], key: str, value: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=key):
        cls(**{key: value})
    data: dict[str, Any] = {key: value}
    for group in reversed(where):
        data = {group: data}
    path = tmp_path / "engine.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=key):
        load_engine_config(str(path), "embedding")


def test_the_bounds_keep_the_values_in_use() -> None:
    """Defaults, the edges of each range and the values research scripts and tests set still pass."""
    VADConfig(
        threshold=0.4, neg_threshold=0.4, min_speech_seconds=0.0, min_silence_seconds=0.6, speech_pad_seconds=10.0
    )
    VADConfig(neg_threshold=0.01)
    DiarizationConfig(min_turn_seconds=0.0)
    DiarizationConfig(window_seconds=0.5, step_seconds=0.05, min_window_speech=1.0)
    DiarizationConfig(window_seconds=10.0, step_seconds=10.0, min_window_speech=0.0)
    StreamingConfig(window_seconds=1.6, step_seconds=0.032, min_window_speech=1.0)
    StreamingConfig(window_seconds=3.2, step_seconds=3.2)
    OfflineClusteringConfig(reassign_iterations=0, min_cluster_fraction=0.0, merge_threshold=None)
    OfflineClusteringConfig(merge_threshold=0.94)
    OfflineClusteringConfig(merge_threshold=1.2)  # above 1: nothing merges, as None
    VBxConfig(min_evidence_windows=600, max_evidence_windows=600, min_prior=0.0, epsilon=0.0, calibration_offset=-2.0)
    VBxConfig(min_evidence_windows=None, max_evidence_windows=1500, fb=40.0)
    OnlineClusteringConfig(candidate_agreement=-1.0, centroid_momentum=1.0, plda_threshold=-3.0)
    OnlineClusteringConfig(candidate_agreement=0.6)
    ConstrainedOnlineConfig(new_speaker_seconds=0.0, update_seconds=0.0)
    SegmentationPipelineConfig(min_on_seconds=0.0, min_off_seconds=0.1)
    LocalEmbeddingConfig(min_speech_seconds=0.1)
