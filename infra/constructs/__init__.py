"""Constructs: one per concern, configured through keyword-only props."""
