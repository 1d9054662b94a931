"""The GE2E speaker encoder (resemblyzer's architecture) with the mel front end in front of it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipelines.nn.frontend import MelFrontend


def resemblyzer_weights_path() -> Path:
    """The pretrained GE2E weights that ship inside the resemblyzer wheel (Apache-2.0)."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("resemblyzer is not installed: pip install 'voiceflow[train]'")
    return Path(spec.origin).parent / "pretrained.pt"


def normalised_head(linear: nn.Linear, hidden: torch.Tensor) -> torch.Tensor:
    """GE2E's embedding head on LSTM output(s) [..., H]: ReLU of the projection, L2-normalised."""
    raw = torch.relu(linear(hidden))
    last = raw.dim() - 1  # a positive axis: the bundled GE2E export stays byte-identical
    return raw / torch.clamp(torch.linalg.vector_norm(raw, dim=last, keepdim=True), min=1e-12)


class GE2EEncoder(nn.Module):
    """mel frames [B, frames, 40] -> L2-normalised 256-d embedding (resemblyzer's VoiceEncoder.forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return self.forward_with_sequence(mels)[0]

    def forward_with_sequence(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding [B, 256], the last LSTM layer's output at every frame [B, frames, 256])."""
        sequence, (hidden, _) = self.lstm(mels)
        return normalised_head(self.linear, hidden[-1]), sequence

    @classmethod
    def pretrained(cls, weights: Path | None = None) -> GE2EEncoder:
        model = cls()
        state = torch.load(weights or resemblyzer_weights_path(), map_location="cpu", weights_only=False)
        state = state.get("model_state", state)
        model.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
        return model.eval()


class WaveformEmbedder(nn.Module):
    """raw 16 kHz waveform [B, T] -> embedding [B, D]: what gets exported to ONNX."""

    def __init__(self, encoder: nn.Module, normalize_volume: bool = True, stft: str = "op") -> None:
        super().__init__()
        self.frontend = MelFrontend(normalize_volume=normalize_volume, stft=stft)
        self.encoder = encoder

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.frontend(waveform))
