"""MNIST 3s and 7s: readers for the formats users have on disk, the bundled sample, and batching.

One entry point, :func:`load_mnist_3_7`, picks the reader from what it finds:

- nothing (``None``): the 1,000-image sample shipped in ``microgradx/datasets``;
- a folder in fastai's MNIST_SAMPLE layout (``train/3/*.png`` ... ``valid/7/*.png``);
- a folder of MNIST IDX files (``train-images-idx3-ubyte[.gz]`` and friends).

Every problem with a file or folder raises :class:`~microgradx.errors.DataError`, whose message starts with
the path. numpy is the only import at module level; Pillow is imported by the PNG reader alone.
"""

from __future__ import annotations

import gzip
import importlib.resources
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import ArgumentError, DataError, DTypeError, ShapeError

__all__ = [
    "DataLoader",
    "DataLoaders",
    "LabelledImages",
    "is_mnist_idx_folder",
    "load_for_training",
    "load_image_folder",
    "load_mnist",
    "MnistData",
    "example_digits",
    "load_bundled_digits",
    "load_bundled_sample",
    "load_idx_pair",
    "load_mnist_3_7",
    "load_png_folder",
    "read_idx",
    "read_digit",
    "read_png",
    "to_features",
    "to_targets",
]

PathLike = str | os.PathLike[str]

IMAGE_SHAPE = (28, 28)
DIGITS = (3, 7)
SPLITS = ("train", "valid")

_IDX_MAGICS = (2049, 2051)  # labels, images
_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 20
_SAMPLE_NAME = "mnist_3_7_sample.npz"
_DIGITS_SAMPLE_NAME = "mnist_digits_sample.npz"
_SAMPLE_KEYS = ("train_images", "train_labels", "valid_images", "valid_labels")

