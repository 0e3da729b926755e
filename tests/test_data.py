"""Tests of microgradx.data: IDX and PNG readers, the bundled sample, features, and the DataLoader."""

from __future__ import annotations

import gzip
import math
import struct
import tracemalloc
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from microgradx.data import (
    DataLoader,
    MnistData,
    load_bundled_sample,
    load_idx_pair,
    load_mnist_3_7,
    load_png_folder,
    read_digit,
    read_idx,
    read_png,
    to_features,
    to_targets,
)
from microgradx.errors import DataError, DTypeError, ShapeError

from conftest import full_data

SAMPLE_FILE = Path(__file__).resolve().parents[1] / "microgradx" / "datasets" / "mnist_3_7_sample.npz"

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
LABELS = np.array([3, 7, 7, 3, 7], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------
# Helpers: our own writers for the two formats
# ---------------------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray | None = None, *, magic: int | None = None, dims=None, payload=None) -> bytes:
    """An IDX file's bytes: big-endian magic, one 32-bit size per dimension, then the raw bytes."""
    if array is not None:
        array = np.asarray(array, dtype=np.uint8)
        magic = magic if magic is not None else 0x0800 + array.ndim
        dims = dims if dims is not None else array.shape
        payload = payload if payload is not None else array.tobytes()
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def write_idx(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_png(path: Path, pixels: np.ndarray | None = None, *, mode: str = "L", size=(28, 28)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels is not None:
        Image.fromarray(pixels).save(path, format="PNG")  # uint8 gives mode L, uint16 gives I;16
    else:
        Image.new(mode, size).save(path, format="PNG")
    return path


def png_tree(root: Path, counts: dict[tuple[str, int], int], seed: int = 0) -> dict[tuple[str, int], list]:
    """root/split/digit/i.png for each (split, digit): count; returns the pixels written, in file order."""
    rng = np.random.default_rng(seed)
    written = {}
    for (split, digit), count in counts.items():
        written[split, digit] = []
        for i in range(count):
            pixels = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
            write_png(root / split / str(digit) / f"{i}.png", pixels)
            written[split, digit].append(pixels)
    return written


FULL_TREE = {("train", 3): 3, ("train", 7): 2, ("valid", 3): 1, ("valid", 7): 2}


def write_idx_folder(root: Path, *, valid_prefix: str = "valid", gz: bool = True, labels=LABELS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix in ("train", valid_prefix):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(IMAGES), gz=gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz=gz)
    return root


@contextmanager
def raises_naming(path: Path, *words: str):
    """Expect a one-line DataError whose message names `path` and holds each of `words` (any case)."""
    with pytest.raises(DataError) as info:
        yield info
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


# ---------------------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_round_trip(tmp_path, gz):
    images = read_idx(write_idx(tmp_path / "images", idx_bytes(IMAGES), gz=gz))
    labels = read_idx(write_idx(tmp_path / "labels", idx_bytes(LABELS), gz=gz))
    assert images.dtype == np.uint8 and images.shape == (5, 28, 28)
    assert labels.dtype == np.uint8 and labels.shape == (5,)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)


def test_idx_gzip_is_detected_by_content_not_name(tmp_path):
    zipped_without_suffix = write_idx(tmp_path / "labels-idx1-ubyte", idx_bytes(LABELS), gz=True)
    raw_with_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", idx_bytes(LABELS), gz=False)
    np.testing.assert_array_equal(read_idx(zipped_without_suffix), LABELS)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), LABELS)


def test_idx_empty_data_set_loads(tmp_path):
    labels = read_idx(write_idx(tmp_path / "empty", idx_bytes(magic=2049, dims=(0,), payload=b"")))
    assert labels.shape == (0,) and labels.dtype == np.uint8


MALFORMED_IDX = {
    "empty file": (b"", ["too short"]),
    "zip file": (b"PK\x03\x04" + bytes(100), ["not an IDX file"]),
    "bad magic 2050": (idx_bytes(magic=2050, dims=(5, 28), payload=bytes(140)), ["magic 2050"]),
    "float dtype byte": (idx_bytes(magic=0x0D01, dims=(5,), payload=bytes(20)), ["0x0d"]),
    "int dtype byte": (idx_bytes(magic=0x0C01, dims=(5,), payload=bytes(20)), ["0x0c"]),
    "truncated header": (idx_bytes(IMAGES)[:10], ["truncated header"]),
    "truncated payload": (idx_bytes(IMAGES)[:-1], ["truncated", "3920"]),
    "trailing bytes": (idx_bytes(IMAGES) + b"\0", ["unexpected bytes"]),
    "huge claimed count": (idx_bytes(magic=2051, dims=(2**31, 28, 28), payload=bytes(784)), ["truncated"]),
    "huge claimed labels": (idx_bytes(magic=2049, dims=(2**32 - 1,), payload=b"\3\7"), ["truncated"]),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(MALFORMED_IDX))
