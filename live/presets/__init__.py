"""Presets: the validated look (schema), where presets live (library), how they change (transitions)."""

DEFAULT_PRESET = "default"  # here, not in library.py: `--help` names it without loading pydantic
