import pytest

from mta_pipeline.core.metadata import COLUMNS, MetadataError, read_metadata

HEADER = "\t".join(COLUMNS)


def row(**kw):
    base = dict.fromkeys(COLUMNS, "")
    base.update(kw)
    return "\t".join(base[c] for c in COLUMNS)


def test_quirks_become_nulls_and_numbers_are_typed():
    text = "\n".join(
        [
            HEADER,
            row(
                surname="Chopin",
                firstname="Frédéric",
                nationality="unknown",
                birth="1810",
                youtube_id="abcdefghijk",
                similarity="0.93",
                giant_midi_piano="1",
                audio_duration="123.5",
                surname_in_youtube_title="1",
            ),
            row(
                surname="Bach",
                music='Prelude "in" C, BWV 846',
                similarity="unknown",
                giant_midi_piano="0",
            ),
            row(surname="Odd", similarity="high", giant_midi_piano="1"),
        ]
    )
    df, unparsed = read_metadata(text)
    assert list(df.columns) == ["row_index", *COLUMNS]
    assert df["row_index"].tolist() == [0, 1, 2]
    assert df.loc[0, "nationality"] is None and df.loc[0, "birth"] == "1810"
    assert df.loc[0, "similarity"] == pytest.approx(0.93)
    assert df.loc[1, "music"] == 'Prelude "in" C, BWV 846'  # no quoting: quotes are text
    assert df["giant_midi_piano"].tolist() == [1, 0, 1]
    assert unparsed == 1  # "high" is reported, not silently dropped


def test_missing_columns_are_named():
    with pytest.raises(MetadataError, match="lacks columns"):
        read_metadata("surname\tfirstname\nA\tB\n")


REAL_HEADER = (
    "surname\tfirstname\tmusic\tnationality\tbirth\tdeath\tyoutube_title\tyoutube_id\tsimilarity"
    "\tpiano_solo_prob\taudio_name\taudio_duration\tgiant_midi_piano\tsplit"
    "\tsurname_in_youtube_title"
)


def test_the_real_file_format_with_unknown_years_and_extra_columns():
    """GiantMIDI's `full_music_pieces_youtube_similarity_pianosoloprob_split.csv` header, in its
    order, with `unknown` years, an empty split outside the release and a column added later."""
    lines = [
        REAL_HEADER + "\tcomposer_wiki",
        "Chopin\tFrédéric\tNocturne Op.9 No.2\tPolish\t1810\t1849\tChopin - Nocturne Op.9 No.2"
        "\tabcdefghijk\t0.95\t0.9987\tChopin, Frédéric, Nocturne Op.9 No.2, abcdefghijk\t271.04"
        "\t1\ttrain\t1\thttps://en.wikipedia.org/wiki/Chopin",
        "Anonymous\t\tSonata\tunknown\tunknown\tunknown\tPiano sonata live\tlmnopqrstuv\t0.41"
        "\t0.12\tAnonymous, , Sonata, lmnopqrstuv\t600.5\t0\t\t0\t",
    ]
    df, unparsed = read_metadata("\n".join(lines) + "\n")
    assert unparsed == 0 and len(df) == 2 and "composer_wiki" not in df.columns
    chopin, anon = df.to_dict("records")
    assert (chopin["row_index"], chopin["giant_midi_piano"], chopin["split"]) == (0, 1, "train")
    assert chopin["surname_in_youtube_title"] == 1 and chopin["piano_solo_prob"] == 0.9987
    assert anon["birth"] is None and anon["death"] is None and anon["nationality"] is None
    assert anon["split"] is None and anon["giant_midi_piano"] == 0 and anon["row_index"] == 1


def test_a_utf8_byte_order_mark_is_allowed():
    data = ("\ufeff" + HEADER + "\n" + row(surname="Bach", giant_midi_piano="1") + "\n").encode()
    df, _ = read_metadata(data)
    assert df.loc[0, "surname"] == "Bach" and df.loc[0, "giant_midi_piano"] == 1


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "byte 0x89 at offset 0 is not UTF-8"),
        (HEADER.encode("utf-16"), "it is UTF-16"),
        (HEADER.encode("utf-16-le"), "it holds NUL characters"),
        (b"  <!doctype html><title>404</title>", "it is an HTML page"),
        (b"name,id\nBach,abcdefghijk\n", "its header has none of them (it starts 'name,id')"),
        (HEADER.replace("\tsplit", "").encode(), "it lacks columns ['split']"),
        (b"", "it is empty"),
    ],
)
def test_garbage_is_one_line_naming_the_file_and_what_was_expected(data, problem):
    with pytest.raises(MetadataError) as raised:
        read_metadata(data, "https://host/meta.csv")
    message = str(raised.value)
    assert message.startswith("https://host/meta.csv is not GiantMIDI's metadata CSV (")
    assert "tab-separated UTF-8 text" in message and problem in message and "\n" not in message