_EXPECTED_LAYOUTS = (
    "expected fastai's MNIST_SAMPLE layout (train/3, train/7, valid/3, valid/7 holding PNGs) or MNIST IDX "
    "files ({train,valid}-images-idx3-ubyte[.gz] and {train,valid}-labels-idx1-ubyte[.gz])"
)


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == has no single truth value
class MnistData:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 holding the digits 3 and 7, for both splits."""

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    source: str


# ---------------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------------


def load_mnist_3_7(path: PathLike | None = None) -> MnistData:
    """Load MNIST 3s and 7s from ``path``, or the bundled sample when ``path`` is None.

    ``path`` is a folder in one of two layouts:

    - fastai's MNIST_SAMPLE: ``train/3``, ``train/7``, ``valid/3``, ``valid/7``, each full of 28x28
      grayscale PNGs (see :func:`load_png_folder`);
    - MNIST IDX files, raw or gzipped: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
      ``valid-images-idx3-ubyte``, ``valid-labels-idx1-ubyte`` (MNIST's own ``t10k-`` prefix is accepted
      for the valid split).

    Raises:
        DataError: the path is missing or in neither layout, a file is missing, unreadable or corrupt, or a
            label is anything but 3 or 7.
    """
    if path is None:
        return load_bundled_sample()
    root = Path(path).expanduser()
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "no such folder"
        raise DataError(f"{root}: {problem}; {_EXPECTED_LAYOUTS}")
    if (root / "train").is_dir():
        return _from_png_folder(root)
    if _find_idx(root, "train", "images") is not None:
        return _from_idx_folder(root)
    raise DataError(
        f"{root}: found neither a train/ folder nor train-images-idx3-ubyte[.gz]; {_EXPECTED_LAYOUTS}"
    )


def load_bundled_sample() -> MnistData:
    """The 1,000-image sample shipped with the package: 400 + 100 of each digit, from MNIST's training set.

    Raises:
        DataError: the packaged file is missing or damaged (a broken install).
    """
    resource = importlib.resources.files("microgradx") / "datasets" / _SAMPLE_NAME
    try:
        with resource.open("rb") as f, np.load(f) as npz:
            arrays = {key: npz[key] for key in _SAMPLE_KEYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{resource}: cannot read the bundled sample ({exc})") from exc
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or labels.shape != images.shape[:1]:
            raise DataError(f"{resource}: {split} arrays have unexpected shapes or dtypes")
        _check_labels(labels, resource)
    n_train, n_valid = len(arrays["train_labels"]), len(arrays["valid_labels"])
    return MnistData(**arrays, source=f"bundled sample ({n_train} train, {n_valid} valid)")


def example_digits() -> list[Path]:
    """The PNGs of real digits shipped in ``microgradx/examples`` (four 3s and four 7s of the bundled
    sample's valid split), each named ``<digit>-valid-<row>.png``: what ``microgradx predict --examples``
    classifies.

    Raises:
        DataError: the packaged folder is missing or empty (a broken install).
    """
    folder = Path(__file__).resolve().parent / "examples"
    found = sorted(folder.glob("*.png"))
    if not found:
        raise DataError(f"{folder}: no example digits (a broken install of microgradx)")
    return found


def _from_png_folder(root: Path) -> MnistData:
    train_images, train_labels = load_png_folder(root, "train")
    valid_images, valid_labels = load_png_folder(root, "valid")
    source = f"PNG folder {root} ({len(train_labels)} train, {len(valid_labels)} valid)"
    return MnistData(train_images, train_labels, valid_images, valid_labels, source)


def _from_idx_folder(root: Path) -> MnistData:
    arrays = {}
    for split in SPLITS:
        images, labels, labels_path = _idx_split(root, split, _EXPECTED_LAYOUTS)
        _check_labels(labels, labels_path)
        arrays[split] = images, labels
    (train_images, train_labels), (valid_images, valid_labels) = arrays["train"], arrays["valid"]
    source = f"IDX files in {root} ({len(train_labels)} train, {len(valid_labels)} valid)"
    return MnistData(train_images, train_labels, valid_images, valid_labels, source)


def _idx_split(root: Path, split: str, expected: str) -> tuple[np.ndarray, np.ndarray, Path]:
    """The images and labels of ``split`` from the IDX files in ``root``, and the labels' path."""
    images_path, labels_path = _find_idx(root, split, "images"), _find_idx(root, split, "labels")
    if images_path is None or labels_path is None:
        kind = "images-idx3" if images_path is None else "labels-idx1"
        raise DataError(f"{root}: no {split}-{kind}-ubyte[.gz]; {expected}")
    images, labels = load_idx_pair(images_path, labels_path)
    if len(labels) == 0:
        raise DataError(f"{images_path}: holds no images; the {split} split needs some")
    return images, labels, labels_path


def _find_idx(root: Path, split: str, kind: str) -> Path | None:
    dims = 3 if kind == "images" else 1
    prefixes = ("valid", "t10k") if split == "valid" else (split,)
    for prefix in prefixes:
        for suffix in ("", ".gz"):
            candidate = root / f"{prefix}-{kind}-idx{dims}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _check_labels(labels: np.ndarray, where: object) -> None:
    bad = np.flatnonzero(~np.isin(labels, DIGITS))
    if bad.size:
        raise DataError(f"{where}: label {labels[bad[0]]} at index {bad[0]}; expected only 3s and 7s")


# ---------------------------------------------------------------------------------------------------------
# Any classes: all ten digits, or a folder of images with any class names
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelledImages:
    """Images (N, H, W) uint8 and class indices (N,) int64 for both splits, with the class names.

    ``vocab[i]`` names class ``i``; for MNIST's IDX files it is ``["0", ..., "9"]``, the index the digit.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    valid_images: np.ndarray
    valid_labels: np.ndarray
    vocab: list[str]
    source: str


def load_mnist(path: PathLike) -> LabelledImages:
    """All ten digits from a folder of MNIST's four IDX files (raw or gzipped): ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (``valid-`` also
    accepted). The official test set is the valid split.

    Raises:
        DataError: a file is missing, unreadable or corrupt, images and labels files differ in length, or a
            label is not a digit 0-9.
    """
    root = Path(path).expanduser()
    arrays = []
    for split in SPLITS:
        images, labels, labels_path = _idx_split(root, split, "expected MNIST's four IDX files")
        bad = np.flatnonzero(labels > 9)
        if bad.size:
            raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]}; expected digits 0-9")
        arrays += [images, labels.astype(np.int64)]
    source = f"IDX files in {root} ({len(arrays[1])} train, {len(arrays[3])} valid)"
    return LabelledImages(*arrays, vocab=[str(d) for d in range(10)], source=source)


def load_image_folder(root: PathLike) -> LabelledImages:
    """fastai's layout with any class names: ``root/train/<class>/*.png`` and ``root/valid/<class>/*.png``.

    Classes are the folder names under ``train``, indexed in sorted order (``vocab``); ``valid`` may hold
    only some of them. The PNGs must be 8-bit grey (mode ``L``), square, and all of one size.

    Raises:
        DataError: a folder is missing, ``train`` holds fewer than two classes, ``valid`` names a class
            ``train`` lacks, a class folder holds no PNG, or a PNG is unreadable, not grey, not square or
            of another size than the first.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; expected train/<class>/*.png and valid/<class>/*.png")
    vocab: list[str] = []
    arrays: list[np.ndarray] = []
    size: list[tuple[int, int]] = []      # the first image's (height, width), which all must share
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataError(f"{split_dir}: no such folder; expected {split}/<class>/*.png")
        classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
        if split == "train":
            if len(classes) < 2:
                raise DataError(f"{split_dir}: holds {len(classes)} class folder{'s' * (len(classes) != 1)} "
                                f"({', '.join(classes) or 'none'}); a classifier needs at least two")
            vocab = classes
        unknown = [c for c in classes if c not in vocab]
        if unknown:
            raise DataError(f"{split_dir / unknown[0]}: class {unknown[0]!r} is not among train's "
                            f"({', '.join(vocab)})")
        images, labels = [], []
        for name in classes:
            pngs = _png_files(split_dir / name)
            if not pngs:
                raise DataError(f"{split_dir / name}: holds no .png files")
            for png in pngs:
                images.append(_read_square_grey(png, size))
                labels.append(vocab.index(name))
        arrays += [np.stack(images), np.asarray(labels, dtype=np.int64)]
    source = f"image folder {root} ({len(arrays[1])} train, {len(arrays[3])} valid, {len(vocab)} classes)"
    return LabelledImages(*arrays, vocab=vocab, source=source)


def _read_square_grey(path: Path, size: list[tuple[int, int]]) -> np.ndarray:
    with _open_png(path) as image:
        if image.mode != "L":
            raise DataError(f"{path}: image mode {image.mode}, expected 8-bit grayscale (mode L)")
        width, height = image.size
        if width != height:
            raise DataError(f"{path}: {width}x{height} pixels; the images must be square")
        if size and size[0] != (height, width):
            raise DataError(f"{path}: {width}x{height} pixels, where the first image is "
                            f"{size[0][1]}x{size[0][0]}; all must be one size")
        size[:] = [(height, width)]
        return np.asarray(_decoded(path, image))


def load_bundled_digits() -> LabelledImages:
    """The ten-digit sample shipped with the package: 80 + 20 of each digit, from MNIST's training set
    (built by ``scripts/make_digits_sample.py``).

    Raises:
        DataError: the packaged file is missing or damaged (a broken install).
    """
    resource = importlib.resources.files("microgradx") / "datasets" / _DIGITS_SAMPLE_NAME
    try:
        with resource.open("rb") as f, np.load(f) as npz:
            arrays = [npz[key] for key in _SAMPLE_KEYS]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{resource}: cannot read the bundled sample ({exc})") from exc
    if any(a.dtype != np.uint8 for a in arrays) or any(a.max() > 9 for a in arrays[1::2]):
        raise DataError(f"{resource}: arrays have unexpected dtypes or labels")
    arrays[1::2] = [labels.astype(np.int64) for labels in arrays[1::2]]
    source = f"bundled ten-digit sample ({len(arrays[1])} train, {len(arrays[3])} valid)"
    return LabelledImages(*arrays, vocab=[str(d) for d in range(10)], source=source)


def load_for_training(path: PathLike | None) -> MnistData | LabelledImages:
    """The data at ``path`` with its task read from its labels: the chapter's 3s and 7s
    (:class:`MnistData`, checked as :func:`load_mnist_3_7` does) or more classes (:class:`LabelledImages`).

    A PNG folder whose class folders are all among ``3`` and ``7`` is the chapter's; any other names are
    classes of :func:`load_image_folder`. IDX files holding at most two digits are the chapter's (so a
    label other than 3 or 7 is an error there); three digits or more are :func:`load_mnist`'s classes.
    """
    if path is None:
        return load_bundled_sample()
    root = Path(path).expanduser()
    train = root / "train"
    if train.is_dir():
        names = {e.name for e in os.scandir(train) if e.is_dir() and not e.name.startswith(".")}
        return load_mnist_3_7(root) if names <= {"3", "7"} else load_image_folder(root)
    labels_path = _find_idx(root, "train", "labels") if root.is_dir() else None
    if labels_path is not None and is_mnist_idx_folder(root) and len(np.unique(read_idx(labels_path))) > 2:
        return load_mnist(root)
    return load_mnist_3_7(root)


def is_mnist_idx_folder(path: PathLike) -> bool:
    """Whether ``path`` holds MNIST's training images as an IDX file."""
    return _find_idx(Path(path).expanduser(), "train", "images") is not None


# ---------------------------------------------------------------------------------------------------------
# IDX files
# ---------------------------------------------------------------------------------------------------------


def read_idx(path: PathLike) -> np.ndarray:
    """Read an MNIST IDX file of unsigned bytes, gzipped or raw (told apart by content, not by name).

    Returns uint8 images (n, rows, cols) for magic number 2051, or uint8 labels (n,) for 2049.

    The header is checked before the data is read, and the data is read in chunks up to one byte past what
    the header claims, so neither a header claiming billions of items nor a gzip bomb can take more memory
    than the smaller of the two: the header's claim and what the file really holds.

    Raises:
        DataError: the file is missing or unreadable, has another magic number or data type, is truncated,
            has bytes past the end the header gives, or is corrupt gzip.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            if raw.read(2) == _GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    return _parse_idx(unzipped, path, file_size=None)
            raw.seek(0)
            return _parse_idx(raw, path, file_size=os.fstat(raw.fileno()).st_size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def load_idx_pair(images_path: PathLike, labels_path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file: uint8 images (N, 28, 28) and uint8 labels (N,).

    Raises:
        DataError: either file fails :func:`read_idx`, holds the other kind of data, images are not
            28x28, or the two files disagree on N.
    """
    images = read_idx(images_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: holds labels (magic 2049), expected images (magic 2051)")
    if images.shape[1:] != IMAGE_SHAPE:
        rows, cols = images.shape[1:]
        raise DataError(f"{images_path}: images are {rows}x{cols} pixels, expected 28x28")
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: holds images (magic 2051), expected labels (magic 2049)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path}: holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images, labels


def _parse_idx(stream: IO[bytes], path: Path, file_size: int | None) -> np.ndarray:
    # file_size is known for raw files only; for gzip the decompressed size shows itself as we read.
    head = _read_at_most(stream, 4)
    if len(head) < 4:
        raise DataError(f"{path}: only {len(head)} bytes, too short for an IDX header")
    magic = int.from_bytes(head, "big")
    if head[:2] != b"\0\0":
        raise DataError(f"{path}: not an IDX file (magic number {magic:#010x}; expected 2049 or 2051)")
    if head[2] != _IDX_UBYTE:
        raise DataError(f"{path}: IDX data type code {head[2]:#04x}; only 0x08 (unsigned byte) is supported")
    if magic not in _IDX_MAGICS:
        raise DataError(
            f"{path}: IDX file with {head[3]} dimensions (magic {magic}); expected 2049 for labels "
            "(1 dimension) or 2051 for images (3 dimensions)"
        )
    ndim = head[3]
    dims_bytes = _read_at_most(stream, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DataError(f"{path}: truncated header: {ndim} dimension sizes need {4 * ndim} bytes")
    dims = struct.unpack(f">{ndim}I", dims_bytes)
    claimed = math.prod(dims)
    shape = " x ".join(map(str, dims))
    header_size = 4 + 4 * ndim
    if file_size is not None and file_size - header_size < claimed:
        raise DataError(
            f"{path}: truncated: the header claims {shape} = {claimed} bytes of data "
            f"but the file holds {file_size - header_size}"
        )
    # One byte past the claim is enough to tell that there is trailing data, without reading all of it.
    payload = _read_at_most(stream, claimed + 1)
    if len(payload) < claimed:
        raise DataError(
            f"{path}: truncated: the header claims {shape} = {claimed} bytes of data "
            f"but the file holds {len(payload)}"
        )
    if len(payload) > claimed:
        raise DataError(f"{path}: unexpected bytes after the {shape} = {claimed} bytes the header claims")
    try:
        return np.frombuffer(payload, dtype=np.uint8).reshape(dims)
    except ValueError as exc:
        # An empty array can still have a shape numpy refuses: 0 x 4294967295 x 4294967295 overflows.
        raise DataError(f"{path}: the header's shape {shape} is too large for an array ({exc})") from exc


def _read_at_most(stream: IO[bytes], limit: int) -> bytearray:
    # Chunked because a single read(limit) makes Python allocate `limit` bytes up front, and `limit` comes
    # from a header that may lie; this way memory grows only with the bytes that actually arrive.
    buffer = bytearray()
    while len(buffer) < limit:
        chunk = stream.read(min(limit - len(buffer), _READ_CHUNK))
        if not chunk:
            break
        buffer += chunk
    return buffer


# ---------------------------------------------------------------------------------------------------------
# PNG folders
# ---------------------------------------------------------------------------------------------------------


def load_png_folder(root: PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read ``root/split/3/*.png`` and ``root/split/7/*.png`` (fastai's MNIST_SAMPLE layout).

    Returns uint8 images (N, 28, 28), all 3s first and then all 7s, and uint8 labels (N,) taken from the
    folder names. Within a folder, files are ordered by their numeric stem (``2.png`` before ``10.png``),
    then by name. Files whose names do not end in ``.png`` are ignored, and so are hidden files (such as the
    ``._*`` files macOS leaves beside copies).

    Each PNG must decode to a 28x28 grayscale image of Pillow's mode ``L`` (8-bit grey; Pillow also widens
    2- and 4-bit grey to 0..255 for us). Colour, palette, alpha, 1-bit and 16-bit images are refused rather
    than converted, since converting them would hide that the folder is not what it claims to be.

    Raises:
        DataError: ``root``, ``root/split`` or a digit folder is missing, a digit folder holds no PNG, or a
            PNG cannot be decoded, is not grayscale mode ``L``, or is not 28x28.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; {_EXPECTED_LAYOUTS}")
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: no such folder; expected {split}/3 and {split}/7 holding PNGs")
    files: list[tuple[int, Path]] = []
    for digit in DIGITS:
        folder = split_dir / str(digit)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; expected the PNGs of the digit {digit} here")
        pngs = _png_files(folder)
        if not pngs:
            raise DataError(f"{folder}: holds no .png files")
        files += [(digit, png) for png in pngs]

    images = np.empty((len(files), *IMAGE_SHAPE), dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.uint8)
    for i, (digit, png) in enumerate(files):
        images[i] = read_png(png)
        labels[i] = digit
    return images, labels


def _png_files(folder: Path) -> list[Path]:
    def order(name: str) -> tuple[bool, int, str]:
        stem = name[:-4]
        # isdecimal rather than isdigit: int() rejects some "digits" such as superscripts.
        return (False, int(stem), name) if stem.isdecimal() else (True, 0, name)

    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if e.name.lower().endswith(".png") and not e.name.startswith(".") and e.is_file()
        ]
    return [folder / name for name in sorted(names, key=order)]


def read_png(path: PathLike) -> np.ndarray:
    """One 28x28 8-bit grayscale PNG as uint8 (28, 28), light digit on black as in MNIST.

    Raises:
        DataError: the file is missing, not a PNG, damaged, not grayscale or not 28x28.
    """
    path = Path(path)
    with _open_png(path) as image:
        # Checked before decoding, so that a PNG claiming a huge canvas is refused without inflating it.
        if image.mode != "L":
            raise DataError(f"{path}: image mode {image.mode}, expected 8-bit grayscale (mode L)")
        if image.size != IMAGE_SHAPE:
            width, height = image.size
            raise DataError(f"{path}: {width}x{height} pixels, expected 28x28")
        return np.asarray(_decoded(path, image))


def read_digit(path: PathLike) -> tuple[np.ndarray, list[str]]:
    """A PNG of a digit to classify, of any size and colour, prepared as MNIST's images are: uint8
    (28, 28), a light digit on black. Returns the pixels and a note for every conversion made.

    What is not already 28x28 grey is converted as fastai prepares an image for a model trained on
    MNIST: to grey (colour averaged by luminance; transparent pixels laid on white, as a viewer shows
    them), then resized (bilinear) so that its longer side is 28 pixels, its aspect kept and the rest
    padded with background. A digit that is dark on a light background (its border is mostly light) is
    inverted, since the models only ever saw light digits on black.

    Raises:
        DataError: the file is missing, not a PNG, damaged, or larger than :data:`MAX_DIGIT_PIXELS`.
    """
    path = Path(path)
    notes: list[str] = []
    with _open_png(path) as image:
        width, height = image.size
        if width * height > MAX_DIGIT_PIXELS:       # checked before decoding, as in read_png
            raise DataError(f"{path}: {width}x{height} pixels; a digit to classify is at most "
                            f"{MAX_DIGIT_PIXELS:,} pixels")
        grey = _to_grey(_decoded(path, image), notes)
        pixels = np.asarray(grey)
        if grey.size != IMAGE_SHAPE:
            pixels = _fit_28(grey, _background(pixels))
            notes.append(f"resized from {width}x{height} to 28x28 keeping its aspect")
    if _background(pixels) > 127:
        pixels = 255 - pixels
        notes.append("inverted: a dark digit on a light background, where MNIST's are light on black")
    return pixels, notes


MAX_DIGIT_PIXELS = 4096 * 4096
"""The largest image :func:`read_digit` decodes (a photo of a digit from a phone fits)."""

# Pillow reports a damaged file through any of these, depending on where the damage is.
_PIL_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, EOFError, struct.error,
                                                zlib.error)


def _open_png(path: Path) -> Any:
    from PIL import Image  # lazily: only the PNG readers need Pillow

    if not path.is_file():
        raise DataError(f"{path}: {'is not a file' if path.exists() else 'no such file'}")
    try:
        return Image.open(path, formats=("PNG",))
    except (*_PIL_ERRORS, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable PNG ({exc})") from exc


def _decoded(path: Path, image: Any) -> Any:
    """``image`` with its pixels read, every row of them really in the file."""
    try:
        image.load()
    except _PIL_ERRORS as exc:
        raise DataError(f"{path}: corrupt PNG data ({exc})") from exc
    _check_png_pixel_count(path)
    return image


def _to_grey(image: Any, notes: list[str]) -> Any:
    """Image mode L from any PNG mode, saying what was done."""
    from PIL import Image

    mode = image.mode
    if mode == "L":
        return image
    if "A" in mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() != (255, 255):
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            notes.append(f"converted from {mode} to grey, transparent pixels taken as white")
            return Image.alpha_composite(white, rgba).convert("L")
        image = rgba
    if mode in ("I", "I;16", "I;16B", "F"):
        # 16-bit or float grey: scale the range actually used to 0..255 instead of clipping it.
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if hi == lo else (values - lo) * (255 / (hi - lo))
        notes.append(f"converted from {mode} grey to 8 bits")
        return Image.fromarray(np.round(scaled).astype(np.uint8))
    notes.append(f"converted from {mode} to grey")
    return image.convert("L")


def _background(pixels: np.ndarray) -> float:
    """The background's grey level: the median of the image's outermost ring of pixels."""
    ring = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    return float(np.median(ring))


def _fit_28(grey: Any, background: float) -> np.ndarray:
    """``grey`` resized so its longer side is 28, centred on a 28x28 canvas of ``background``."""
    from PIL import Image

    width, height = grey.size
    scale = 28 / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = grey.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("L", IMAGE_SHAPE, int(round(background)))
    canvas.paste(small, ((28 - size[0]) // 2, (28 - size[1]) // 2))
    return np.asarray(canvas)


# Samples per pixel of each PNG colour type: grey, RGB, palette index, grey + alpha, RGBA (PNG spec, 11.2.2).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 interlacing: each pass's first column and row, and its steps across and down (PNG spec, 8.2).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _check_png_pixel_count(path: Path) -> None:
    """Raise DataError unless the PNG's compressed pixel data holds every row its header promises.

    Pillow zero-fills the rows of a complete but too short data stream without a word, which would
    turn a damaged image into a plausible one. Called after Pillow has read the file: the chunks are
    known to be well formed, and the image bounded (28x28 grey, or a digit of at most MAX_DIGIT_PIXELS).
    """
    raw = path.read_bytes()
    pos, header, compressed = 8, b"", []
    while pos + 8 <= len(raw):
        length, kind = struct.unpack(">I4s", raw[pos:pos + 8])
        data = raw[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            compressed.append(data)
        pos += 12 + length
    try:
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
        bits = depth * _PNG_CHANNELS.get(colour, 1)
        passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
        expected = 0
        for x0, y0, dx, dy in passes:
            columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if columns > 0 and rows > 0:
                expected += rows * (1 + -(-columns * bits // 8))    # each row: a filter byte, then pixels
        got = len(zlib.decompressobj().decompress(b"".join(compressed), expected))
    except (struct.error, zlib.error) as exc:      # Pillow read it, so this should not happen
        raise DataError(f"{path}: corrupt PNG data ({exc})") from exc
    if got < expected:      # (data beyond the last row, Pillow ignores; so do we)
        raise DataError(f"{path}: its pixel data holds {got} bytes where {width}x{height} pixels at {bits} "
                        f"bits need {expected}: a damaged image")


# ---------------------------------------------------------------------------------------------------------
# Arrays for training
# ---------------------------------------------------------------------------------------------------------


def to_features(images: np.ndarray, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """Flatten uint8 images (N, 28, 28) to (N, 784) and scale pixels from 0..255 to [0, 1].

    Raises:
        DTypeError: ``images`` is not uint8 (scaling floats again would silently shrink them by 255).
        ShapeError: ``images`` is not a stack (N, height, width), e.g. a single image.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DTypeError(f"to_features expects uint8 pixels (0..255), got {images.dtype}")
    if images.ndim != 3:     # one (28, 28) image would otherwise pass for 28 images of 28 pixels
        raise ShapeError(f"to_features expects a stack of images (N, height, width), got {images.shape}")
    features = images.reshape(len(images), math.prod(images.shape[1:])).astype(dtype)   # N may be 0
    features /= 255
    return features


def to_targets(labels: np.ndarray, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """Labels (N,) of 3s and 7s to targets (N, 1): 1.0 for a 3, 0.0 for a 7 (fastbook's ``train_y``).

    Raises:
        DataError: a label is neither 3 nor 7.
    """
    labels = np.asarray(labels)
    _check_labels(labels.ravel(), "to_targets")
    return (labels == 3).astype(dtype).reshape(-1, 1)


class DataLoader:
    """Iterate over ``(xb, yb)`` numpy batches of ``batch_size`` rows; the last batch may be smaller.

    ``dataset`` is what fastbook passes: a list of ``(x, y)`` pairs (``list(zip(x, y))``), or a pair of
    arrays ``(x, y)`` of the same length. ``DataLoader(x, y, ...)`` is accepted too. A list of pairs is
    stacked into two arrays once, here, so that each batch is one fancy index and not a Python loop.

    With ``shuffle=True`` every pass (every ``iter()``) draws a fresh permutation from a generator the loader
    owns, seeded once with ``seed``: two loaders with the same seed yield the same epochs, bit for bit.

    Raises:
        ArgumentError: ``batch_size`` is not a positive integer, or ``dataset`` is neither form.
        DataError: ``x`` and ``y`` have different lengths.
    """

    def __init__(
        self,
        dataset: Any,
        y: np.ndarray | None = None,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(y, int | np.integer) and not isinstance(y, bool):
            raise ArgumentError(f"DataLoader: the second argument is y, an array; pass the batch size by "
                                f"name "
                                f"(batch_size={y})")
        self.x, self.y = _as_arrays(dataset) if y is None else (np.asarray(dataset), np.asarray(y))
        if len(self.x) != len(self.y):
            raise DataError(f"x has {len(self.x)} rows but y has {len(self.y)}")
        bad_seed = isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
        if seed is not None and bad_seed:
            raise ArgumentError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # The permutation is drawn here, not lazily in the generator, so that the order of iter() calls
        # alone decides which epoch gets which permutation.
        order = self._rng.permutation(len(self.x)) if self.shuffle else None
        return self._batches(order)

    def _batches(self, order: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.x), self.batch_size):
            if order is None:
                rows = slice(start, start + self.batch_size)
            else:
                rows = order[start : start + self.batch_size]
            yield self.x[rows], self.y[rows]


def _as_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` arrays from a pair of arrays (a tuple) or from a sequence of ``(x, y)`` pairs."""
    # A tuple of two arrays is the pair form; anything else (fastbook's list(zip(...))) holds pairs.
    # Deciding by type keeps a dataset of exactly two samples from passing for a pair of arrays.
    if isinstance(dataset, tuple) and len(dataset) == 2 and all(hasattr(a, "__len__") for a in dataset) \
            and not all(isinstance(a, tuple) for a in dataset):
        return np.asarray(dataset[0]), np.asarray(dataset[1])
    try:
        pairs = list(dataset)
    except TypeError:
        raise ArgumentError(f"DataLoader: expected a list of (x, y) pairs or a pair of arrays (x, y), got "
                            f"{type(dataset).__name__}") from None
    if not pairs:
        raise DataError("DataLoader: the dataset holds no samples")
    bad = next((i for i, p in enumerate(pairs) if not (isinstance(p, tuple | list) and len(p) == 2)), None)
    if bad is not None:
        raise ArgumentError(f"DataLoader: sample {bad} is not an (x, y) pair")
    try:
        return np.stack([np.asarray(p[0]) for p in pairs]), np.stack([np.asarray(p[1]) for p in pairs])
    except ValueError as exc:
        raise ShapeError(f"DataLoader: the samples' shapes differ ({exc})") from None


class DataLoaders:
    """A training and a validation :class:`DataLoader`, as fastai's ``DataLoaders(dl_train, dl_valid)``."""

    def __init__(self, train: DataLoader, valid: DataLoader, vocab: list[str] | None = None) -> None:
        for name, dl in (("train", train), ("valid", valid)):
            if not isinstance(dl, DataLoader):
                raise ArgumentError(f"DataLoaders: {name} must be a DataLoader, got {type(dl).__name__}")
        self.train, self.valid, self.vocab = train, valid, vocab

    def __getitem__(self, i: int) -> DataLoader:
        return (self.train, self.valid)[i]

    def __len__(self) -> int:
        return 2
