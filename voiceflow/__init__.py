"""VoiceFlow core engine: audio in, "who spoke when" out. No torch, no web framework."""

__version__ = "0.1.0"
SAMPLE_RATE = 16000
