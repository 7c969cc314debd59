"""Lyrics: .lrc files as players read them, and the picture words of each line."""

from __future__ import annotations

import pytest

from engine.directing.imagery import LyricPrompter, extract_imagery
from engine.directing.lyrics import lyrics_beside, parse_lrc, read_lrc
from engine.errors import BeatcanvasError

SONG = """[ti:Night Drive]
[ar:Nobody]
[00:01.00]Neon on the river
[00:03.50][00:09.00]We were dancing under golden lights
[00:06.00]<00:06.00>Burning <00:06.40>city <00:06.90>skyline
[00:08.00]
"""


def test_three_lines_each_for_their_span():
    lyrics = parse_lrc(SONG)
    assert lyrics.meta["ti"] == "Night Drive" and not lyrics.problems
    assert [(ln.start, ln.end, ln.text) for ln in lyrics.lines] == [
        (1.0, 3.5, "Neon on the river"),
        (3.5, 6.0, "We were dancing under golden lights"),
        (6.0, 8.0, "Burning city skyline"),  # an empty stamp ends it
        (9.0, 19.0, "We were dancing under golden lights"),  # the last line lasts at most 10 s
    ]
    assert lyrics.at(0.99) is None and lyrics.at(1.0).text == "Neon on the river"
    assert lyrics.at(8.5) is None and lyrics.at(9.5).line == 4


def test_enhanced_word_timings_tell_what_has_been_sung():
    line = parse_lrc(SONG).at(6.5)
    assert [w.text for w in line.words] == ["Burning", "city", "skyline"]
    assert line.sung(6.5) == "Burning city" and line.sung(7.0) == "Burning city skyline"


def test_offset_shifts_every_line():
    lyrics = parse_lrc("[offset:+500]\n[00:02.00]hello sunshine\n")
    assert lyrics.lines[0].start == 1.5


def test_malformed_lines_are_reported_with_their_number_and_skipped():
    text = SONG + "no time here\n[0x:12]broken stamp\n[00:75.00]too many seconds\n[00:12.00]Still plays\n"
    lyrics = parse_lrc(text, source="song.lrc")
    assert len(lyrics.problems) == 3
    assert lyrics.problems[0].startswith("song.lrc, line 7:") and "skipped" in lyrics.problems[0]
    assert "line 8" in lyrics.problems[1] and "line 9" in lyrics.problems[2] and "60 or more" in lyrics.problems[2]
    assert lyrics.at(12.5).text == "Still plays"


def test_files_beside_the_track_and_bad_files(tmp_path):
    track = tmp_path / "song.flac"
    track.write_bytes(b"")
    assert lyrics_beside(track) is None
    (tmp_path / "song.lrc").write_text("\ufeff" + SONG, encoding="utf-8")  # a BOM is fine
    assert lyrics_beside(track) == tmp_path / "song.lrc"
    assert read_lrc(tmp_path / "song.lrc").meta["ti"] == "Night Drive"
    (tmp_path / "latin.lrc").write_bytes("[00:01.00]caf\xe9".encode("latin-1"))
    with pytest.raises(BeatcanvasError, match="save the .lrc as UTF-8"):
        read_lrc(tmp_path / "latin.lrc")
    with pytest.raises(BeatcanvasError, match="no such lyrics file"):
        read_lrc(tmp_path / "missing.lrc")


@pytest.mark.parametrize("line, text", [
    ("I'm walking through the burning city tonight", "walking, burning city"),
    ("Neon on the river, rain on the glass", "neon, river, rain, glass"),
    ("We were dancing, dancing under golden lights", "dancing, golden lights"),
    ("Oh yeah yeah baby", ""),
])
def test_imagery_keeps_the_picture_words(line, text):
    assert extract_imagery(line).text == text


def test_emphasis_and_template():
    assert extract_imagery("Fire in the sky").emphasis == 1.0
    assert extract_imagery("FIRE in the sky!").emphasis == 1.5
    assert extract_imagery("fire in the sky!!!").emphasis == 1.5  # capped
    assert extract_imagery("fire in the sky!", emphasis=False).emphasis == 1.0
    assert extract_imagery("fire in the sky", template="a painting of {scene}").text == "a painting of fire, sky"


def test_a_local_rewriter_can_replace_the_template():
    seen = []

    def rewriter(line, imagery):
        seen.append((line, imagery.phrases))
        return "a burning skyline at night"

    prompter = LyricPrompter(rewriter=rewriter)
    assert prompter("Burning city skyline").text == "a burning skyline at night"
    prompter("Burning city skyline")
    assert seen == [("Burning city skyline", ("burning city skyline",))]  # once per distinct line
