"""The studio page: knobs, presets, a TOML editor, a preview and scopes in a browser (live/web/server.py)."""