def test_idx_malformed_raises_data_error_naming_file(tmp_path, case, gz):
    content, words = MALFORMED_IDX[case]
    path = write_idx(tmp_path / "file-idx-ubyte", content, gz=gz)
    with raises_naming(path, *words):
        read_idx(path)


def test_idx_missing_file(tmp_path):
    path = tmp_path / "nope-idx1-ubyte"
    with raises_naming(path, "cannot read"):
        read_idx(path)


CORRUPT_GZIP = {
    "bad gzip header": lambda z: z[:3] + b"\xff" + z[4:],  # reserved flag bits set
    "damaged deflate stream": lambda z: z[:20] + bytes(b ^ 0xFF for b in z[20:40]) + z[40:],
    "wrong crc": lambda z: z[:-8] + bytes(b ^ 0xFF for b in z[-8:-4]) + z[-4:],
    "cut short": lambda z: z[: len(z) // 2],
    "cut in the trailer": lambda z: z[:-3],
    "magic only": lambda z: z[:2],
}


@pytest.mark.parametrize("case", list(CORRUPT_GZIP))
def test_idx_corrupt_gzip_raises_data_error(tmp_path, case):
    zipped = gzip.compress(idx_bytes(IMAGES))
    path = tmp_path / "images.gz"
    path.write_bytes(CORRUPT_GZIP[case](zipped))
    with raises_naming(path):
        read_idx(path)


def test_idx_huge_claim_is_refused_without_allocating(tmp_path):
    path = write_idx(tmp_path / "huge", idx_bytes(magic=2051, dims=(2**32 - 1,) * 3, payload=bytes(1000)))
    tracemalloc.start()
    try:
        with raises_naming(path, "truncated"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_idx_gzip_bomb_is_read_only_as_far_as_the_header_claims(tmp_path):
    # 64 MiB of zeros squeezed into ~64 KiB, behind a header that claims 10 labels.
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as f:
        f.write(idx_bytes(magic=2049, dims=(10,), payload=bytes(10)))
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with raises_naming(path, "unexpected bytes"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20          # of the 64 MiB it would inflate to: only as far as the header claims


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_pair_loads(tmp_path, gz):
    images_path = write_idx(tmp_path / "i", idx_bytes(IMAGES), gz=gz)
    labels_path = write_idx(tmp_path / "l", idx_bytes(LABELS), gz=gz)
    images, labels = load_idx_pair(images_path, labels_path)
    np.testing.assert_array_equal(images, IMAGES)
    np.testing.assert_array_equal(labels, LABELS)


def test_idx_pair_count_mismatch_names_both_files(tmp_path):
    images_path = write_idx(tmp_path / "images", idx_bytes(IMAGES))
    labels_path = write_idx(tmp_path / "labels", idx_bytes(LABELS[:4]))
    with raises_naming(images_path, "5 images", "4 labels", str(labels_path)):
        load_idx_pair(images_path, labels_path)


def test_idx_pair_rejects_other_image_sizes_and_swapped_files(tmp_path):
    small = write_idx(tmp_path / "small", idx_bytes(IMAGES[:, :20, :]))
    images_path = write_idx(tmp_path / "images", idx_bytes(IMAGES))
    labels_path = write_idx(tmp_path / "labels", idx_bytes(LABELS))
    with raises_naming(small, "20x28"):
        load_idx_pair(small, labels_path)
    with raises_naming(labels_path, "expected images"):
        load_idx_pair(labels_path, images_path)
    with raises_naming(images_path, "expected labels"):
        load_idx_pair(images_path, images_path)


@pytest.mark.parametrize(("prefix", "gz"), [("valid", True), ("t10k", False)])
def test_load_mnist_3_7_reads_an_idx_folder(tmp_path, prefix, gz):
    root = write_idx_folder(tmp_path / "idx", valid_prefix=prefix, gz=gz)
    data = load_mnist_3_7(root)
    assert isinstance(data, MnistData)
    for images, labels in [(data.train_images, data.train_labels), (data.valid_images, data.valid_labels)]:
        np.testing.assert_array_equal(images, IMAGES)
        np.testing.assert_array_equal(labels, LABELS)
    assert "IDX" in data.source and "5 train" in data.source and "5 valid" in data.source


def test_load_mnist_3_7_rejects_labels_other_than_3_and_7(tmp_path):
    root = write_idx_folder(tmp_path / "idx", labels=np.array([3, 7, 5, 3, 7], dtype=np.uint8))
    with raises_naming(root / "train-labels-idx1-ubyte.gz", "label 5", "index 2"):
        load_mnist_3_7(root)


@pytest.mark.parametrize("split", ["train", "valid"])
def test_load_mnist_3_7_refuses_an_empty_split(tmp_path, split):
    # An IDX file may hold no images, but a split without any cannot train or score a model.
    root = write_idx_folder(tmp_path / "idx", gz=False)
    write_idx(root / f"{split}-images-idx3-ubyte", idx_bytes(IMAGES[:0]))
    write_idx(root / f"{split}-labels-idx1-ubyte", idx_bytes(LABELS[:0]))
    with raises_naming(root / f"{split}-images-idx3-ubyte", "no images"):
        load_mnist_3_7(root)


def test_load_mnist_3_7_expands_a_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_idx_folder(tmp_path / "idx")
    assert len(load_mnist_3_7("~/idx").train_labels) == len(LABELS)


def test_load_mnist_3_7_reports_a_missing_idx_file(tmp_path):
    root = write_idx_folder(tmp_path / "idx")
    (root / "valid-labels-idx1-ubyte.gz").unlink()
    with raises_naming(root, "valid-labels-idx1-ubyte"):
        load_mnist_3_7(root)


def test_load_mnist_3_7_rejects_a_folder_in_neither_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with raises_naming(tmp_path, "expected", "train/3", "train-images-idx3-ubyte"):
        load_mnist_3_7(tmp_path)
    with raises_naming(tmp_path / "missing", "no such folder"):
        load_mnist_3_7(tmp_path / "missing")
    with raises_naming(tmp_path / "notes.txt", "not a folder"):
        load_mnist_3_7(tmp_path / "notes.txt")


# ---------------------------------------------------------------------------------------------------------
# PNG folders
# ---------------------------------------------------------------------------------------------------------


def test_png_folder_round_trip(tmp_path):
    written = png_tree(tmp_path, FULL_TREE)
    for split in ("train", "valid"):
        images, labels = load_png_folder(tmp_path, split)
        expected = written[split, 3] + written[split, 7]
        assert images.dtype == np.uint8 and images.shape == (len(expected), 28, 28)
        np.testing.assert_array_equal(images, np.stack(expected))
        np.testing.assert_array_equal(labels, [3] * len(written[split, 3]) + [7] * len(written[split, 7]))


def test_png_folder_orders_numeric_stems_numerically_then_others_by_name(tmp_path):
    png_tree(tmp_path, {("train", 7): 1})
    expected_order = ["0", "9", "10", "100", "a", "b"]
    for rank, stem in reversed(list(enumerate(expected_order))):
        write_png(tmp_path / "train" / "3" / f"{stem}.png", np.full((28, 28), rank, np.uint8))
    images, _ = load_png_folder(tmp_path, "train")
    assert images[:6, 0, 0].tolist() == list(range(6))


def test_png_folder_ignores_hidden_and_non_png_files(tmp_path):
    png_tree(tmp_path, {("train", 3): 2, ("train", 7): 2})
    (tmp_path / "train" / "3" / "._0.png").write_bytes(b"macOS resource fork")
    (tmp_path / "train" / "3" / "labels.csv").write_text("name,label\n")
    images, labels = load_png_folder(tmp_path, "train")
    assert len(images) == 4 and list(labels) == [3, 3, 7, 7]


def bad_png(kind: str, path: Path) -> Path:
    from PIL import Image

    if kind == "wrong size":
        return write_png(path, size=(28, 27))
    if kind == "rgb":
        return write_png(path, mode="RGB")
    if kind == "rgba":
        return write_png(path, mode="RGBA")
    if kind == "16-bit":
        return write_png(path, np.full((28, 28), 1000, np.uint16))
    if kind == "palette":
        return write_png(path, mode="P")
    if kind == "1-bit":
        return write_png(path, mode="1")
    if kind == "not a png":
        path.write_bytes(b"this is not an image at all")
        return path
    if kind == "jpeg named png":
        Image.new("L", (28, 28)).save(path, format="JPEG")
        return path
    if kind == "truncated png":
        write_png(path, RNG.integers(0, 256, (28, 28), dtype=np.uint8))
        path.write_bytes(path.read_bytes()[:100])
        return path
    if kind == "rows missing":     # a well-formed file whose pixel data stops after 20 of 28 rows
        path.write_bytes(crafted_png(rows=20))
        return path
    if kind == "interlaced, rows missing":
        path.write_bytes(crafted_png(interlace=1, cut=29))
        return path
    raise AssertionError(kind)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(header: bytes, pixel_data: bytes) -> bytes:
    """A PNG of three chunks: IHDR ``header``, one IDAT of ``pixel_data`` compressed, IEND."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(pixel_data))
            + png_chunk(b"IEND", b""))


def crafted_png(bits: int = 8, interlace: int = 0, rows: int = 28, cut: int = 0) -> bytes:
    """A 28x28 grayscale PNG of black pixels, chunk by chunk, with ``rows`` rows (less ``cut`` bytes;
    a negative ``cut`` adds bytes after the last row)."""
    def pass_bytes(columns: int, rows: int) -> int:     # each row: a filter byte, then the pixels
        return rows * (1 + math.ceil(columns * bits / 8))

    if interlace:     # Adam7's seven passes (PNG spec 8.2): first column and row, steps across and down
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                  (0, 1, 1, 2)]
        size = sum(pass_bytes(math.ceil((28 - x) / dx), math.ceil((28 - y) / dy)) for x, y, dx, dy in passes)
    else:
        size = pass_bytes(28, rows)
    header = struct.pack(">IIBBBBB", 28, 28, bits, 0, 0, 0, interlace)
    return png_file(header, bytes(size - cut))


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("interlace", [0, 1])
def test_read_png_takes_every_grayscale_depth_and_interlacing(tmp_path, bits, interlace):
    path = tmp_path / "x.png"
    path.write_bytes(crafted_png(bits, interlace))
    np.testing.assert_array_equal(read_png(path), np.zeros((28, 28), np.uint8))
    path.write_bytes(crafted_png(bits, interlace, cut=-100))   # bytes after the last row: ignored
    np.testing.assert_array_equal(read_png(path), np.zeros((28, 28), np.uint8))


BAD_PNGS = {
    "wrong size": "28x27",
    "rgb": "mode RGB",
    "rgba": "mode RGBA",
    "16-bit": "mode I;16",
    "palette": "mode P",
    "1-bit": "mode 1",
    "not a png": "not a readable PNG",
    "jpeg named png": "not a readable PNG",
    "truncated png": "corrupt PNG",
    "rows missing": "pixel data holds 580 bytes where 28x28 pixels at 8 bits need 812",
    "interlaced, rows missing": "need 837",
}


@pytest.mark.parametrize("kind", list(BAD_PNGS))
def test_png_folder_rejects_bad_images_naming_the_file(tmp_path, kind):
    png_tree(tmp_path, {("train", 3): 2, ("train", 7): 2})
    path = bad_png(kind, tmp_path / "train" / "7" / "5.png")
    with raises_naming(path, BAD_PNGS[kind]):
        load_png_folder(tmp_path, "train")


def test_png_folder_missing_pieces_raise_data_error_naming_the_path(tmp_path):
    with raises_naming(tmp_path / "absent", "no such folder"):
        load_png_folder(tmp_path / "absent", "train")
    png_tree(tmp_path, {("train", 3): 1})
    with raises_naming(tmp_path / "valid", "no such folder"):
        load_png_folder(tmp_path, "valid")
    with raises_naming(tmp_path / "train" / "7", "no such folder"):
        load_png_folder(tmp_path, "train")
    (tmp_path / "train" / "7").mkdir()
    (tmp_path / "train" / "7" / "readme.txt").write_text("no pictures")
    with raises_naming(tmp_path / "train" / "7", "no .png"):
        load_png_folder(tmp_path, "train")


def test_load_mnist_3_7_reads_a_png_folder(tmp_path):
    written = png_tree(tmp_path, FULL_TREE)
    data = load_mnist_3_7(tmp_path)
    np.testing.assert_array_equal(data.valid_images, np.stack(written["valid", 3] + written["valid", 7]))
    assert list(data.train_labels) == [3, 3, 3, 7, 7] and list(data.valid_labels) == [3, 7, 7]
    assert "PNG" in data.source and "5 train" in data.source and "3 valid" in data.source


def test_load_mnist_3_7_png_folder_without_valid(tmp_path):
    png_tree(tmp_path, {("train", 3): 1, ("train", 7): 1})
    with raises_naming(tmp_path / "valid", "no such folder"):
        load_mnist_3_7(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# The bundled sample
# ---------------------------------------------------------------------------------------------------------


def test_bundled_sample_shapes_classes_and_pixels():
    data = load_bundled_sample()
    assert data.train_images.shape == (800, 28, 28) and data.valid_images.shape == (200, 28, 28)
    assert data.train_labels.shape == (800,) and data.valid_labels.shape == (200,)
    for array in (data.train_images, data.train_labels, data.valid_images, data.valid_labels):
        assert array.dtype == np.uint8
    assert np.bincount(data.train_labels, minlength=8)[[3, 7]].tolist() == [400, 400]
    assert np.bincount(data.valid_labels, minlength=8)[[3, 7]].tolist() == [100, 100]
    assert set(np.unique(data.train_labels)) | set(np.unique(data.valid_labels)) == {3, 7}
    images = np.concatenate([data.train_images, data.valid_images])
    assert images.min() == 0 and images.max() == 255
    # White ink on black: the border is background, and most pixels are background.
    border = np.concatenate([images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.mean() < 1 and (images == 0).mean() > 0.7
    # Upright, not mirrored: the mean 7 is darkest along its bar, in the top half, and leans to the right.
    mean_seven = images[np.concatenate([data.train_labels, data.valid_labels]) == 7].mean(0)
    assert mean_seven.mean(1).argmax() < 12 and mean_seven.mean(0).argmax() > 14
    assert data.source == "bundled sample (800 train, 200 valid)"


def test_bundled_sample_splits_are_disjoint():
    data = load_bundled_sample()
    train = {img.tobytes() for img in data.train_images}
    assert len(train) == 800
    assert not train & {img.tobytes() for img in data.valid_images}


def test_bundled_sample_is_small_and_is_the_default():
    assert SAMPLE_FILE.stat().st_size < 300 * 1024
    default, bundled = load_mnist_3_7(), load_bundled_sample()
    np.testing.assert_array_equal(default.train_images, bundled.train_images)
    np.testing.assert_array_equal(default.valid_labels, bundled.valid_labels)


def test_bundled_sample_threes_and_sevens_look_different():
    # Mean images of the two classes differ a lot where a 3's curves and a 7's stroke are: a guard against
    # labels that were shuffled or swapped relative to the images.
    data = load_bundled_sample()
    x, y = to_features(data.train_images), data.train_labels
    mean3, mean7 = x[y == 3].mean(0), x[y == 7].mean(0)
    xv, yv = to_features(data.valid_images), data.valid_labels
    nearer_3 = ((xv - mean3) ** 2).sum(1) < ((xv - mean7) ** 2).sum(1)
    assert (nearer_3 == (yv == 3)).mean() > 0.9


# ---------------------------------------------------------------------------------------------------------
# Features and targets
# ---------------------------------------------------------------------------------------------------------


def test_to_features_flattens_and_scales():
    features = to_features(IMAGES)
    assert features.shape == (5, 784) and features.dtype == np.float32
    np.testing.assert_allclose(features, IMAGES.reshape(5, -1) / 255, rtol=1e-6)
    assert to_features(np.array([[[0, 255]]], np.uint8)).tolist() == [[0.0, 1.0]]
    assert to_features(IMAGES, dtype=np.float64).dtype == np.float64
    assert to_features(IMAGES[:0]).shape == (0, 784)


def test_to_features_refuses_scaled_input():
    with pytest.raises(DTypeError, match="uint8"):
        to_features(IMAGES / 255)


def test_to_features_refuses_a_single_image():
    # (28, 28) would otherwise pass for 28 images of 28 pixels each.
    with pytest.raises(ShapeError, match=r"\(N, height, width\), got \(28, 28\)"):
        to_features(IMAGES[0])


def test_to_targets_marks_threes_with_one():
    targets = to_targets(LABELS)
    assert targets.shape == (5, 1) and targets.dtype == np.float32
    assert targets.ravel().tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    with pytest.raises(DataError, match="label 5"):
        to_targets(np.array([3, 5]))


# ---------------------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------------------

X = np.arange(10 * 2).reshape(10, 2)
Y = np.arange(10) * 100


def epochs(loader: DataLoader, n: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    return [list(loader) for _ in range(n)]


def test_loader_batches_and_keeps_the_last_partial_batch():
    loader = DataLoader(X, Y, batch_size=3)
    batches = list(loader)
    assert len(loader) == 4 == len(batches)
    assert [len(xb) for xb, _ in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), X)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), Y)
    assert len(DataLoader(X, Y, batch_size=5)) == 2
    assert len(DataLoader(X, Y, batch_size=11)) == 1
    assert len(DataLoader(X[:0], Y[:0])) == 0 and list(DataLoader(X[:0], Y[:0])) == []


def test_loader_shuffle_is_reproducible_per_seed():
    first = epochs(DataLoader(X, Y, 4, shuffle=True, seed=1), 3)
    again = epochs(DataLoader(X, Y, 4, shuffle=True, seed=1), 3)
    other = epochs(DataLoader(X, Y, 4, shuffle=True, seed=2), 3)

    def rows(epoch):
        return np.concatenate([yb for _, yb in epoch]).tolist()

    assert [rows(e) for e in first] == [rows(e) for e in again]
    assert [rows(e) for e in first] != [rows(e) for e in other]
    assert rows(first[0]) != rows(first[1]), "each epoch draws a new permutation"
    assert rows(first[0]) != Y.tolist(), "shuffle=True must shuffle"


def test_loader_each_epoch_visits_every_sample_once_with_x_and_y_together():
    loader = DataLoader(X, Y, batch_size=3, shuffle=True, seed=0)
    for _ in range(3):
        batches = list(loader)
        xs = np.concatenate([xb for xb, _ in batches])
        ys = np.concatenate([yb for _, yb in batches])
        assert sorted(ys.tolist()) == Y.tolist()
        np.testing.assert_array_equal(xs[:, 0] * 50, ys)  # row i of X is (2i, 2i+1), Y[i] = 100i


def test_loader_permutation_is_drawn_by_iter_not_by_the_first_batch():
    reference = DataLoader(X, Y, batch_size=10, shuffle=True, seed=3)
    epoch1, epoch2 = list(reference), list(reference)
    loader = DataLoader(X, Y, batch_size=10, shuffle=True, seed=3)
    first, second = iter(loader), iter(loader)
    np.testing.assert_array_equal(next(second)[1], epoch2[0][1])
    np.testing.assert_array_equal(next(first)[1], epoch1[0][1])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
def test_loader_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(X, Y, batch_size=batch_size)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_loader_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        DataLoader(X, Y, shuffle=True, seed=seed)


def test_loader_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="10 rows.*9"):
        DataLoader(X, Y[:9])


# ---------------------------------------------------------------------------------------------------------
# The full data set (absent on users' machines; see conftest.py for MICROGRADX_DATA)
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_png() -> MnistData:
    return load_mnist_3_7(full_data("png"))


@pytest.fixture(scope="module")
def full_idx() -> MnistData:
    return load_mnist_3_7(full_data("idx"))


@pytest.mark.data
def test_full_png_and_idx_copies_agree(full_png, full_idx):
    for data in (full_png, full_idx):
        assert data.train_images.shape == (12396, 28, 28) and data.valid_images.shape == (2038, 28, 28)
        assert np.bincount(data.train_labels, minlength=8)[[3, 7]].tolist() == [6131, 6265]
        assert np.bincount(data.valid_labels, minlength=8)[[3, 7]].tolist() == [1010, 1028]
    np.testing.assert_array_equal(full_png.train_labels, full_idx.train_labels)
    np.testing.assert_array_equal(full_png.valid_labels, full_idx.valid_labels)
    # valid pixels are MNIST's own in both copies; train pixels are guaranteed only to within one grey level.
    np.testing.assert_array_equal(full_png.valid_images, full_idx.valid_images)
    difference = np.abs(full_png.train_images.astype(np.int16) - full_idx.train_images)
    assert difference.max() <= 1


@pytest.mark.data
def test_bundled_sample_is_made_of_mnist_training_images(full_idx):
    # Every bundled image should be one of the full set's train images of the same digit, to within the
    # one grey level that the full set's train pixels may be off by.
    sample = load_bundled_sample()
    images = np.concatenate([sample.train_images, sample.valid_images]).reshape(1000, -1).astype(np.float32)
    labels = np.concatenate([sample.train_labels, sample.valid_labels])
    full = full_idx.train_images.reshape(len(full_idx.train_images), -1).astype(np.float32)
    distance = (images**2).sum(1)[:, None] - 2 * images @ full.T + (full**2).sum(1)[None, :]
    nearest = distance.argmin(1)
    assert np.abs(images - full[nearest]).max() <= 1
    np.testing.assert_array_equal(full_idx.train_labels[nearest], labels)
    assert len(set(nearest.tolist())) == 1000


# --------------------------------------------------------------------------------------------------
# read_digit: any PNG of a digit, prepared as MNIST's are
# --------------------------------------------------------------------------------------------------

def _save(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(pixels).save(path)
    return path


def test_read_digit_leaves_an_mnist_image_as_it_is(tmp_path):
    three = load_bundled_sample().valid_images[0]
    pixels, notes = read_digit(_save(tmp_path / "d.png", three))
    np.testing.assert_array_equal(pixels, three)
    assert notes == []


def test_read_digit_shrinks_keeping_the_aspect_and_pads_with_background(tmp_path):
    three = load_bundled_sample().valid_images[0]
    tall = np.zeros((112, 56), np.uint8)                 # the digit, 2x larger, in a canvas twice as tall
    tall[28:84] = np.kron(three, np.ones((2, 2), np.uint8))
    pixels, notes = read_digit(_save(tmp_path / "d.png", tall))
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert notes == ["resized from 56x112 to 28x28 keeping its aspect"]
    # 56x112 becomes 14x28, centred: 7 columns of background on each side, and the digit at half size.
    assert not pixels[:, :7].any() and not pixels[:, 21:].any()
    expected = three.reshape(14, 2, 14, 2).mean(axis=(1, 3))
    assert np.abs(pixels[7:21, 7:21].astype(float) - expected).mean() < 20


def test_read_digit_inverts_a_dark_digit_on_light_and_greys_colour(tmp_path):
    three = load_bundled_sample().valid_images[0]
    rgb = np.stack([255 - three] * 3, axis=-1)
    pixels, notes = read_digit(_save(tmp_path / "d.png", rgb))
    np.testing.assert_array_equal(pixels, three)
    assert notes[0] == "converted from RGB to grey" and notes[1].startswith("inverted")


def test_read_digit_lays_transparency_on_white(tmp_path):
    three = load_bundled_sample().valid_images[0]
    ink = np.dstack([np.zeros((28, 28, 3), np.uint8), three])      # black ink, opaque where the digit is
    pixels, notes = read_digit(_save(tmp_path / "d.png", ink))
    assert np.abs(pixels.astype(int) - three).max() <= 1
    assert "transparent pixels taken as white" in notes[0] and notes[1].startswith("inverted")
    opaque = np.dstack([np.stack([three] * 3, axis=-1), np.full((28, 28), 255, np.uint8)])
    pixels, notes = read_digit(_save(tmp_path / "o.png", opaque))
    assert notes == ["converted from RGBA to grey"]
    assert np.abs(pixels.astype(int) - three).max() <= 1


def test_read_digit_refuses_a_colour_png_whose_rows_are_missing(tmp_path):
    # A complete but short data stream: Pillow fills the missing rows with black and says nothing.
    header = struct.pack(">IIBBBBB", 40, 40, 8, 2, 0, 0, 0)        # 40x40 RGB, 8 bits per sample
    rows = bytes((1 + 40 * 3) * 10)                                 # 10 of its 40 rows
    path = tmp_path / "short.png"
    path.write_bytes(png_file(header, rows))
    with pytest.raises(DataError, match="short.png: its pixel data holds 1210 bytes"):
        read_digit(path)


def test_read_digit_refuses_a_huge_canvas_before_decoding_it(tmp_path):
    header = struct.pack(">IIBBBBB", 5000, 5000, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(png_file(header, b""))
    with pytest.raises(DataError, match="huge.png: 5000x5000 pixels"):
        read_digit(path)
