"""The diarization pipelines the engine runs, each registered once with what it is made of.

The CLI's choices, the inference pod's setting, the operator's `spec.serving.pipeline` and the
CRD's enum (tests/test_contracts.py) all come from here. No numpy: the operator imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    # What finds speech and who talks: the VAD then window embeddings, or the segmentation network
    # (local speakers, one embedding each).
    frontend: Literal["vad", "segmentation"]
    # The embedding pipeline's optional overlap detector (the segmentation network retrained to
    # count speakers): where it hears two, a second speaker.
    overlap_detector: bool
    summary: str

    @property
    def network_frontend(self) -> bool:
        """Whether the segmentation network, not the VAD, finds speech and speakers."""
        return self.frontend == "segmentation"

    @property
    def uses_segmentation_model(self) -> bool:
        """Whether the pipeline loads a segmentation network (the network itself or the detector)."""
        return self.network_frontend or self.overlap_detector


REGISTRY: tuple[PipelineSpec, ...] = (
    PipelineSpec("embedding", "vad", False, "VAD + window embeddings (one speaker at a time)"),
    PipelineSpec(
        "segmentation", "segmentation", False, "our segmentation network + local-speaker embeddings (overlap-aware)"
    ),
    PipelineSpec("embedding-overlap", "vad", True, "embedding plus the network retrained as an overlap detector"),
)
PIPELINES: tuple[str, ...] = tuple(spec.name for spec in REGISTRY)
# The pipeline that won the dev-set gate (docs/segmentation.md has the table it was chosen by).
DEFAULT_PIPELINE = "embedding"


def pipeline_spec(name: str) -> PipelineSpec:
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, not {name!r}")


def uses_segmentation_model(pipeline: str) -> bool:
    return pipeline_spec(pipeline).uses_segmentation_model


def describe_pipelines() -> str:
    """One line naming every pipeline with what it is (the CLI's help)."""
    return "; ".join(f"{spec.name}: {spec.summary}" for spec in REGISTRY)
