"""What a test may need from the machine, and the one way to say it is missing (tests/README.md).

A test skips only for something this machine truly lacks, and the reason names it. Packages the
`dev` extras install (Ray, aalink, cyndilib, mypy, mir_eval) and the project's own modules are never
a reason to skip: a missing one fails with the command that installs it.
"""

from __future__ import annotations

import importlib
import os
import socket
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

DEV_HINT = "pip install -e '.[dev]' (or rerun scripts/setup)"
# Written by scripts/setup when it could not install Mesa's EGL (not root, no apt, apt failed).
NO_GL_MARK = Path(sys.prefix) / ".beatcanvas-no-gl"


def dev_extra(name: str) -> ModuleType:
    """Import a package the dev extras promise; a missing one is a failure with the install hint."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        pytest.fail(f"{name} is a dev dependency and is not installed ({e}): {DEV_HINT}", pytrace=False)


def gl_context() -> None:
    """Skip only where no OpenGL 3.3 context can be made *and* the machine is known to lack one:
    scripts/setup could not install Mesa (it leaves NO_GL_MARK saying why), or BEATCANVAS_NO_GL is
    set. Anywhere else (the setup ran as root and installed Mesa) a missing context is a failure."""
    from engine.render.shader import gl_unavailable

    why = gl_unavailable()
    if why is None:
        return
    if os.environ.get("BEATCANVAS_NO_GL"):
        pytest.skip(f"no OpenGL context on this machine ({why}); BEATCANVAS_NO_GL is set")
    if NO_GL_MARK.exists():
        pytest.skip(f"no OpenGL context ({why}): {NO_GL_MARK.read_text(encoding='utf-8').strip()}")
    pytest.fail(f"no OpenGL context: {why}. scripts/setup installs Mesa EGL when run as root; rerun it, "
                "or set BEATCANVAS_NO_GL=1 on a machine that cannot have one", pytrace=False)


def udp_multicast_reason() -> str | None:
    """Why UDP multicast on loopback does not work here (Ableton Link discovers peers with it), or None.
    Sends one datagram to a group and reads it back, 127.0.0.1 only, within 2 s."""
    group, port = "224.76.78.75", 0
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        recv.bind(("", port))
        port = recv.getsockname()[1]
        mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("127.0.0.1"))
        recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        recv.settimeout(2.0)
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        send.sendto(b"beatcanvas-probe", (group, port))
        data, _ = recv.recvfrom(64)
        return None if data == b"beatcanvas-probe" else "a multicast probe came back garbled"
    except OSError as e:  # includes the 2 s timeout
        return f"UDP multicast on 127.0.0.1 does not work here ({e or type(e).__name__})"
    finally:
        recv.close()
        send.close()
