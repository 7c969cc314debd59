"""The one error type for everything a user can cause.

Its message says what was wrong and what to do, in one line. The CLI prints it without a
traceback and exits non-zero; the live loop shows it in the HUD and keeps running.
"""


class BeatcanvasError(Exception):
    """A problem the user can fix: a bad file, a bad preset, a missing model, no audio device."""


def one_line(e: BaseException) -> str:
    """An exception as one line for a log or the HUD: its message's first line, or its type."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
