"""Write the digits ``microgradx predict --examples`` runs on: PNGs in microgradx/examples/.

They are the first four 3s and the first four 7s of the bundled sample's valid split
(``microgradx/datasets/mnist_3_7_sample.npz``, see its README for where those images come from), as
28x28 8-bit grayscale PNGs, light on black as in MNIST, named ``<digit>-valid-<index>.png`` after their
row in that split. Run from anywhere:

    python scripts/make_examples.py

The files come out the same every time for the same Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "microgradx" / "datasets" / "mnist_3_7_sample.npz"
OUT = REPO / "microgradx" / "examples"
PER_DIGIT = 4


def main() -> None:
    with np.load(SAMPLE) as sample:
        images, labels = sample["valid_images"], sample["valid_labels"]
    for old in OUT.glob("*.png"):
        old.unlink()
    for digit in (3, 7):
        for index in np.flatnonzero(labels == digit)[:PER_DIGIT]:
            path = OUT / f"{digit}-valid-{index:03d}.png"
            Image.fromarray(images[index]).save(path, optimize=True)
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
