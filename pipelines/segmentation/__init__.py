"""Overlap-aware speaker segmentation (issue 9): training side (data, augmentation, loader, model,
powerset loss, trainer, ONNX export). `voiceflow train --preset segmentation-*` and
`voiceflow export RUN/model.pt` drive it; the engine's inference side is `voiceflow.segmentation`.
"""
