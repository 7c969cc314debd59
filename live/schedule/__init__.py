"""Schedules: timed keyframes that direct the show (issue 17).

- `schema`: the TOML file, validated like a preset → `Schedule` (`read_schedule`, `ScheduleError`).
- `timeline`: the keys placed on the track's time, beat grid and sections → `Timeline.at(t)`.
- `runtime`: `ShowDirection`, what the session and export ask every frame (schedule + lyrics).
- `skeleton`: the file `beatcanvas analyze --sections` writes.
"""
