"""Where the pipelines find the repository and the shared data: one definition.

The data (`../shared/data`: AMI excerpts, LibriSpeech, noise and impulse responses) sits beside
a checkout; VOICEFLOW_SHARED_DATA points elsewhere (a mounted volume in a cluster).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA_ENV = "VOICEFLOW_SHARED_DATA"


def shared_data_dir() -> Path:
    return Path(os.environ.get(SHARED_DATA_ENV, REPO_ROOT.parent / "shared" / "data"))
