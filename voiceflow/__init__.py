"""VoiceFlow core engine: audio in, "who spoke when" out. No torch, no web framework.

The Python API (`voiceflow.diarize`, `voiceflow.StreamingDiarizer`; docs/python_api.md) is
imported on first use, so `import voiceflow` stays cheap (no numpy, no ONNX runtime).
"""

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceflow.api import DiarizationResult, StreamingDiarizer, diarize

__version__ = "0.1.0"
SAMPLE_RATE = 16000
# Every streaming session steps every this many samples of its own stream, counted from the
# stream's start (0.5 s, as a live client sends), whatever the chunks it is fed: the CLI's
# --streaming, the dev suite and the pod get the same updates and result for the same audio.
STREAM_FEED_SAMPLES = 8000
# A 3-speaker conversation with its reference (samples/README.md): `diarize --sample`, `up --demo`.
SAMPLE_CONVERSATION = Path(__file__).resolve().parent / "samples" / "conversation.wav"
__all__ = [
    "SAMPLE_CONVERSATION",
    "SAMPLE_RATE",
    "STREAM_FEED_SAMPLES",
    "DiarizationResult",
    "StreamingDiarizer",
    "__version__",
    "diarize",
]
_API = ("diarize", "DiarizationResult", "StreamingDiarizer")


def __getattr__(name: str) -> object:
    if name in _API:
        from voiceflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'voiceflow' has no attribute {name!r}")
