"""One line naming the machine a benchmark or an evaluation ran on: figures only compare on the same CPU.

onnxruntime picks its INT8 kernels by instruction set (AVX2, AVX-512 VNNI, AMX): the same code
measured ~35 % more CPU per audio second on one "2-core" session machine than on another, and the
dev suite's DER moved too (offline 25.4 % on a Xeon with AVX-512 VNNI, 25.6 % on an AMD EPYC with
AVX2; streaming 33.2 and 30.9 %), so every suite report names its CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

INT8_FEATURES = ("amx_int8", "avx512_vnni", "avx_vnni", "avx2")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def int8_features(cpuinfo: str) -> list[str]:
    """The instruction sets of INT8_FEATURES that the first CPU's flags name."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [name for name in INT8_FEATURES if name in flags]
    return []


def cpu(cpuinfo: str | None = None) -> str:
    """'N CPUs (model; int8: features)' for this machine (or for the /proc/cpuinfo text given)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    features = ", ".join(int8_features(cpuinfo)) or "none found"
    return f"{os.cpu_count()} CPUs ({cpu_model(cpuinfo)}; int8: {features})"


def describe(load_label: str = "load average") -> str:
    """'N CPUs (model; int8: features), <load_label> L' for this machine now."""
    return f"{cpu()}, {load_label} {os.getloadavg()[0]:.2f}"
