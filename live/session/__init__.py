"""The live session (live/session/session.py) and its loops, one module each."""

from live.session.session import Session, build_session
from live.session.state import SessionConfig, SessionReport

__all__ = ["Session", "SessionConfig", "SessionReport", "build_session"]
