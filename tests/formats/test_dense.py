import numpy as np
import pytest

from edgenpu.formats import FormatError, TruncatedStream, WeightFormat, block_sizes, decode, encode
from edgenpu.precision import Precision

DENSE = WeightFormat.DENSE
VALUES = [1, -1, 0, 7, -8]


@pytest.mark.parametrize(
    ("precision", "golden"),
    [
        (Precision.INT8, "01ff0007f8"),
        # int4: low nibble first; the odd count leaves the last high nibble 0.
        (Precision.INT4, "f17008"),
    ],
)
def test_golden_bytes(precision, golden):
    assert encode(VALUES, DENSE, precision).hex() == golden
    assert decode(bytes.fromhex(golden), 5, DENSE, precision)[0].tolist() == VALUES


@pytest.mark.parametrize(("precision", "full"), [(Precision.INT8, 32), (Precision.INT4, 16)])
def test_block_sizes_are_32_element_blocks(precision, full):
    data = encode(np.ones(70, dtype=np.int8), DENSE, precision)
    sizes = block_sizes(data, 70, DENSE, precision)
    assert sizes.tolist() == [full, full, len(data) - 2 * full]


def test_truncation_names_the_block():
    data = encode(np.ones(70, dtype=np.int8), DENSE, Precision.INT8)
    with pytest.raises(TruncatedStream) as info:
        decode(data[:40], 70, DENSE, Precision.INT8)
    assert str(info.value) == (
        "truncated dense stream: block 1 at byte offset 32 needs 32 bytes, 8 available"
    )
    with pytest.raises(TruncatedStream) as info:
        decode(data[:65], 70, DENSE, Precision.INT8)
    assert str(info.value) == (
        "truncated dense stream: block 2 at byte offset 64 needs 6 bytes, 1 available"
    )


def test_padding_nibble():
    data = bytes.fromhex("71")
    with pytest.raises(
        FormatError, match=r"^dense block 0: padding nibble at byte offset 0 is 0x7, not 0$"
    ):
        decode(data, 1, DENSE, Precision.INT4)
    # The hardware ignores the unused nibble.
    assert decode(data, 1, DENSE, Precision.INT4, strict=False)[0].tolist() == [1]
