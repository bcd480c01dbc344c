"""Preflight: the same checks on what a pipeline is about to deploy (CONTRACT.md §4)."""
