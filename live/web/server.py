"""The studio page: a Starlette app on uvicorn, on its own thread, talking to the show only through
the control hub (knob changes and commands, exactly as OSC and MIDI send them) and reading it
through the `WebFeed` the rig fills each display frame.

    GET  /                 the page (plain HTML/JS/CSS from live/web/static)
    GET  /api/knobs        the knob table grouped by preset section (ranges, kinds, help)
    GET  /api/presets      the library;  GET /api/thumb/NAME  its rendered thumbnail (JPEG)
    GET  /api/preset       the current preset's TOML (with the page's knob moves merged in)
    POST /api/check        {"name", "text"} → problems at their lines (the real schema)
    POST /api/save         {"name", "text"};  POST /api/save-as {"name", "text"}
    WS   /ws               knobs and commands in; scopes, knob values, acks, errors and the
                           preview (binary JPEG, ≤ 10 fps, only while asked for) out

Safe on a network: bound to 127.0.0.1 unless told; any other address needs the token printed at
start (`?token=` or the `X-Beatcanvas-Token` header); every POST and WebSocket must come from the
page's own origin; a loopback server answers only to a loopback Host (DNS rebinding); each client
is rate-limited; every value goes through the preset schema before the hub sees it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from engine.errors import BeatcanvasError
from live.control.hub import ControlHub
from live.control.knobs import (
    COMMANDS, Command, ControlInputError, KnobChange, apply_change, find_knob, knob_table,
)
from live.presets.schema import NAME_PATTERN
from live.web.editor import EditorError, PresetFiles, check, check_name, with_values
from live.web.feed import Mark, WebFeed
from live.web.thumbs import Thumbnails, encode_jpeg

log = logging.getLogger(__name__)

INSTALL_HINT = "the studio page needs its web libraries: pip install 'beatcanvas[web]'"
STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
MAX_MESSAGE = 300_000  # bytes: a preset is at most 256 KB
MAX_TEXT = 2_000  # characters of a text knob
SCOPE_HZ = 15.0


@dataclass
class WebOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None  # None: made up when the host is not loopback
    preset_dirs: tuple[Path, ...] = ()  # folders of presets the show was started from by path
    thumbnail_cache: Path | None = None


class Bucket:
    """A token bucket: `rate` per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.level, self.at = burst, clock()

    def take(self) -> bool:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now
        if self.level >= 1.0:
            self.level -= 1.0
            return True
        return False


# -- messages from the page -----------------------------------------------------------------------


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KnobMsg(_Msg):
    type: Literal["knob"]
    address: Annotated[str, Field(max_length=200)]
    value: bool | int | float | Annotated[str, Field(max_length=MAX_TEXT)]
    id: int | None = None


class CommandMsg(_Msg):
    type: Literal["command"]
    name: Literal["freeze", "blackout", "hud", "tap", "screenshot", "next_preset", "prev_preset", "preset", "learn"]
    arg: bool | Annotated[str, Field(max_length=200)] | None = None


class PreviewMsg(_Msg):
    type: Literal["preview"]
    on: bool


class CheckMsg(_Msg):
    type: Literal["check"]
    name: Annotated[str, Field(max_length=64)]
    text: Annotated[str, Field(max_length=MAX_MESSAGE)]
    id: int | None = None


PageMessage = Annotated[KnobMsg | CommandMsg | PreviewMsg | CheckMsg, Field(discriminator="type")]
_MESSAGE = TypeAdapter(PageMessage)


class SaveBody(_Msg):
    name: Annotated[str, Field(max_length=64)]
    text: Annotated[str, Field(max_length=MAX_MESSAGE)]
    overwrite: bool = False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number a knob can take")


def parse_json(raw: str | bytes) -> Any:
    """JSON as the page may send it: no NaN or Infinity, bounded size and nesting."""
    if len(raw) > MAX_MESSAGE:
        raise ValueError(f"message of {len(raw)} bytes is too large")
    return json.loads(raw, parse_constant=_no_constants)


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


