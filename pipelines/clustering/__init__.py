"""Offline training of the clustering back-end (LDA + PLDA) that voiceflow.clustering runs."""
