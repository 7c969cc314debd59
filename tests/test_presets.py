"""Presets: every shipped look validates, errors point at the file/line/key, user presets shadow."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from live.presets.library import (
    BUILTIN_DIR,
    DEFAULT_PRESET,
    list_presets,
    load_preset,
    new_preset,
    to_toml,
    user_presets_dir,
)
from live.presets.schema import PresetError, parse_preset, preset_hash, read_preset_file

SHIPPED = sorted(BUILTIN_DIR.glob("*.toml"))


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty user preset folder, never the real ~/.config."""
    folder = tmp_path / "user-presets"
    monkeypatch.setenv("BEATCANVAS_PRESETS", str(folder))
    return folder


def _error(text: str, source: str = "look.toml") -> PresetError:
    with pytest.raises(PresetError) as info:
        parse_preset(text, source=source)
    return info.value


# --- the shipped library -------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_preset_validates(path: Path) -> None:
    preset = read_preset_file(path)
    assert preset.name == path.stem
    assert preset.description and "\n" not in preset.description


def test_library_has_ten_distinct_looks_a_default_and_a_commercial_lightning_one() -> None:
    presets = [read_preset_file(p) for p in SHIPPED]
    assert len(presets) >= 10
    assert DEFAULT_PRESET in {p.name for p in presets}
    assert len({preset_hash(p) for p in presets}) == len(presets), "two presets have identical settings"
    assert len({p.conditioning.style for p in presets}) == len(presets)
    hd = [p for p in presets if p.commercial_safe and p.model.model == "sdxl-lightning"]
    assert hd and (hd[0].model.width, hd[0].model.height) == (1024, 1024)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_resolved_toml_round_trips(path: Path) -> None:
    preset = read_preset_file(path)
    assert parse_preset(to_toml(preset)) == preset
    assert parse_preset(to_toml(preset, comments=False)) == preset


def test_load_default_with_no_name() -> None:
    assert load_preset().name == DEFAULT_PRESET
    assert load_preset(None) == load_preset(DEFAULT_PRESET)


# --- defaults and rules ----------------------------------------------------------------------


def test_empty_file_is_the_default_settings_and_frozen() -> None:
    preset = parse_preset("", name="blank")
    assert preset.name == "blank" and preset.model.steps == 2 and preset.model.width == 512
    with pytest.raises(ValidationError):
        preset.model.steps = 4  # type: ignore[misc]


def test_lightning_defaults_to_1024_and_4_steps_and_rejects_3_steps() -> None:
    preset = parse_preset('[model]\nmodel = "sdxl-lightning"\n')
    assert (preset.model.width, preset.model.height, preset.model.steps) == (1024, 1024, 4)
    e = _error('[model]\nmodel = "sdxl-lightning"\nsteps = 3\n')
    assert e.line == 3 and "steps 2, 4 or 8" in str(e)
    one = _error('[model]\nmodel = "sdxl-lightning"\nsteps = 1\n')  # the x0-prediction checkpoint: refused with why
    assert one.line == 3 and "predicts x0" in str(one)


def test_commercial_safe_refuses_turbo() -> None:
    e = _error('commercial_safe = true\n[model]\nmodel = "sdxl-turbo"\n')
    assert e.key == "commercial_safe" and e.line == 1 and "sdxl-lightning" in str(e)
    assert parse_preset('commercial_safe = true\n[model]\nrenderer = "procedural"\n').commercial_safe


def test_hash_follows_settings_not_name() -> None:
    a = parse_preset("[motion]\nfeedback = 0.5\n", name="a")
    b = parse_preset("[motion]\nfeedback = 0.5\n", name="b")
    c = parse_preset("[motion]\nfeedback = 0.51\n", name="a")
    assert preset_hash(a) == preset_hash(b) != preset_hash(c)
    assert len(preset_hash(a)) == 64


# --- error messages ----------------------------------------------------------------------------


def test_unknown_key_suggests_nearest_and_names_file_line_key() -> None:
    e = _error('description = "x"\n\n[model]\nstepz = 3\n', source="presets/mine.toml")
    assert "presets/mine.toml" in str(e) and "line 4" in str(e)
    assert "'stepz'" in str(e) and "did you mean 'steps'" in str(e)
    assert (e.file, e.line, e.key) == ("presets/mine.toml", 4, "model.stepz")
    assert "\n" not in str(e)


def test_unknown_section_and_dotted_key_suggestions() -> None:
    assert "did you mean [reactivity]" in str(_error("[reactivty]\nwarp = 1\n"))
    e = _error("motion.feedbak = 0.2\n")
    assert e.line == 1 and "did you mean 'feedback'" in str(e)


def test_a_misspelt_motif_is_a_preset_error_with_a_suggestion() -> None:
    e = _error("[procedural]\nmotifs = { ribon = 1.0 }\n")
    assert e.line == 2 and "unknown motif 'ribon'; did you mean 'ribbons'?" in str(e)


