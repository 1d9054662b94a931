"""VoiceFlow core engine: audio in, "who spoke when" out. No torch, no web framework.

The Python API (`voiceflow.diarize`, `voiceflow.StreamingDiarizer`; docs/python_api.md) is
imported on first use, so `import voiceflow` stays cheap (no numpy, no ONNX runtime).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voiceflow.api import DiarizationResult, StreamingDiarizer, diarize

__version__ = "0.1.0"
SAMPLE_RATE = 16000
__all__ = ["SAMPLE_RATE", "DiarizationResult", "StreamingDiarizer", "__version__", "diarize"]
_API = ("diarize", "DiarizationResult", "StreamingDiarizer")


def __getattr__(name: str) -> object:
    if name in _API:
        from voiceflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'voiceflow' has no attribute {name!r}")
