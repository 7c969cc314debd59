"""Offline export: the plan, chunks, the fixed-clock frame runner, files, Ray workers, the MP4."""
