"""The studio page's server: knobs reach the show only through the hub, the TOML editor validates at
the line and keeps comments, and nothing malformed, foreign or oversized changes the show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from live.web.feed import WebFeed
from live.web.server import Bucket
from web_fakes import ORIGIN, FakeShow, load, studio_app, user_preset

BASE = "http://127.0.0.1:8765"
WS = "ws://127.0.0.1:8765/ws"


@pytest.fixture()
def show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeShow:
    monkeypatch.setenv("BEATCANVAS_PRESETS", str(tmp_path / "presets"))
    return FakeShow(load(user_preset(tmp_path / "presets")))


def client(show: FakeShow, **kw: object) -> TestClient:
    app, _ = studio_app(show, **kw)  # type: ignore[arg-type]
    return TestClient(app, base_url=BASE)


def ws_messages(ws, until, limit: int = 200):  # type: ignore[no-untyped-def]
    for _ in range(limit):
        m = ws.receive_json()
        if until(m):
            return m
    raise AssertionError("the expected message never came")


def test_page_and_knob_table_grouped_by_section(show: FakeShow) -> None:
    c = client(show)
    page = c.get("/")
    assert page.status_code == 200 and "beatcanvas studio" in page.text
    assert c.get("/static/app.js").status_code == 200
    table = c.get("/api/knobs").json()
    sections = {s["name"]: {k["key"]: k for k in s["knobs"]} for s in table["sections"]}
    assert {"model", "motion", "reactivity", "procedural"} <= set(sections)
    feedback = sections["motion"]["feedback"]
    assert (feedback["lo"], feedback["hi"], feedback["kind"]) == (0.0, 1.0, "float") and feedback["help"]
    style = sections["conditioning"]["style"]
    assert style["kind"] == "text" and style["example"].startswith('"')  # a text knob's hint is text


def test_a_knob_moved_on_the_page_changes_the_show_through_the_hub(show: FakeShow) -> None:
    with client(show).websocket_connect(f"{WS}", headers={"origin": ORIGIN}) as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "knob", "address": "/beatcanvas/motion/feedback", "value": 0.61, "id": 7})
        ws.send_json({"type": "command", "name": "blackout", "arg": True})
        acks: list[dict] = []
        for _ in range(200):  # one display frame per state message the page gets
            show.pump()
            acks += ws.receive_json().get("acks", [])
            if show.preset.motion.feedback == 0.61 and show.commands and acks:
                break
        assert show.preset.motion.feedback == 0.61
        assert [(c.name, c.arg, c.origin) for c in show.commands] == [("blackout", True, "web")]
        assert acks[0]["id"] == 7 and acks[0]["latency_ms"] >= 0  # the page hears when the picture showed it


@pytest.mark.parametrize("message, reason", [
    ({"type": "knob", "address": "/beatcanvas/motion/feedback", "value": 1e308}, "feedback"),
    ({"type": "knob", "address": "/beatcanvas/motion/feedback", "value": "loud"}, "feedback"),
    ({"type": "knob", "address": "/beatcanvas/motion/feedback", "value": [1, 2]}, "malformed"),
    ({"type": "knob", "address": "/beatcanvas/motion/feedbak", "value": 0.5}, "did you mean"),
    ({"type": "knob", "address": "/beatcanvas/model/steps", "value": True}, "steps"),
    ({"type": "knob", "address": "/beatcanvas/conditioning/style", "value": "x" * 60_000}, "malformed"),
    ({"type": "command", "name": "preset", "arg": "../../etc/passwd"}, "preset name"),
    ({"type": "command", "name": "rm -rf"}, "malformed"),
    ({"type": "command", "name": "learn", "arg": "/beatcanvas/motion/feedback"}, "no MIDI input"),
    ({"type": "nonsense"}, "malformed"),
    ([1, 2, 3], "malformed"),
])
def test_malformed_messages_get_an_error_and_change_nothing(show: FakeShow, message: object, reason: str) -> None:
    before = show.preset
    with client(show).websocket_connect(f"{WS}", headers={"origin": ORIGIN}) as ws:
        ws.receive_json()
        ws.send_text(json.dumps(message))
        error = ws_messages(ws, lambda m: m["type"] == "error")
        assert reason in error["message"]
        ws.send_text('{"type": "knob", "address": "/beatcanvas/motion/feedback", "value": NaN}')
        assert "not a number" in ws_messages(ws, lambda m: m["type"] == "error")["message"]
    show.pump()
    assert show.preset == before and not show.commands


def test_foreign_origin_missing_token_and_foreign_host_are_refused(show: FakeShow, tmp_path: Path) -> None:
    c = client(show)
    body = {"name": "mine", "text": "# x\n"}
    assert c.post("/api/save", json=body, headers={"origin": "http://evil.example"}).status_code == 403
    assert c.post("/api/save", json=body).status_code == 403  # no Origin at all
    with pytest.raises(Exception):
        with c.websocket_connect(f"{WS}", headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()
    rebinding = TestClient(studio_app(show)[0], base_url="http://evil.example:8765")
    assert rebinding.get("/api/knobs").status_code == 421

    open_ = TestClient(studio_app(show, host="0.0.0.0", token="s3cret")[0], base_url="http://192.168.1.5:8765")
    assert open_.get("/api/knobs").status_code == 403
    assert open_.get("/").status_code == 403
    assert open_.get("/api/knobs?token=wrong").status_code == 403
    assert open_.get("/api/knobs?token=s3cret").status_code == 200
    with pytest.raises(Exception):
        with open_.websocket_connect("ws://192.168.1.5:8765/ws", headers={"origin": "http://192.168.1.5:8765"}) as ws:
            ws.receive_json()
    with open_.websocket_connect("ws://192.168.1.5:8765/ws?token=s3cret", headers={"origin": "http://192.168.1.5:8765"}) as ws:
        assert ws.receive_json()["type"] == "hello"
    show.pump()
    assert "keep this comment" in (tmp_path / "presets" / "mine.toml").read_text()


@pytest.mark.parametrize("name", ["../mine", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "MINE", "a/b", "x" * 80, ""])
def test_no_path_outside_the_presets_folder_is_read_or_written(show: FakeShow, tmp_path: Path, name: str) -> None:
    c = client(show)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    h = {"origin": ORIGIN}
    text = (tmp_path / "presets" / "mine.toml").read_text()
    for path in ("/api/save", "/api/save-as", "/api/check"):
        r = c.post(path, json={"name": name, "text": text}, headers=h)
        assert r.status_code in (400, 404, 422), (path, r.status_code)
    assert c.get(f"/api/thumb/{name}").status_code in (404, 405)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_editor_reports_errors_at_their_line_and_saves_keep_comments(show: FakeShow, tmp_path: Path) -> None:
    c = client(show)
    h = {"origin": ORIGIN}
    got = c.get("/api/preset").json()
    assert got["name"] == "mine" and got["problems"] == [] and "keep this comment" in got["text"]
    lines = got["text"].splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("feedback"))
    broken = "\n".join(lines[:at] + ["feedback = 7.5"] + lines[at + 1:]) + "\n"
    problems = c.post("/api/check", json={"name": "mine", "text": broken}, headers=h).json()["problems"]
    assert problems[0]["line"] == at + 1 and "feedback" in problems[0]["message"]
    r = c.post("/api/save", json={"name": "mine", "text": broken}, headers=h)
    assert r.status_code == 400 and "not saved" in r.json()["error"]
    assert "feedback = 7.5" not in (tmp_path / "presets" / "mine.toml").read_text()

    fixed = broken.replace("feedback = 7.5", "feedback = 0.42  # tuned on the page")
    assert c.post("/api/save", json={"name": "mine", "text": fixed}, headers=h).status_code == 200
    saved = (tmp_path / "presets" / "mine.toml").read_text()
    assert saved == fixed and load(tmp_path / "presets" / "mine.toml").motion.feedback == 0.42

    r = c.post("/api/save-as", json={"name": "mine-2", "text": fixed}, headers=h)
    assert r.status_code == 200
    copy = (tmp_path / "presets" / "mine-2.toml").read_text()
    assert "keep this comment" in copy and "# tuned on the page" in copy and load(tmp_path / "presets" / "mine-2.toml").name == "mine-2"
    assert c.post("/api/save-as", json={"name": "mine-2", "text": fixed}, headers=h).status_code == 400  # no silent overwrite


def test_knob_moves_are_merged_into_the_text_with_comments_kept(show: FakeShow) -> None:
    with client(show).websocket_connect(f"{WS}", headers={"origin": ORIGIN}) as ws:
        ws.receive_json()
        ws.send_json({"type": "knob", "address": "/beatcanvas/reactivity/warp", "value": 1.25})
        for _ in range(100):
            show.pump()
            if show.preset.reactivity.warp == 1.25:
                break
            ws.receive_json()
    text = client(show).get("/api/preset").json()["text"]
    assert "keep this comment" in text and "warp = 1.25" in text


def test_library_thumbnails_are_rendered_and_cached(show: FakeShow) -> None:
    c = client(show)
    presets = c.get("/api/presets").json()["presets"]
    names = [p["name"] for p in presets]
    assert "mine" in names and "neon-noir" in names
    assert next(p for p in presets if p["name"] == "mine")["current"]
    a = c.get("/api/thumb/neon-noir")
    b = c.get("/api/thumb/cosmic")
    assert a.headers["content-type"] == "image/jpeg" and a.content[:2] == b"\xff\xd8"
    assert a.content != b.content  # each preset's own look
    assert c.get("/api/thumb/neon-noir").content == a.content


def test_preview_is_off_until_a_page_asks_and_at_most_ten_per_second() -> None:
    t = [0.0]
    feed = WebFeed(clock=lambda: t[0])
    picture = __import__("numpy").full((90, 160, 3), 200, "uint8")
    feed.frame(picture, None, None)
    assert feed.preview(0) is None  # nobody watching: the display thread did nothing
    feed.viewers = 1
    shots = 0
    for i in range(60):  # one second at 60 fps
        t[0] = 1.0 + i / 60
        feed.frame(picture, None, None)
        got = feed.preview(shots)
        if got is not None:
            shots = got[0]
            assert got[1].shape == (180, 320, 3)
    assert 5 <= shots <= 10


def test_rate_limit_bucket() -> None:
    t = [0.0]
    b = Bucket(rate=10.0, burst=5.0, clock=lambda: t[0])
    assert sum(b.take() for _ in range(50)) == 5
    t[0] = 1.0
    assert sum(b.take() for _ in range(50)) == 5  # refilled to the burst, not beyond


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_studio_command_serves_the_page_on_localhost_and_exits_cleanly(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import threading

    import httpx
    import soundfile as sf
    from audio_synth import click_track
    from live_fakes import interrupt

    x, _ = click_track(120.0, seconds=8.0)
    track = tmp_path / "click.wav"
    sf.write(track, x, 48_000)
    port = _free_tcp_port()
    env = {**os.environ, "SDL_AUDIODRIVER": "dummy", "BEATCANVAS_PRESETS": str(tmp_path / "presets"),
           "BEATCANVAS_CACHE": str(tmp_path / "cache")}
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "live.cli", "studio", "default", str(track), "--headless", "--renderer", "numpy",
           "--no-audio-out", "--web-port", str(port), "--duration", "60"]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        knobs, pause = None, threading.Event()
        for _ in range(600):  # the page answers once the show is up
            if proc.poll() is not None:
                break
            try:
                knobs = httpx.get(f"http://127.0.0.1:{port}/api/knobs", timeout=2.0)
                break
            except httpx.TransportError:
                pause.wait(0.1)
        assert knobs is not None and knobs.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5.0).status_code == 200
        assert proc.poll() is None
    finally:
        out, err = interrupt(proc)
    assert proc.returncode == 0, err
    assert f"studio page: http://127.0.0.1:{port}/" in " ".join(err.split()) and "token" not in err


def test_an_open_server_prints_a_token_url_once_and_the_preview_stops_with_the_page(show: FakeShow) -> None:
    from live.web.server import WebOptions, WebServer

    _, studio = studio_app(show)
    open_ = WebServer(studio, WebOptions(host="0.0.0.0", port=8765))
    local = WebServer(studio, WebOptions(host="127.0.0.1", port=8765))
    assert "?token=" in open_.url and len(open_.guard.token or "") >= 20 and "token" not in local.url
    assert WebServer(studio, WebOptions(host="0.0.0.0", port=8765)).guard.token != open_.guard.token

    with client(show).websocket_connect(WS, headers={"origin": ORIGIN}) as ws:
        ws.receive_json()
        ws.send_json({"type": "preview", "on": True})
        for _ in range(100):
            show.pump()
            if ws.receive().get("bytes"):  # a JPEG came
                break
        assert show.feed.viewers == 1
    assert show.feed.viewers == 0  # the page went away: the display thread stops shrinking frames


def test_scopes_carry_the_sections_and_the_lyrics_ahead() -> None:
    from engine.directing.lyrics import LyricLine, Lyrics
    from live.presets.schema import Preset
    from live.schedule.runtime import ShowDirection
    from live.screen.hud import HudState

    lines = tuple(LyricLine(start, start + 1.0, text, i) for i, (start, text) in enumerate([(1, "a"), (5, "b"), (9, "c")]))
    direction = ShowDirection(Preset(), lyrics=Lyrics(lines), sections=(4.0, 8.0))
    assert direction.lyrics_ahead(3.0) == [(5, "b"), (9, "c")]
    feed = WebFeed()
    state = HudState(show_t=3.0, sections=direction.sections, ahead=direction.lyrics_ahead(3.0))
    feed.frame(None, None, state)
    scopes = feed.scopes()
    assert scopes.sections == [4.0, 8.0] and scopes.ahead == [[2.0, "b"], [6.0, "c"]]


def test_scopes_never_carry_a_number_json_cannot_hold() -> None:
    from engine.types import Features
    from live.screen.hud import HudState

    feed = WebFeed()
    nan = float("nan")
    feed.frame(None, Features(low=nan, mid=float("inf"), spectrum=(nan, 1.0), tempo_bpm=nan, beat_phase=nan),
               HudState(display_fps=nan, latency_ms=float("inf"), valence=nan))
    json.dumps(vars(feed.scopes()), allow_nan=False)  # raises on NaN or infinity
