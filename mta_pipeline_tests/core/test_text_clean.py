"""Tests for YouTube text cleaning: each rule of `clean_text` on its own, then idempotence."""

from __future__ import annotations

import unicodedata

import pytest

from mta_pipeline.core.text_clean import clean_text, decode_entities

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl
RED_HEART = "\u2764\ufe0f"  # heart + variation selector 16
THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone modifier


# --- Unicode normalization ---------------------------------------------------------------


def test_nfd_input_becomes_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Café élégant")
    assert nfd != "Café élégant"  # the sample really is decomposed
    out = clean_text(nfd)
    assert out == "Café élégant"
    assert unicodedata.is_normalized("NFC", out)


def test_combining_mark_separated_by_control_still_composes() -> None:
    # NFC must hold for the final text, not only for the input.
    assert clean_text("e\x00\u0301") == "\u00e9"


# --- HTML tags ---------------------------------------------------------------------------


def test_tags_dropped_when_html() -> None:
    raw = 'Score: <a href="https://imslp.org/x">IMSLP</a> <b>bold</b> <i>it</i>'
    assert clean_text(raw, is_html=True) == "Score: IMSLP bold it"


@pytest.mark.parametrize("br", ["<br>", "<br/>", "<br />", "<BR>", "</p>"])
def test_line_break_tags_become_newlines_when_html(br: str) -> None:
    assert clean_text(f"first{br}second", is_html=True) == "first\nsecond"


def test_tags_kept_in_plain_text() -> None:
    raw = "a <b>bold</b> claim, 1 < 2 > 0, line<br>same"
    assert clean_text(raw) == raw


def test_html_tags_dropped_before_entities_are_unescaped() -> None:
    # An escaped tag in HTML is text the author typed: it must survive as text.
    assert clean_text("use &lt;br&gt; here", is_html=True) == "use <br> here"


# --- Entities ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Rock &amp; Roll", "Rock & Roll"),
        ("&quot;Moonlight&quot; Sonata", '"Moonlight" Sonata'),
        ("Chopin&#39;s best", "Chopin's best"),
        ("caf&eacute;", "café"),
    ],
)
def test_entities_unescaped_in_html_and_kept_in_plain_text(raw: str, expected: str) -> None:
    assert clean_text(raw, is_html=True) == expected
    assert clean_text(raw, is_html=False) == raw  # the author typed it: kept, and idempotent


# --- Newlines ----------------------------------------------------------------------------


@pytest.mark.parametrize("sep", ["\r\n", "\r", "\u2028", "\u2029"])
def test_newline_variants_become_newline(sep: str) -> None:
    assert clean_text(f"one{sep}two") == "one\ntwo"


def test_crlf_is_one_newline_not_two() -> None:
    assert clean_text("a\r\nb\r\nc") == "a\nb\nc"


# --- Control characters ------------------------------------------------------------------


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x85", "\x7f", "\x0b", "\x0c"])
def test_control_characters_removed(control: str) -> None:
    assert clean_text(f"Bra{control}vo") == "Bravo"


def test_newline_kept_among_controls() -> None:
    assert clean_text("line\x00 one\nline two\x1b") == "line one\nline two"


@pytest.mark.parametrize("emoji", [FAMILY, RED_HEART, THUMBS_UP_MEDIUM])
def test_emoji_sequences_survive_byte_identical(emoji: str) -> None:
    out = clean_text(f"Beautiful {emoji} thanks")
    assert out == f"Beautiful {emoji} thanks"
    assert emoji.encode() in out.encode()


def test_emoji_alone_survives() -> None:
    text = FAMILY + RED_HEART + THUMBS_UP_MEDIUM
    assert clean_text(text).encode() == text.encode()


# --- Spaces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spaces",
    [" ", "  ", "\t", " \t \t", "\u00a0", "\u00a0 \u00a0", "\u3000", "\u2003\u2009"],
)
def test_runs_of_spaces_become_one_space(spaces: str) -> None:
    assert clean_text(f"Op.{spaces}27") == "Op. 27"


def test_every_unicode_space_separator_collapses() -> None:
    zs = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"]
    for space in zs:
        assert clean_text(f"a{space}{space}b") == "a b", hex(ord(space))