class Studio:
    """The page's side of the show: turns page messages into control items (validated first) and
    answers the page's questions from the feed and the preset folders."""

    def __init__(self, hub: ControlHub, feed: WebFeed, current: Callable[[], Any],
                 midi_ready: Callable[[], bool] = lambda: False, files: PresetFiles | None = None,
                 thumbs: Thumbnails | None = None) -> None:
        self.hub, self.feed, self.current, self.midi_ready = hub, feed, current, midi_ready
        self.files = files or PresetFiles()
        self.thumbs = thumbs or Thumbnails()
        self.refused = 0

    # -- knobs and commands -------------------------------------------------------------------------

    def handle(self, raw: str | bytes, received: float | None = None) -> dict[str, Any] | None:
        """One page message → the reply for that page (an error, a check's problems, the preview
        switch for its connection) or None.
        Nothing reaches the hub unless the message is whole and the schema accepts the value."""
        received = time.monotonic() if received is None else received
        try:
            msg = _MESSAGE.validate_python(parse_json(raw))
        except ValidationError as e:
            return self._refuse(f"malformed message ({_one_line(e)})")
        except (ValueError, RecursionError) as e:
            return self._refuse(f"malformed message ({str(e)[:120]})")
        if isinstance(msg, KnobMsg):
            return self._knob(msg, received)
        if isinstance(msg, CommandMsg):
            return self._command(msg)
        if isinstance(msg, CheckMsg):
            return self.check(msg.name, msg.text, msg.id)
        return {"type": "preview", "on": msg.on}  # the connection turns its preview on or off

    def _refuse(self, message: str) -> dict[str, Any]:
        self.refused += 1
        return {"type": "error", "message": message}

    def _knob(self, msg: KnobMsg, received: float) -> dict[str, Any] | None:
        if isinstance(msg.value, float) and not math.isfinite(msg.value):
            return self._refuse(f"{msg.address}: {msg.value} is not a number a knob can take")
        try:
            knob = find_knob(msg.address)
            wants = {"float": "a number", "int": "a whole number", "bool": "true or false",
                     "choice": f"one of {', '.join(knob.choices)}", "text": "text"}[knob.kind]
            numeric = isinstance(msg.value, (int, float)) and not isinstance(msg.value, bool)
            if (knob.kind in ("float", "int") and not numeric) or (knob.kind == "bool" and isinstance(msg.value, str)) \
                    or (knob.kind in ("text", "choice") and not isinstance(msg.value, str)):
                raise ControlInputError(f"{knob.address} wants {wants}, not {json.dumps(msg.value)[:40]}")
            change = KnobChange(knob.section, knob.key, msg.value, "web")
            preset = self.current()
            if preset is not None:
                apply_change(preset, change)  # refuse here, with the reason, before the hub sees it
        except ControlInputError as e:
            return self._refuse(str(e))
        self.feed.mark(Mark(knob.address, msg.value, received, msg.id))
        self.hub.put(change)
        return None

    def _command(self, msg: CommandMsg) -> dict[str, Any] | None:
        arg = msg.arg
        if msg.name in ("preset", "cue"):
            if not isinstance(arg, str) or not _is_name(arg):
                return self._refuse(f"{msg.name} needs a preset name")
        elif msg.name == "learn":
            if not isinstance(arg, str):
                return self._refuse("learn needs a knob's address")
            if arg not in COMMANDS:
                try:
                    find_knob(arg)
                except ControlInputError as e:
                    return self._refuse(str(e))
            if not self.midi_ready():
                return self._refuse("no MIDI input: start the show with --midi (and --midi-map FILE) to learn")
        elif msg.name in ("freeze", "blackout", "hud"):
            if arg is not None and not isinstance(arg, bool):
                return self._refuse(f"{msg.name} takes true, false or nothing")
        elif arg is not None:
            return self._refuse(f"{msg.name} takes no argument")
        self.hub.put(Command(msg.name, arg, "web", quantize="downbeat" if msg.name == "cue" else ""))
        return None

    # -- presets -----------------------------------------------------------------------------------

    def check(self, name: str, text: str, ident: int | None = None) -> dict[str, Any]:
        try:
            check_name(name)
        except EditorError as e:
            return self._refuse(str(e))
        return {"type": "problems", "id": ident, "problems": [asdict(p) for p in check(text, name)]}

    def preset_text(self) -> dict[str, Any]:
        preset = self.current()
        if preset is None:
            raise EditorError("the show has no preset yet")
        text = with_values(self.files.read(preset.name), preset)
        return {"name": preset.name, "text": text, "problems": [asdict(p) for p in check(text, preset.name)]}

    def library(self) -> list[dict[str, Any]]:
        from live.presets.library import list_presets

        preset = self.current()
        return [{"name": i.name, "description": i.description, "source": i.source, "error": i.error,
                 "current": preset is not None and preset.name == i.name} for i in list_presets()]

    def thumbnail(self, name: str) -> bytes:
        from live.presets.schema import PresetError, read_preset_file

        path = self.files.find(name)
        try:
            return self.thumbs.jpeg(read_preset_file(path))
        except PresetError as e:
            raise EditorError(str(e)) from None

    # -- what the page shows ------------------------------------------------------------------------

    def knobs(self) -> dict[str, Any]:
        sections: dict[str, list[dict[str, Any]]] = {}
        for k in knob_table().values():
            sections.setdefault(k.section, []).append({
                "address": k.address, "key": k.key, "kind": k.kind, "default": _jsonable(k.default),
                "lo": k.lo, "hi": k.hi, "lo_open": k.lo_open, "step": k.step, "choices": list(k.choices),
                "help": k.description, "example": k.example,
            })
        return {"sections": [{"name": s, "knobs": ks} for s, ks in sections.items()],
                "commands": {a: {"name": c.name, "arg": c.arg, "help": c.help} for a, c in COMMANDS.items()}}

    def values(self) -> dict[str, Any]:
        preset = self.current()
        if preset is None:
            return {}
        return {k.address: _jsonable(k.read(preset)) for k in knob_table().values()}


