"""Shared fixtures for the operator tests (helpers live in vf_*.py beside this file)."""

from __future__ import annotations

import sys
from pathlib import Path

# This folder has no __init__.py on purpose: a test package named `operator` would shadow the
# standard library. Its helper modules are imported by their (unique) names instead.
sys.path.insert(0, str(Path(__file__).resolve().parent))
