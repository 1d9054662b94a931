"""The mel front end every exported VoiceFlow model carries inside its ONNX graph.

One definition, used for training and baked into export, so training and serving can never
disagree on features. It reproduces resemblyzer's `wav_to_mel_spectrogram` (librosa's
melspectrogram: n_fft 400, hop 160, periodic Hann, centred with zero padding, power 2, Slaney
mel filters, no log) on raw 16 kHz waveform.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 40
# resemblyzer normalises each utterance to -30 dBFS (increase only) before the mel spectrogram;
# the LSTM sees linear power, so input level matters. We do it per window, inside the graph.
TARGET_DBFS = -30.0


def _hz_to_mel_slaney(freq: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_region = freq >= min_log_hz
    mels = np.where(log_region, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz_slaney(mels: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_region = mels >= min_log_mel
    return np.where(log_region, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def slaney_mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults (Slaney scale and area norm)."""
    n_freqs = 1 + n_fft // 2
    fft_freqs = np.linspace(0, sample_rate / 2, n_freqs)
    mel_points = _mel_to_hz_slaney(
        np.linspace(_hz_to_mel_slaney(np.array(0.0)), _hz_to_mel_slaney(np.array(sample_rate / 2)), n_mels + 2)
    )
    fdiff = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, n_freqs))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_points[2 : n_mels + 2] - mel_points[:n_mels])
    weights *= enorm[:, None]
    return weights.astype(np.float32)


def windowed_dft_basis(n_fft: int = N_FFT) -> np.ndarray:
    """[2 * (n_fft // 2 + 1), 1, n_fft] conv kernels: Hann-windowed cos rows, then -sin rows.

    A strided Conv1d with these kernels is the same STFT as torch.stft (periodic Hann, no
    centring), but exports to an ONNX Conv, which onnxruntime runs as one GEMM: ~6x faster on
    CPU than its STFT kernel, which dominated the cost of a small encoder.
    """
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann, as torch.hann_window
    phase = 2 * np.pi * k * n / n_fft
    basis = np.concatenate([np.cos(phase) * window, -np.sin(phase) * window], axis=0)
    return basis[:, None, :].astype(np.float32)


class MelFrontend(nn.Module):
    """waveform [B, T] float32 at 16 kHz -> mel power frames [B, frames, 40].

    `stft="op"` (default) uses torch.stft -> ONNX STFT, which the bundled GE2E export was built
    with and must keep reproducing bit for bit; `stft="conv"` computes the same spectrum with a
    DFT-kernel Conv1d (equal to ~1e-6 relative), which is what trained students ship with.
    """

    window: torch.Tensor
    mel_basis: torch.Tensor
    dft_basis: torch.Tensor

    def __init__(self, normalize_volume: bool = True, stft: str = "op") -> None:
        super().__init__()
        if stft not in ("op", "conv"):
            raise ValueError(f"stft must be 'op' or 'conv', not {stft!r}")
        self.normalize_volume = normalize_volume
        self.stft_mode = stft
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(slaney_mel_filterbank()), persistent=False)
        if stft == "conv":
            self.register_buffer("dft_basis", torch.from_numpy(windowed_dft_basis()), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if self.normalize_volume:
            waveform = increase_only_gain(waveform, TARGET_DBFS)
        padded = torch.nn.functional.pad(waveform, (N_FFT // 2, N_FFT // 2))
        if self.stft_mode == "conv":
            spec_ri = torch.nn.functional.conv1d(padded.unsqueeze(1), self.dft_basis, stride=HOP_LENGTH)
            n_freqs = N_FFT // 2 + 1
            power_conv = spec_ri[:, :n_freqs].pow(2) + spec_ri[:, n_freqs:].pow(2)  # [B, freqs, frames]
            return torch.matmul(self.mel_basis, power_conv).transpose(1, 2)
        spec = torch.stft(
            padded,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=N_FFT,
            window=self.window,
            center=False,
            return_complex=False,
        )
        power = spec.pow(2).sum(-1)  # [B, freqs, frames]
        mel = torch.matmul(self.mel_basis, power)  # [B, mels, frames]
        return mel.transpose(1, 2)


def increase_only_gain(waveform: torch.Tensor, target_dbfs: float) -> torch.Tensor:
    """Raise each row to `target_dbfs` RMS (int16 full scale), never lower it — resemblyzer's rule."""
    rms = torch.sqrt(torch.mean(waveform.pow(2), dim=-1, keepdim=True) + 1e-12)
    target_rms = 10.0 ** (target_dbfs / 20.0)
    gain = torch.clamp(target_rms / rms, min=1.0, max=10.0 ** (60.0 / 20.0))
    return waveform * gain
