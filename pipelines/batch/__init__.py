"""Batch diarization: many files, a worker pool, resumable, failure-isolated."""
