"""ONNX export: the pretrained GE2E default and our own trained checkpoints."""
