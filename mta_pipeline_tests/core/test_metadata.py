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
