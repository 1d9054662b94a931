"""Overlap-aware speaker segmentation (issue 9): powerset targets and loss, frame-level model.

Not wired into the engine, the CLI or the inference pod yet: that waits for the gate.
"""
