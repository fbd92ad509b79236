"""Stacks: one per deployable unit."""
