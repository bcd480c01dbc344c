"""Placeholder: routes for this surface are being written."""