def _is_name(text: str) -> bool:
    return len(text) <= 64 and re.fullmatch(NAME_PATTERN, text) is not None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the ASGI app ---------------------------------------------------------------------------------


@dataclass
class Guard:
    """Who may talk to the server: the token, the origins and hosts it answers."""

    host: str
    token: str | None
    port: int = 0
    buckets: dict[str, Bucket] = field(default_factory=dict)

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK

    def host_ok(self, host_header: str | None) -> bool:
        if not self.loopback:
            return True  # the token guards a server on the network
        name = urlsplit(f"//{host_header or ''}").hostname or ""
        return name in ("127.0.0.1", "localhost", "::1")

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """Same origin as the page: the Origin header names the host the browser asked for."""
        if not origin or not host_header:
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def allow(self, client: str, rate: float, burst: float) -> bool:
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) > 1000:
                self.buckets.clear()
            bucket = self.buckets[client] = Bucket(rate, burst)
        return bucket.take()


def build_app(studio: Studio, guard: Guard) -> Any:
    """The Starlette application (tests drive it with Starlette's TestClient)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocket, WebSocketDisconnect

    def refuse(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    def problem(request: Request, post: bool) -> tuple[int, str] | None:
        if not guard.host_ok(request.headers.get("host")):
            return 421, "this server answers to 127.0.0.1 or localhost only"
        if not guard.token_ok(request.query_params.get("token") or request.headers.get("x-beatcanvas-token")):
            return 403, "missing or wrong token: open the URL with ?token= printed when the show started"
        if post and not guard.origin_ok(request.headers.get("origin"), request.headers.get("host")):
            return 403, "cross-origin request refused"
        client = request.client.host if request.client else "?"
        if not guard.allow(f"http {client}", rate=30.0, burst=60.0):
            return 429, "too many requests: slow down"
        return None

    def gate(request: Request, post: bool = False) -> Response | None:
        bad = problem(request, post)
        return refuse(*bad) if bad is not None else None

    async def index(request: Request) -> Response:
        bad = problem(request, False)
        if bad is not None:
            return PlainTextResponse(bad[1], status_code=bad[0])
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def knobs(request: Request) -> Response:
        return gate(request) or JSONResponse(studio.knobs())

    async def presets(request: Request) -> Response:
        return gate(request) or JSONResponse({"presets": studio.library()})

    async def thumb(request: Request) -> Response:
        bad = gate(request)
        if bad is not None:
            return bad
        try:
            data = await asyncio.to_thread(studio.thumbnail, str(request.path_params["name"]))
        except EditorError as e:
            return refuse(404, str(e))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=300"})

    async def preset(request: Request) -> Response:
        bad = gate(request)
        if bad is not None:
            return bad
        try:
            return JSONResponse(await asyncio.to_thread(studio.preset_text))
        except EditorError as e:
            return refuse(404, str(e))

    async def body(request: Request) -> SaveBody | Response:
        """A POST's body, once the request has passed the gate (token, Origin, rate)."""
        bad = gate(request, post=True)
        if bad is not None:
            return bad
        raw = await request.body()
        try:
            return SaveBody.model_validate(parse_json(raw))
        except ValidationError as e:
            return refuse(400, f"malformed request ({_one_line(e)})")
        except (ValueError, RecursionError) as e:
            return refuse(400, f"malformed request ({str(e)[:120]})")

    async def check_text(request: Request) -> Response:
        got = await body(request)
        if isinstance(got, Response):
            return got
        reply = await asyncio.to_thread(studio.check, got.name, got.text)
        return JSONResponse(reply, status_code=400 if reply["type"] == "error" else 200)

    def saver(as_new: bool) -> Callable[[Request], Any]:
        async def save(request: Request) -> Response:
            got = await body(request)
            if isinstance(got, Response):
                return got
            try:
                if as_new:
                    path = await asyncio.to_thread(studio.files.save_as, got.name, got.text, got.overwrite)
                else:
                    path = await asyncio.to_thread(studio.files.save, got.name, got.text)
            except EditorError as e:
                return refuse(400, str(e))
            except OSError as e:
                return refuse(500, f"not saved: {e.strerror or e}")
            return JSONResponse({"saved": path.name, "folder": str(path.parent)})

        return save

    async def socket(ws: WebSocket) -> None:
        if not guard.host_ok(ws.headers.get("host")) or not guard.token_ok(ws.query_params.get("token")) \
                or not guard.origin_ok(ws.headers.get("origin"), ws.headers.get("host")):
            await ws.close(code=1008)
            return
        await ws.accept()
        await Connection(studio, ws).run(WebSocketDisconnect)

    routes = [
        Route("/", index),
        Route("/api/knobs", knobs),
        Route("/api/presets", presets),
        Route("/api/thumb/{name}", thumb),
        Route("/api/preset", preset),
        Route("/api/check", check_text, methods=["POST"]),
        Route("/api/save", saver(False), methods=["POST"]),
        Route("/api/save-as", saver(True), methods=["POST"]),
        WebSocketRoute("/ws", socket),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


class Connection:
    """One page's WebSocket: messages in (rate-limited), scopes and the preview out."""

    def __init__(self, studio: Studio, ws: Any) -> None:
        self.studio, self.ws = studio, ws
        self.preview = False
        self.bucket = Bucket(rate=120.0, burst=240.0)
        self.limited_said = 0.0

    async def run(self, disconnect: type[BaseException]) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            await self.ws.send_json({"type": "hello", "midi": self.studio.midi_ready()})
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text") if message.get("text") is not None else message.get("bytes") or b""
                await self._on_message(raw)
        except disconnect:
            pass
        finally:
            sender.cancel()
            self._set_preview(False)

    async def _on_message(self, raw: str | bytes) -> None:
        received = time.monotonic()
        if not self.bucket.take():
            if received - self.limited_said > 1.0:
                self.limited_said = received
                await self.ws.send_json({"type": "error", "message": "too many messages: rate-limited, some dropped"})
            return
        reply = await asyncio.to_thread(self.studio.handle, raw, received)  # a check parses a whole preset
        if reply is not None and reply["type"] == "preview":
            self._set_preview(bool(reply["on"]))
        elif reply is not None:
            await self.ws.send_json(reply)

    def _set_preview(self, on: bool) -> None:
        if on != self.preview:
            self.preview = on
            self.studio.feed.viewers += 1 if on else -1

    async def _send_loop(self) -> None:
        feed, last_values, preview_seq, applied, tick = self.studio.feed, "", 0, 0, 0
        last_preset: Any = None
        _, applied = feed.applied_since(1 << 62)
        try:
            while True:
                tick += 1
                scopes = dict(vars(feed.scopes(history=tick % 8 == 1)))  # the minute-long curves twice a second
                if tick % 8 != 1:
                    del scopes["history"]
                message: dict[str, Any] = {"type": "state", "scopes": scopes}
                preset = self.studio.current()
                if preset is not last_preset:  # the router hands out a new preset object on every change
                    last_preset = preset
                    values = json.dumps(self.studio.values(), sort_keys=True)
                    if values != last_values:
                        last_values = values
                        message["values"] = json.loads(values)
                shown, applied = feed.applied_since(applied)
                if shown:
                    message["acks"] = [{"id": a.ident, "address": a.address, "latency_ms": round(a.latency_ms, 2),
                                        "shown_at": a.shown_at} for a in shown]
                await self.ws.send_json(message)
                if self.preview:
                    got = feed.preview(preview_seq)
                    if got is not None:
                        preview_seq = got[0]
                        await self.ws.send_bytes(encode_jpeg(got[1], quality=70))
                await asyncio.sleep(1.0 / SCOPE_HZ)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a page that went away mid-send
            log.debug("studio page connection ended: %s", e)


class WebServer:
    """uvicorn on its own thread, serving `build_app`."""

    def __init__(self, studio: Studio, options: WebOptions) -> None:
        self.studio, self.options = studio, options
        token = options.token
        if token is None and options.host not in LOOPBACK:
            token = secrets.token_urlsafe(18)
        self.guard = Guard(options.host, token)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = options.port

    @property
    def url(self) -> str:
        host = self.options.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if host in ("0.0.0.0", "::", ""):
            shown = _lan_address() or shown
        return f"http://{shown}:{self.port}/" + (f"?token={self.guard.token}" if self.guard.token else "")

    def start(self, timeout: float = 10.0) -> None:
        try:
            import uvicorn
        except ImportError:
            raise BeatcanvasError(INSTALL_HINT) from None
        app = build_app(self.studio, self.guard)
        config = uvicorn.Config(app, host=self.options.host, port=self.options.port, log_level="warning",
                                lifespan="off", ws_max_size=MAX_MESSAGE, access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                server.run()
            except BaseException as e:  # noqa: BLE001 - uvicorn exits with SystemExit when it cannot bind
                failed.append(e)

        self._thread = threading.Thread(target=serve, name="beatcanvas-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            self.close()
            raise BeatcanvasError(f"studio page: cannot listen on {self.options.host}:{self.options.port}; "
                                  "another program may hold the port: pick another with --web-port")
        sockets = [s for srv in server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        self.guard.port = self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(3.0)
        self._server = None


def _lan_address() -> str | None:
    """This machine's address on the local network (what a phone types), if it has one."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for a UDP connect
            return str(s.getsockname()[0])
    except OSError:
        return None
