"""Torch modules shared by training and export (never imported by serving code)."""
