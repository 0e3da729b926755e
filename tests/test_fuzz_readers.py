"""Fuzzing the readers: whatever bytes they are given, they load the data or raise DataError.

No example is timed (timing is for benchmarks/): a reader that hung on some bytes would stop the run.
"""

from __future__ import annotations

import gzip
import math
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from microgradx.data import load_png_folder, read_idx
from microgradx.errors import DataError

# At least 150 examples, or more when a thorough hypothesis profile is loaded; a tiny file each, so quick.
FUZZ = settings(
    max_examples=max(150, settings().max_examples),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

IMAGES = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
IDX_IMAGES = struct.pack(">IIII", 2051, 3, 28, 28) + IMAGES.tobytes()
GZ_IMAGES = gzip.compress(IDX_IMAGES)


@pytest.fixture(scope="module")
def scratch():
    # Module-scoped on purpose: hypothesis runs many examples per test, and each one overwrites the file.
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def outcome_of_read_idx(path: Path) -> np.ndarray | DataError:
    try:
        return read_idx(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return exc


# ---------------------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------------------


def expected_idx(content: bytes) -> tuple[int, ...] | None:
    """The shape an uncompressed IDX file must load as, or None if it must be refused (our own parser)."""
    if len(content) < 4 or content[:3] != b"\0\0\x08" or content[3] not in (1, 3):
        return None
    ndim = content[3]
    if len(content) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", content[4 : 4 + 4 * ndim])
    # numpy refuses a shape whose non-zero sizes multiply past its index range, even if another size is 0.
    if math.prod(d for d in dims if d) > np.iinfo(np.intp).max:
        return None
    return dims if len(content) == 4 + 4 * ndim + math.prod(dims) else None


def read_written_idx(path, content: bytes, gz: bool):
    """What read_idx makes of ``content`` written to ``path`` (gzipped or not), and the shape it should give
    (None where it must refuse the file)."""
    path.write_bytes(gzip.compress(content) if gz else content)
    return outcome_of_read_idx(path), expected_idx(content)


@FUZZ
@given(content=st.binary(max_size=300), gz=st.booleans())
def test_read_idx_on_random_bytes(scratch, content, gz):
    result, shape = read_written_idx(scratch / "random", content, gz)
    if shape is None:
        assert isinstance(result, DataError)
    else:
        assert result.shape == shape and result.tobytes() == content[len(content) - math.prod(shape) :]


DIM = st.sampled_from([0, 1, 3, 28, 2**31, 2**32 - 1]) | st.integers(0, 40)


@FUZZ
@given(
    magic=st.sampled_from([2049, 2051]) | st.integers(0, 2**32 - 1),
    dims=st.lists(DIM, min_size=3, max_size=3),
    extra=st.integers(-5, 5),
    gz=st.booleans(),
)
@example(magic=2051, dims=[2**31, 28, 28], extra=0, gz=False)
@example(magic=2051, dims=[2**31, 28, 28], extra=0, gz=True)
@example(magic=2049, dims=[2**31, 0, 0], extra=0, gz=True)
@example(magic=2051, dims=[2, 28, 28], extra=0, gz=True)
@example(magic=2051, dims=[0, 2**32 - 1, 2**32 - 1], extra=0, gz=False)
def test_read_idx_on_random_header_fields(scratch, magic, dims, extra, gz):
    ndim = magic & 0xFF if magic in (2049, 2051) else 3
    dims = dims[:ndim]
    claimed = math.prod(dims)
    # A payload near the claimed size when that is small, else a short one: the header must be refused.
    size = max(0, claimed + extra) if claimed < 10_000 else 100
    content = struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + bytes(size)
    result, shape = read_written_idx(scratch / "header", content, gz)
    if shape is None:
        assert isinstance(result, DataError)
    else:
        assert result.shape == shape and result.dtype == np.uint8 and not result.any()


@FUZZ
@given(data=st.data(), gz=st.booleans())
def test_read_idx_on_truncated_files(scratch, data, gz):
    whole = GZ_IMAGES if gz else IDX_IMAGES
    cut = data.draw(st.integers(0, len(whole) - 1), label="cut")
    path = scratch / "truncated"
    path.write_bytes(whole[:cut])
    assert isinstance(outcome_of_read_idx(path), DataError)


@FUZZ
@given(tail=st.binary(min_size=1, max_size=50), gz=st.booleans())
def test_read_idx_on_files_with_trailing_bytes(scratch, tail, gz):
    path = scratch / "trailing"
    path.write_bytes(gzip.compress(IDX_IMAGES + tail) if gz else IDX_IMAGES + tail)
    assert isinstance(outcome_of_read_idx(path), DataError)


@FUZZ
@given(data=st.data())
def test_read_idx_on_damaged_gzip(scratch, data):
    damaged = bytearray(GZ_IMAGES)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        damaged[position] ^= data.draw(st.integers(1, 255), label="mask")
    path = scratch / "damaged.gz"
    path.write_bytes(bytes(damaged))
    result = outcome_of_read_idx(path)
    # Only damage that gzip does not check (timestamp, OS byte) may load, and then it loads the same data.
    if not isinstance(result, DataError):
        np.testing.assert_array_equal(result, IMAGES)


# ---------------------------------------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------------------------------------


def png_bytes(pixels: np.ndarray) -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PIXELS = np.random.default_rng(2).integers(0, 256, size=(28, 28), dtype=np.uint8)
VALID_PNG = png_bytes(PIXELS)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_header(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A PNG whose IHDR says what we like (with a correct CRC), holding 28 rows of 28 grey bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    rows = b"".join(b"\0" + PIXELS[r].tobytes() for r in range(28))
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return PNG_SIGNATURE + body


@pytest.fixture(scope="module")
def png_root(scratch):
    root = scratch / "png"
    for digit in ("3", "7"):
        (root / "train" / digit).mkdir(parents=True)
    (root / "train" / "7" / "0.png").write_bytes(VALID_PNG)
    return root


def outcome_of_png(root: Path, content: bytes) -> np.ndarray | DataError:
    path = root / "train" / "3" / "0.png"
    path.write_bytes(content)
    with warnings.catch_warnings():
        # Pillow warns about headers claiming a huge canvas; the reader refuses those by size instead.
        warnings.simplefilter("ignore", category=Warning)
        try:
            images, labels = load_png_folder(root, "train")
        except DataError as exc:
            assert str(path) in str(exc)
            return exc
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8 and labels.tolist() == [3, 7]
    np.testing.assert_array_equal(images[1], PIXELS)
    return images[0]


@FUZZ
@given(content=st.binary(max_size=400) | st.binary(max_size=400).map(lambda b: PNG_SIGNATURE + b))
def test_png_reader_on_random_bytes(png_root, content):
    assert isinstance(outcome_of_png(png_root, content), DataError)


@FUZZ
@given(data=st.data())
def test_png_reader_on_truncated_files(png_root, data):
    cut = data.draw(st.integers(0, len(VALID_PNG) - 1), label="cut")
    result = outcome_of_png(png_root, VALID_PNG[:cut])
    # Losing only the end marker may still decode, and then to the very pixels that were written.
    if not isinstance(result, DataError):
        np.testing.assert_array_equal(result, PIXELS)


@FUZZ
@given(data=st.data())
def test_png_reader_on_damaged_files(png_root, data):
    damaged = bytearray(VALID_PNG)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        damaged[position] ^= data.draw(st.integers(1, 255), label="mask")
    result = outcome_of_png(png_root, bytes(damaged))
    assert isinstance(result, DataError | np.ndarray)


@FUZZ
@given(
    width=st.sampled_from([0, 1, 27, 28, 29, 2**16, 2**31 - 1]),
    height=st.sampled_from([0, 1, 27, 28, 29, 2**16, 2**31 - 1]),
    bit_depth=st.sampled_from([1, 2, 4, 8, 16, 3, 255]),
    colour_type=st.sampled_from([0, 2, 3, 4, 6, 1, 255]),
)
@example(width=28, height=28, bit_depth=8, colour_type=0)
@example(width=2**31 - 1, height=2**31 - 1, bit_depth=8, colour_type=0)
def test_png_reader_on_random_header_fields(png_root, width, height, bit_depth, colour_type):
    result = outcome_of_png(png_root, png_with_header(width, height, bit_depth, colour_type))
    if (width, height, bit_depth, colour_type) == (28, 28, 8, 0):
        np.testing.assert_array_equal(result, PIXELS)
    elif (width, height) != (28, 28) or colour_type != 0 or bit_depth in (1, 16):
        # Another size, a colour or palette image, 1-bit or 16-bit grey: never mode L 28x28.
        assert isinstance(result, DataError)