def test_spaces_at_line_ends_dropped() -> None:
    assert clean_text("first line   \n   second line\t\nthird") == "first line\nsecond line\nthird"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\nb", "a\nb"),
        ("a\n\nb", "a\n\nb"),
        ("a\n\n\nb", "a\n\nb"),
        ("a\n\n\n\n\n\nb", "a\n\nb"),
        ("a\n \n\t\n \u3000 \nb", "a\n\nb"),  # blank lines made of spaces are blank too
    ],
)
def test_blank_lines_beyond_one_dropped(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize("raw", ["  padded  ", "\n\npadded\n\n", "\t\u00a0padded\u3000\r\n"])
def test_trimmed(raw: str) -> None:
    assert clean_text(raw) == "padded"


# --- Missing and untouched text -----------------------------------------------------------


@pytest.mark.parametrize("is_html", [False, True])
@pytest.mark.parametrize("raw", [None, "", "   ", "\n\r\n\t", "\x00\x07", "\u3000\u2028"])
def test_missing_or_blank_text_is_empty_string(raw: str | None, is_html: bool) -> None:
    assert clean_text(raw, is_html=is_html) == ""


def test_html_made_only_of_tags_is_empty_string() -> None:
    assert clean_text("<p><br><br/></p>", is_html=True) == ""


@pytest.mark.parametrize(
    "text",
    [
        "日本語のテキスト",
        "Привет, мир",
        "中文评论：非常好听！",
        "한국어 댓글입니다",
        "שלום עולם",
        "مرحبا بالعالم",
        "Ελληνικά κείμενα",
    ],
)
def test_non_latin_scripts_untouched(text: str) -> None:
    assert clean_text(text) == text


def test_chapter_timestamps_kept() -> None:
    raw = "Tracklist:\r\n0:00 Prelude\r\n2:15  Fugue\r\n1:02:03 Finale (Allegro)"
    assert clean_text(raw) == "Tracklist:\n0:00 Prelude\n2:15 Fugue\n1:02:03 Finale (Allegro)"


def test_clean_text_rules_together() -> None:
    raw = (
        "  <b>Nocturne</b> Op.&nbsp;9 &amp; more\u00a0\u00a0\r\n"
        f"\r\n\r\n\r\n0:00\tIntro\x07  \u2028Thanks {RED_HEART}  "
    )
    expected = f"Nocturne Op. 9 & more\n\n0:00 Intro\nThanks {RED_HEART}"
    assert clean_text(raw, is_html=True) == expected


# --- Idempotence -------------------------------------------------------------------------

NASTY = [
    "",
    "plain",
    "  \n\n\n a  \n\n\n\n b \u3000 ",
    "Rock &amp; Roll &quot;live&quot; &#39;x&#39;",
    "a\r\n\r\n\r\nb\rc\u2028d\u2029e",
    "\x00\x07\x1b\x85 controls \x7f",
    f"{FAMILY} {RED_HEART} {THUMBS_UP_MEDIUM}",
    unicodedata.normalize("NFD", "Dvořák — Ñandú — Ångström"),
    "e\x00\u0301",
    "tab\t\tand\u00a0\u00a0nbsp\u3000\u3000ideo",
    "日本語のテキスト\n\n\n\nПривет, мир",
    "0:00 Intro\n1:23 Theme\n10:45 Coda",
    "line end   \n   line start",
    "&#13;&#10;entity newlines&#9;tab",
    "<a href='x'>link</a><br><br><br><br>after",
]


@pytest.mark.parametrize("is_html", [False, True])
@pytest.mark.parametrize("raw", NASTY)
def test_idempotent(raw: str, is_html: bool) -> None:
    once = clean_text(raw, is_html=is_html)
    assert clean_text(once, is_html=is_html) == once


@pytest.mark.parametrize("raw", ["write &amp;amp; in HTML", "&amp;lt;3 this"])
def test_idempotent_on_double_escaped_entities(raw: str) -> None:
    once = clean_text(raw)
    assert clean_text(once) == once


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (
            "Hart &amp; Cole Hall, the &quot;encore&quot; take",
            'Hart & Cole Hall, the "encore" take',
        ),
        ("it&#39;s &#x27;here&#x27; &lt;3", "it's 'here' <3"),
        (
            "https://x.org/?a=1&region=us&notify=1&para=2",
            "https://x.org/?a=1&region=us&notify=1&para=2",
        ),
        ("R&B & jazz; Rock&Roll", "R&B & jazz; Rock&Roll"),
        ("&notanentity; stays", "&notanentity; stays"),
    ],
)
def test_decode_entities_decodes_only_complete_entities(raw: str, decoded: str) -> None:
    assert decode_entities(raw) == decoded
