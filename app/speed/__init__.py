"""Measured speed: the /speed page, per-model speed and the background measurement jobs."""
