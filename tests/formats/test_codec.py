import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenpu.formats import (
    BLOCK,
    FormatError,
    TruncatedStream,
    WeightFormat,
    block_sizes,
    decode,
    encode,
    encoded_size,
    ideal_size,
)
from edgenpu.precision import Precision

FORMATS = list(WeightFormat)
PRECISIONS = list(Precision)


def make_values(rng, count, density, fmt, precision, dtype=np.int8):
    """``count`` random values with about ``density`` non-zeros (2:4 sparse for nm2_4)."""
    nonzero = rng.integers(1, precision.max + 1, count) * rng.choice([-1, 1], count)
    present = rng.random(count) < density
    if fmt is WeightFormat.NM2_4:
        # Keep at most two randomly chosen positions of every aligned group of four.
        rank = np.argsort(np.argsort(rng.random(-(-count // 4) * 4).reshape(-1, 4), axis=1))
        present &= (rank < 2).reshape(-1)[:count]
    return (nonzero * present).astype(dtype)


@st.composite
def cases(draw):
    fmt = draw(st.sampled_from(FORMATS))
    precision = draw(st.sampled_from(PRECISIONS))
    count = draw(st.one_of(st.integers(0, 300), st.sampled_from([0, 1, 31, 32, 33, 64, 65])))
    density = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    dtype = draw(st.sampled_from([np.int8, np.int64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return fmt, precision, make_values(rng, count, density, fmt, precision, dtype)


@settings(max_examples=300)
@given(cases(), st.booleans(), st.binary(max_size=40))
def test_round_trip(case, strict, trailing):
    fmt, precision, values = case
    data = encode(values, fmt, precision)
    assert len(data) == encoded_size(values, fmt, precision)
    for stream in (data, data + trailing, np.frombuffer(data + trailing, dtype=np.uint8)):
        decoded, consumed = decode(stream, values.size, fmt, precision, strict=strict)
        assert decoded.dtype == np.int8
        np.testing.assert_array_equal(decoded, values)
        assert consumed == len(data)
    sizes = block_sizes(data + trailing, values.size, fmt, precision)
    assert len(sizes) == -(-values.size // BLOCK)
    assert sizes.sum() == len(data)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize(("count", "density"), [(1, 1.0), (33, 0.0), (70, 0.5), (97, 1.0)])
def test_every_truncation_point_raises(fmt, precision, count, density):
    values = make_values(np.random.default_rng(count), count, density, fmt, precision)
    data = encode(values, fmt, precision)
    for k in range(len(data)):
        for strict in (True, False):
            with pytest.raises(TruncatedStream):
                decode(data[:k], count, fmt, precision, strict=strict)
        with pytest.raises(TruncatedStream):
            block_sizes(data[:k], count, fmt, precision)


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_shape_is_flattened_row_major(fmt):
    matrix = np.array([[1, 0, 0, 2], [0, 0, -3, 0]])
    data = encode(matrix, fmt, Precision.INT4)
    assert decode(data, 8, fmt, Precision.INT4)[0].tolist() == [1, 0, 0, 2, 0, 0, -3, 0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("precision", "bad"), [(Precision.INT4, 8), (Precision.INT4, -9), (Precision.INT8, 128)]
)
def test_rejects_out_of_range_values(fmt, precision, bad):
    values = [0, 1, bad, 0]
    message = f"value {bad} does not fit {precision.label} [{precision.min}, {precision.max}]"
    for function in (encode, encoded_size):
        with pytest.raises(FormatError) as info:
            function(values, fmt, precision)
        assert str(info.value) == message


def test_rejects_non_integer_values():
    with pytest.raises(TypeError, match=r"^weight values must be integers, not float64$"):
        encode([0.5], WeightFormat.DENSE, Precision.INT8)


def test_empty_tensor():
    for fmt in FORMATS:
        assert encode([], fmt, Precision.INT8) == b""
        values, consumed = decode(b"\x01\x02", 0, fmt, Precision.INT8)
        assert values.shape == (0,) and consumed == 0


@pytest.mark.parametrize("count", [-1, 2.0, True])
def test_rejects_bad_count(count):
    with pytest.raises(ValueError, match=r"^count must be a non-negative integer, not "):
        decode(b"", count, WeightFormat.DENSE, Precision.INT8)


def test_rejects_non_uint8_stream_array():
    with pytest.raises(TypeError, match=r"^a weight stream array must be uint8, not int8$"):
        decode(np.zeros(4, dtype=np.int8), 4, WeightFormat.DENSE, Precision.INT8)


def test_ideal_size_counts_only_nonzero_bits():
    values = [0, 3, 0, -1, 5]
    assert ideal_size(values, Precision.INT8) == 3.0
    assert ideal_size(values, Precision.INT4) == 1.5
