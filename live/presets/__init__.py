"""Presets: the validated look (schema), where presets live (library), how they change (transitions)."""
