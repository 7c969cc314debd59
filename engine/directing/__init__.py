"""Directing the show: the pure parts of schedules, lyrics and sections (no files of `live`).

- `timecode`: "1:32.5" ⇄ seconds, and spans such as "2 bars".
- `grid`: a beat grid (beat and downbeat times, from `beatcanvas analyze` or a live tracker) that
  places bar/beat keyframes and finds the beat a cut lands on.
- `keyframes`: one setting's keyframes over time and how a value moves between them
  (linear, ease, hold, cut).
- `lyrics`: timed lyrics (.lrc, with enhanced word timings) → the line being sung at t.
- `imagery`: a sung line → a short picture prompt (content words kept, function words dropped).
- `sections`: where a track's sections begin (novelty of a self-similarity matrix of features,
  and of CLAP embeddings when given).
- `director`: the per-frame mix of the music's conditioning with the scheduled style and the
  lyric, through the same blending functions the zero-shot head uses.

The schedule file itself (TOML, validated against the preset schema) is `live.schedule`.
"""
