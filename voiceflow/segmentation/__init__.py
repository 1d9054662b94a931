"""Overlap-aware diarization around our own segmentation network (issue 9).

`model` runs the ONNX network; `local_embeddings` embeds each chunk's local speakers;
`aggregation` turns overlapping chunk outputs into per-speaker tracks; `offline` and `streaming`
are the two pipelines built from those blocks.
"""
