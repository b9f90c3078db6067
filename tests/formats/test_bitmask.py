import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgenpu.formats import (
    BLOCK,
    FormatError,
    TruncatedStream,
    WeightFormat,
    block_sizes,
    decode,
    encode,
)
from edgenpu.formats.bitmask import MASK_BYTES
from edgenpu.precision import Precision, pack

BITMASK = WeightFormat.BITMASK


def reference_encode(values, precision):
    """The layout read straight off the spec, one block at a time."""
    out = b""
    for start in range(0, len(values), BLOCK):
        block = values[start : start + BLOCK]
        mask = sum(1 << i for i, v in enumerate(block) if v)
        out += mask.to_bytes(MASK_BYTES, "little") + pack([v for v in block if v], precision)
    return out


# Block 0: elements 0, 5, 31 non-zero; block 1 (partial, 3 elements): element 33.
VALUES = [0] * 35
VALUES[0], VALUES[5], VALUES[31], VALUES[33] = 3, -2, 1, -8


@pytest.mark.parametrize(
    ("precision", "golden", "sizes"),
    [
        # mask 0x80000021 LE, values 03 fe 01 | mask 0x00000002 LE, value f8
        (Precision.INT8, "2100008003fe01" + "02000000f8", [7, 5]),
        # int4 values 3, -2 -> e3; 1 + zero padding nibble -> 01 | -8 + padding -> 08
        (Precision.INT4, "21000080e301" + "0200000008", [6, 5]),
    ],
)
def test_golden_bytes(precision, golden, sizes):
    data = bytes.fromhex(golden)
    assert encode(VALUES, BITMASK, precision) == data
    values, consumed = decode(data, 35, BITMASK, precision)
    assert values.tolist() == VALUES
    assert consumed == len(data)
    assert block_sizes(data, 35, BITMASK, precision).tolist() == sizes


@given(
    st.sampled_from(list(Precision)),
    st.lists(st.integers(-8, 7).map(lambda v: v if v % 3 else 0), max_size=200),
)
def test_matches_reference_encoder(precision, values):
    assert encode(values, BITMASK, precision) == reference_encode(values, precision)


def test_truncation_in_mask_and_in_values():
    data = encode(VALUES, BITMASK, Precision.INT8)
    with pytest.raises(TruncatedStream) as info:
        decode(data[:9], 35, BITMASK, Precision.INT8)
    assert str(info.value) == (
        "truncated bitmask stream: block 1 at byte offset 7 needs 4 bytes, 2 available"
    )
    with pytest.raises(TruncatedStream) as info:
        decode(data[:11], 35, BITMASK, Precision.INT8, strict=False)
    assert str(info.value) == (
        "truncated bitmask stream: block 1 at byte offset 7 needs 5 bytes, 4 available"
    )


# Hand-built corrupt streams: (precision, count, hex, strict error, hardware output, consumed).
CORRUPT = {
    "listed zero": (
        Precision.INT8,
        3,
        "03000000" + "0005",
        r"^bitmask block 0: element 0 is marked non-zero but its value is 0$",
        [0, 5, 0],
        6,
    ),
    "mask past count": (
        # Bit 3 is past count 3: ignored by the hardware, but its value byte is still read.
        Precision.INT8,
        3,
        "09000000" + "0102",
        r"^bitmask block 0: mask 0x00000009 has bits set past count 3$",
        [1, 0, 0],
        6,
    ),
    "padding nibble": (
        Precision.INT4,
        3,
        "01000000" + "73",
        r"^bitmask block 0: padding nibble at byte offset 4 is 0x7, not 0$",
        [3, 0, 0],
        5,
    ),
    "padding nibble in a later block": (
        Precision.INT4,
        40,
        "00000000" + "01000000" + "f1",
        r"^bitmask block 1: padding nibble at byte offset 8 is 0xf, not 0$",
        [0] * 32 + [1] + [0] * 7,
        9,
    ),
}


@pytest.mark.parametrize("case", CORRUPT.values(), ids=list(CORRUPT))
def test_corrupt_streams(case):
    precision, count, hex_, message, hardware, consumed = case
    data = bytes.fromhex(hex_)
    with pytest.raises(FormatError, match=message):
        decode(data, count, BITMASK, precision)
    # Trailing bytes must not change what the hardware reads.
    values, used = decode(data + b"\xff" * 8, count, BITMASK, precision, strict=False)
    assert values.tolist() == hardware
    assert used == consumed
    assert block_sizes(data, count, BITMASK, precision).sum() == consumed


def test_full_mask_past_count_is_consumed():
    # A corrupt last block whose mask is all ones: 32 values are read although count is 1.
    data = bytes.fromhex("ffffffff") + bytes(range(1, 33))
    values, consumed = decode(data + b"\x00", 1, BITMASK, Precision.INT8, strict=False)
    assert values.tolist() == [1]
    assert consumed == 36
    assert block_sizes(data, 1, BITMASK, Precision.INT8).tolist() == [36]


def test_uint8_array_view_is_not_modified():
    dram = np.frombuffer(encode(VALUES, BITMASK, Precision.INT4) + bytes(100), dtype=np.uint8)
    before = dram.copy()
    values, consumed = decode(dram, 35, BITMASK, Precision.INT4)
    assert values.tolist() == VALUES and consumed == 11
    np.testing.assert_array_equal(dram, before)
