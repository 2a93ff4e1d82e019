import unicodedata

import pytest

from mta_pipeline.core.filenames import FilenameError, clean_field, parse_member_name


def test_title_with_commas_keeps_names_from_the_left_and_id_from_the_right():
    p = parse_member_name(
        "midis/Chopin, Frédéric, Nocturne in E-flat major, Op. 9, No. 2, AbC_-12345x.mid"
    )
    assert (p.surname, p.firstname, p.title, p.vid) == (
        "Chopin",
        "Frédéric",
        "Nocturne in E-flat major, Op. 9, No. 2",
        "AbC_-12345x",
    )


def test_empty_first_name():
    p = parse_member_name("Anonymous, , Minuet in G major, -bcdefghijk.mid")
    assert (p.surname, p.firstname, p.title, p.vid) == (
        "Anonymous",
        "",
        "Minuet in G major",
        "-bcdefghijk",
    )


def test_nfd_names_are_normalized_to_nfc():
    nfd = unicodedata.normalize("NFD", "Dvořák, Antonín, Humoresque, abcdefghijk.mid")
    p = parse_member_name(nfd)
    assert p.surname == "Dvořák" and unicodedata.is_normalized("NFC", p.firstname)


def test_cyrillic_names():
    p = parse_member_name("Рахманинов, Сергей, Прелюдия, abcdefghijk.mid")
    assert (p.surname, p.firstname, p.title) == ("Рахманинов", "Сергей", "Прелюдия")


@pytest.mark.parametrize(
    "name",
    [
        "Bach, Johann, Prelude, abc123.mid",  # id too short
        "Bach, Johann, Prelude, abcdefghij!.mid",  # bad character
        "Bach, Johann, Prelude abcdefghijk.mid",  # no separator before the id
        "Bach, abcdefghijk.mid",  # no title
        "Bach, Johann, Prelude, abcdefghijk.txt",
        ", Johann, Prelude, abcdefghijk.mid",  # no surname
    ],
)
def test_bad_names_raise_with_the_name(name):
    with pytest.raises(FilenameError, match=r"does not|is not"):
        parse_member_name(name)


def test_control_characters_leave_single_line_fields():
    """Breaks and tabs become one space, NUL, ESC, DEL and C1 go; the id is untouched."""
    p = parse_member_name(
        "midis/Ev\x00il\n\x1b[0m, Ann\t\x7f, Sonata \r\n\tin C\x9b major\u2028, abcdefghijk.mid"
    )
    assert (p.surname, p.firstname, p.title, p.vid) == (
        "Evil [0m",
        "Ann",
        "Sonata in C major",
        "abcdefghijk",
    )


def test_clean_field_keeps_ordinary_text_as_it_is():
    assert clean_field("Nocturne  Op. 9, No. 2 — Ré♭") == "Nocturne  Op. 9, No. 2 — Ré♭"
    assert clean_field("a\x1c\x1d\x1e\x1fb\x85c") == "a b c"


def test_a_surname_of_control_characters_alone_is_no_surname():
    with pytest.raises(FilenameError, match="is not 'Surname"):
        parse_member_name("\x1b\n\x00, Ann, Sonata, abcdefghijk.mid")
