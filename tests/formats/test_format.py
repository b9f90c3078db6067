import pickle

import pytest

from edgenpu.formats import BLOCK, FormatError, TruncatedStream, WeightFormat


def test_isa_encodings_and_labels():
    assert [(f.value, f.label) for f in WeightFormat] == [
        (0, "dense"),
        (1, "bitmask"),
        (2, "nm2_4"),
    ]


@pytest.mark.parametrize("fmt", list(WeightFormat))
def test_parse_round_trips_label(fmt):
    assert WeightFormat.parse(fmt.label) is fmt


def test_parse_names_the_choices():
    with pytest.raises(ValueError) as info:
        WeightFormat.parse("rle")
    assert str(info.value) == (
        "unknown weight format 'rle' (expected one of dense, bitmask, nm2_4)"
    )


def test_block_is_one_32_bit_word_of_mask():
    assert BLOCK == 32


def test_truncated_stream_message_and_fields():
    err = TruncatedStream(WeightFormat.BITMASK, 3, 96, 12, 5)
    assert isinstance(err, FormatError) and isinstance(err, ValueError)
    assert (
        str(err)
        == "truncated bitmask stream: block 3 at byte offset 96 needs 12 bytes, 5 available"
    )
    assert (err.fmt, err.block, err.offset, err.needed, err.available) == (
        WeightFormat.BITMASK,
        3,
        96,
        12,
        5,
    )


def test_truncated_stream_pickles():
    # Sweeps run on Dask workers and ship exceptions back to the client.
    err = pickle.loads(pickle.dumps(TruncatedStream(WeightFormat.NM2_4, 1, 20, 20, 3)))
    assert isinstance(err, TruncatedStream)
    assert (
        str(err) == "truncated nm2_4 stream: block 1 at byte offset 20 needs 20 bytes, 3 available"
    )
