"""Heads: a CLAP audio embedding → SDXL text conditioning (zero-shot descriptor bank, or the thesis transformer)."""