@pytest.mark.parametrize(
    "text, key, allowed",
    [
        ("[model]\nsteps = 12\n", "model.steps", "1..8"),
        ("[model]\nwidth = 500\n", "model.width", "in steps of 64"),
        ("[model]\nheight = 2048\n", "model.height", "256..1536"),
        ("[motion]\nfeedback = 1.5\n", "motion.feedback", "0.0..1.0"),
        ("[motion]\ncrossfade_ms = 20000\n", "motion.crossfade_ms", "0.0..10000.0"),
        ("[reactivity]\nbeat_zoom = 2.5\n", "reactivity.beat_zoom", "0.0..2.0"),
    ],
)
def test_out_of_range_value_names_key_value_and_range(text: str, key: str, allowed: str) -> None:
    e = _error(text)
    assert e.key == key and e.line == 2
    assert "out of range" in str(e) and allowed in str(e)


def test_wrong_type() -> None:
    e = _error('[model]\nsteps = "two"\n')
    assert e.line == 2 and "model.steps" in str(e) and "integer" in str(e)
    e = _error("[transitions]\nlock = 3\n")
    assert e.key == "transitions.lock" and "bool" in str(e)


def test_bad_choice_suggests_the_nearest_option() -> None:
    e = _error('[model]\nrenderer = "procedral"\n')
    assert "did you mean 'procedural'" in str(e) and "'auto'" in str(e)


def test_toml_syntax_error_names_its_line() -> None:
    e = _error('name = "x"\n[model]\nsteps = = 2\nwidth = 512\n', source="broken.toml")
    assert e.line == 3 and "broken.toml, line 3" in str(e) and "TOML syntax" in str(e)


def test_all_problems_are_reported_typo_first() -> None:
    e = _error("[model]\nsteps = 0\n[motion]\nfeedbak = 1\n")
    msg = str(e)
    assert msg.index("feedbak") < msg.index("model.steps") and "1 more" in msg


def test_name_must_match_file(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "other"\n')
    with pytest.raises(PresetError, match="does not match the file name"):
        read_preset_file(path)


# --- where presets live ------------------------------------------------------------------------


def test_user_preset_shadows_builtin(user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "default.toml").write_text('description = "mine"\n[motion]\nfeedback = 0.9\n')
    (user_dir / "extra.toml").write_text('description = "only mine"\n')
    assert load_preset("default").motion.feedback == 0.9
    infos = {i.name: i for i in list_presets()}
    assert infos["default"].source == "user" and infos["default"].shadows_builtin
    assert infos["default"].description == "mine"
    assert infos["extra"].source == "user" and not infos["extra"].shadows_builtin
    assert infos["cosmic"].source == "builtin"


def test_broken_user_preset_is_listed_with_its_error(user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "oops.toml").write_text("[model]\nsteps = 99\n")
    info = {i.name: i for i in list_presets()}["oops"]
    assert info.error and "model.steps" in info.error


def test_xdg_config_home_is_the_fallback(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("BEATCANVAS_PRESETS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert user_presets_dir() == tmp_path / "cfg" / "beatcanvas" / "presets"


def test_unknown_name_suggests_a_preset() -> None:
    with pytest.raises(PresetError, match="did you mean 'neon-noir'"):
        load_preset("neon-nior")


def test_new_writes_a_commented_copy_that_validates(user_dir: Path) -> None:
    path = new_preset("my-cosmos", "cosmic")
    assert path == user_dir / "my-cosmos.toml"
    text = path.read_text()
    assert text.count("\n# ") >= 20  # every setting explained
    mine = load_preset("my-cosmos")
    assert mine.name == "my-cosmos" and preset_hash(mine) == preset_hash(load_preset("cosmic"))
    with pytest.raises(PresetError, match="already exists"):
        new_preset("my-cosmos", "cosmic")
    with pytest.raises(PresetError, match="not a valid preset name"):
        new_preset("My Cosmos", "cosmic")


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_validate_reports_bad_files_and_fails(tmp_path, capsys) -> None:
    from live.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[motion]\nseed_polcy = 'drift'\n")
    assert main(["presets", "validate", str(BUILTIN_DIR / "default.toml")]) == 0
    assert main(["presets", "validate", str(BUILTIN_DIR / "default.toml"), str(bad)]) == 1
    out = capsys.readouterr()
    assert "did you mean 'seed_policy'" in out.out and "line 2" in out.out
    assert "1 of 2" in out.err


def test_cli_new_list_and_show(user_dir, capsys) -> None:
    from live.cli import main

    assert main(["presets", "new", "stage", "--from", "neon-noir"]) == 0
    assert (user_dir / "stage.toml").is_file()
    assert main(["presets", "list"]) == 0
    assert "stage" in capsys.readouterr().out
    assert main(["presets", "show", "stage"]) == 0
    shown = capsys.readouterr().out
    assert parse_preset(shown, name="stage") == load_preset("stage")
