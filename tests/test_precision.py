"""int8/int4 storage: the packing rule every other layer derives from."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgenpu.precision import Precision, pack, packed_size, unpack


def test_int4_packs_low_nibble_first():
    assert pack(np.array([1, -1, -8]), Precision.INT4) == bytes([0xF1, 0x08])
    assert pack(np.array([-128, 127]), Precision.INT8) == bytes([0x80, 0x7F])


@given(st.sampled_from(list(Precision)), st.data())
def test_round_trip(precision, data):
    values = data.draw(st.lists(st.integers(precision.min, precision.max), max_size=70))
    packed = pack(np.array(values, dtype=np.int64), precision)
    assert len(packed) == packed_size(len(values), precision)
    assert unpack(packed, len(values), precision).tolist() == values


def test_range_and_length_errors():
    with pytest.raises(ValueError, match=r"value 8 does not fit int4 \[-8, 7\]"):
        pack(np.array([8]), Precision.INT4)
    with pytest.raises(ValueError, match="3 int4 values need 2 bytes, got 1"):
        unpack(b"\x00", 3, Precision.INT4)


def test_labels():
    assert Precision.parse("int4") is Precision.INT4
    with pytest.raises(
        ValueError, match=r"unknown precision 'int2' \(expected one of int8, int4\)"
    ):
        Precision.parse("int2")
