"""Audio in: decoding, resampling, windows (`io`), per-block musical features (`features`), the beat
tracker (`onsets`, `tempo`, `beats`, `accents`; offline: `beatmap`), analysis and the demo track.
Import from the modules: this package imports nothing, so `--help` never loads numpy or libsndfile."""
