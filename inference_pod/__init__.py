"""inference_pod."""
