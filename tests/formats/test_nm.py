import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgenpu.formats import FormatError, TruncatedStream, WeightFormat, decode, encode, encoded_size
from edgenpu.formats.nm import block_bytes
from edgenpu.precision import Precision, pack

NM = WeightFormat.NM2_4


def block(pairs, precision):
    """One nm2_4 block from 16 (index, value) slots, read straight off the spec."""
    assert len(pairs) == 16
    meta = sum(index << (2 * s) for s, (index, _) in enumerate(pairs))
    return meta.to_bytes(4, "little") + pack([value for _, value in pairs], precision)


def reference_encode(values, precision):
    """Canonical slots chosen one group at a time."""
    values = list(values) + [0] * (-len(values) % 32)
    out = b""
    for start in range(0, len(values), 32):
        pairs = []
        for g in range(start, start + 32, 4):
            group = values[g : g + 4]
            nonzero = [i for i in range(4) if group[i]]
            filler = [i for i in range(4) if not group[i]]
            pairs += [(i, group[i]) for i in sorted((nonzero + filler)[:2])]
        out += block(pairs, precision)
    return out


# Groups [0,0,0,5] [4,0,0,0] [0,-1,0,2], then 5 padding groups of zeros.
VALUES = [0, 0, 0, 5, 4, 0, 0, 0, 0, -1, 0, 2]


@pytest.mark.parametrize(
    ("precision", "golden"),
    [
        # slot indices 0,3 | 0,1 | 1,3 | (0,1) x5 -> 0x44444d4c, LE
        (Precision.INT8, "4c4d4444" + "000504" + "00ff02" + "00" * 10),
        (Precision.INT4, "4c4d4444" + "50042f" + "00" * 5),
    ],
)
def test_golden_bytes(precision, golden):
    assert encode(VALUES, NM, precision).hex() == golden
    values, consumed = decode(bytes.fromhex(golden), 12, NM, precision)
    assert values.tolist() == VALUES
    assert consumed == len(golden) // 2 == block_bytes(precision)


def test_block_bytes():
    assert (block_bytes(Precision.INT8), block_bytes(Precision.INT4)) == (20, 12)


@st.composite
def sparse_2_4(draw):
    groups = draw(
        st.lists(
            st.tuples(
                st.sets(st.integers(0, 3), max_size=2),
                st.tuples(st.integers(-8, 7), st.integers(-8, 7)),
            ),
            max_size=40,
        )
    )
    values = []
    for positions, pair in groups:
        group = [0] * 4
        for position, value in zip(sorted(positions), pair, strict=False):
            group[position] = value
        values += group
    return values[: draw(st.integers(0, len(values)))]


@given(st.sampled_from(list(Precision)), sparse_2_4())
def test_matches_reference_encoder(precision, values):
    assert encode(values, NM, precision) == reference_encode(values, precision)


def test_rejects_more_than_two_nonzeros_per_group():
    values = np.zeros(30, dtype=np.int8)
    values[20:23] = [1, -1, 3]
    for size in (encode, encoded_size):
        with pytest.raises(FormatError) as info:
            size(values, NM, Precision.INT8)
        assert str(info.value) == "not 2:4 sparse: group 5 (elements 20..23) has 3 non-zeros"


def test_truncation_names_the_block():
    data = encode(np.zeros(64, dtype=np.int8), NM, Precision.INT4)
    with pytest.raises(TruncatedStream) as info:
        decode(data[:15], 64, NM, Precision.INT4, strict=False)
    assert str(info.value) == (
        "truncated nm2_4 stream: block 1 at byte offset 12 needs 12 bytes, 3 available"
    )


ZEROS = [(0, 0), (1, 0)] * 7  # seven canonical all-zero groups

# Hand-built corrupt streams: (count, slots, strict error, hardware output).
CORRUPT = {
    "duplicate index, later slot wins": (
        4,
        [(2, 5), (2, -3)] + ZEROS,
        r"^nm2_4 block 0, group 0 \(elements 0\.\.3\): slot indices \(2, 2\) are not "
        r"strictly increasing$",
        [0, 0, -3, 0],
    ),
    "decreasing indices": (
        8,
        [(0, 0), (1, 0), (3, 1), (1, 2)] + ZEROS[2:],
        r"^nm2_4 block 0, group 1 \(elements 4\.\.7\): slot indices \(3, 1\) are not "
        r"strictly increasing$",
        [0, 0, 0, 0, 0, 2, 0, 1],
    ),
    "filler not at the smallest free index": (
        4,
        [(0, 0), (2, 0)] + ZEROS,
        r"^nm2_4 block 0, group 0 \(elements 0\.\.3\): slot indices \(0, 2\) are not "
        r"canonical \(expected \(0, 1\)\)$",
        [0, 0, 0, 0],
    ),
    "non-zero placed in the wrong slot": (
        4,
        [(1, 5), (2, 0)] + ZEROS,
        r"^nm2_4 block 0, group 0 \(elements 0\.\.3\): slot indices \(1, 2\) are not "
        r"canonical \(expected \(0, 1\)\)$",
        [0, 5, 0, 0],
    ),
    "value past count": (
        2,
        [(0, 1), (3, 5)] + ZEROS,
        r"^nm2_4 block 0: element 3 past count 2 holds 5, not 0$",
        [1, 0],
    ),
}


@pytest.mark.parametrize("precision", list(Precision))
@pytest.mark.parametrize("case", CORRUPT.values(), ids=list(CORRUPT))
def test_corrupt_streams(case, precision):
    count, slots, message, hardware = case
    data = block(slots, precision)
    with pytest.raises(FormatError, match=message):
        decode(data, count, NM, precision)
    values, consumed = decode(data + b"\x5a" * 30, count, NM, precision, strict=False)
    assert values.tolist() == hardware
    assert consumed == block_bytes(precision)


def test_error_names_the_global_group_in_a_later_block():
    data = encode(np.zeros(64, dtype=np.int8), NM, Precision.INT8)
    data = data[:20] + block([(0, 0), (1, 0)] * 3 + [(1, 0), (1, 0)] + ZEROS[:8], Precision.INT8)
    with pytest.raises(FormatError, match=r"^nm2_4 block 1, group 11 \(elements 44\.\.47\): "):
        decode(data, 64, NM, Precision.INT8)
