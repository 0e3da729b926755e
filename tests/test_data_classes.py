"""Tests of the readers for any classes (all ten digits, image folders) and fastbook's DataLoader forms."""

from __future__ import annotations

import numpy as np
import pytest
from test_data import idx_bytes, raises_naming, write_idx, write_png

import microgradx as mg
from microgradx.data import DataLoader, DataLoaders, is_mnist_idx_folder, load_image_folder, load_mnist
from microgradx.errors import ArgumentError, DataError, ShapeError

from conftest import REPO

RNG = np.random.default_rng(1)
TEN_IMAGES = RNG.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
TEN_LABELS = np.arange(20, dtype=np.uint8) % 10
MNIST_IDX = REPO.parent / "shared" / "data" / "mnist_idx"


def ten_digit_folder(root, *, labels=TEN_LABELS, images=TEN_IMAGES, gz=True):
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz=gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz=gz)
    return root


# ---- DataLoader: fastbook's forms ----

def test_list_of_pairs_and_pair_of_arrays_give_the_same_batches():
    x, y = np.arange(14.0).reshape(7, 2), np.arange(7.0).reshape(7, 1)
    from_pairs = list(DataLoader(list(zip(x, y, strict=True)), batch_size=3))
    from_arrays = list(DataLoader((x, y), batch_size=3))
    from_two = list(DataLoader(x, y, batch_size=3))
    assert len(DataLoader((x, y), batch_size=3)) == 3 == len(from_pairs)
    for a, b, c in zip(from_pairs, from_arrays, from_two, strict=True):
        for u, v, w in zip(a, b, c, strict=True):
            np.testing.assert_array_equal(u, v)
            np.testing.assert_array_equal(u, w)
    assert from_pairs[0][0].shape == (3, 2) and from_pairs[0][1].shape == (3, 1)
    assert from_pairs[-1][0].shape == (1, 2)


def test_a_list_of_two_pairs_is_two_samples_not_a_pair_of_arrays():
    ds = [(np.zeros(3), 0), (np.ones(3), 1)]
    (xb, yb), = DataLoader(ds, batch_size=5)
    assert xb.shape == (2, 3) and list(yb) == [0, 1]


def test_shuffled_loader_is_seeded():
    ds = list(zip(np.arange(10.0), np.arange(10), strict=True))
    a = [yb.tolist() for yb in (b for _, b in DataLoader(ds, batch_size=4, shuffle=True, seed=3))]
    b = [yb.tolist() for yb in (b for _, b in DataLoader(ds, batch_size=4, shuffle=True, seed=3))]
    assert a == b and sorted(sum(a, [])) == list(range(10)) and sum(a, []) != list(range(10))


def test_bad_datasets_are_refused():
    with pytest.raises(ArgumentError, match="batch_size="):
        DataLoader([(1, 2)], 64)
    with pytest.raises(ArgumentError, match="pair"):
        DataLoader([(1, 2, 3)], batch_size=2)
    with pytest.raises(ShapeError, match="shapes differ"):
        DataLoader([(np.zeros(2), 0), (np.zeros(3), 1)], batch_size=2)
    with pytest.raises(DataError, match="no samples"):
        DataLoader([], batch_size=2)
    with pytest.raises(DataError, match="rows"):
        DataLoader((np.zeros(3), np.zeros(4)), batch_size=2)


def test_dataloaders_holds_train_and_valid():
    train, valid = DataLoader((np.zeros(2), np.zeros(2))), DataLoader((np.ones(1), np.ones(1)))
    dls = DataLoaders(train, valid)
    assert dls.train is train and dls.valid is valid and dls[0] is train and dls[1] is valid
    with pytest.raises(ArgumentError, match="valid"):
        DataLoaders(train, [1, 2])
    assert mg.DataLoaders is DataLoaders and mg.DataLoader is DataLoader


# ---- MNIST's four IDX files, ten digits ----

@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_ten_digits(tmp_path, gz):
    data = load_mnist(ten_digit_folder(tmp_path, gz=gz))
    assert data.vocab == [str(d) for d in range(10)]
    np.testing.assert_array_equal(data.train_labels, TEN_LABELS)
    np.testing.assert_array_equal(data.valid_images, TEN_IMAGES)
    assert data.train_labels.dtype == np.int64 and is_mnist_idx_folder(tmp_path)


def test_load_mnist_refuses_labels_outside_the_digits(tmp_path):
    labels = TEN_LABELS.copy()
    labels[4] = 10
    ten_digit_folder(tmp_path, labels=labels)
    with raises_naming(tmp_path / "train-labels-idx1-ubyte.gz", "label 10", "index 4", "0-9"):
        load_mnist(tmp_path)


def test_load_mnist_refuses_files_of_different_lengths(tmp_path):
    ten_digit_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(TEN_LABELS[:7]), gz=True)
    with raises_naming(tmp_path / "t10k-images-idx3-ubyte.gz", "20 images", "7 labels"):
        load_mnist(tmp_path)


def test_load_mnist_names_a_missing_file(tmp_path):
    ten_digit_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with raises_naming(tmp_path, "valid-images-idx3"):
        load_mnist(tmp_path)


@pytest.mark.data
def test_full_mnist_has_sixty_and_ten_thousand_digits():
    if not is_mnist_idx_folder(MNIST_IDX):
        pytest.skip("MNIST's IDX files are not here")
    data = load_mnist(MNIST_IDX)
    assert data.train_images.shape == (60000, 28, 28) and data.valid_images.shape == (10000, 28, 28)
    assert sorted(set(data.valid_labels.tolist())) == list(range(10))


# ---- image folders with any class names ----

def folder_tree(root, classes=("cat", "ant", "bee"), size=(28, 28)):
    for split, n in (("train", 2), ("valid", 1)):
        for c in classes:
            for i in range(n):
                write_png(root / split / c / f"{i}.png", RNG.integers(0, 256, size=size, dtype=np.uint8))
    return root


def test_image_folder_indexes_classes_by_sorted_name(tmp_path):
    data = load_image_folder(folder_tree(tmp_path))
    assert data.vocab == ["ant", "bee", "cat"]
    assert data.train_labels.tolist() == [0, 0, 1, 1, 2, 2] and data.valid_labels.tolist() == [0, 1, 2]
    assert data.train_images.shape == (6, 28, 28)


def test_image_folder_takes_any_square_size(tmp_path):
    data = load_image_folder(folder_tree(tmp_path, ("a", "b"), size=(12, 12)))
    assert data.valid_images.shape == (2, 12, 12)


def test_image_folder_with_one_class_is_refused(tmp_path):
    folder_tree(tmp_path, ("only",))
    with raises_naming(tmp_path / "train", "1 class folder", "only", "at least two"):
        load_image_folder(tmp_path)


def test_image_folder_refuses_non_square_and_mixed_sizes(tmp_path):
    folder_tree(tmp_path, ("a", "b"))
    bad = write_png(tmp_path / "train" / "b" / "9.png", np.zeros((28, 20), dtype=np.uint8))
    with raises_naming(bad, "20x28", "square"):
        load_image_folder(tmp_path)
    bad.unlink()
    bad = write_png(tmp_path / "valid" / "a" / "9.png", np.zeros((14, 14), dtype=np.uint8))
    with raises_naming(bad, "14x14", "first image is 28x28"):
        load_image_folder(tmp_path)


def test_image_folder_refuses_a_valid_class_train_lacks(tmp_path):
    folder_tree(tmp_path, ("a", "b"))
    write_png(tmp_path / "valid" / "zebra" / "0.png", np.zeros((28, 28), dtype=np.uint8))
    with raises_naming(tmp_path / "valid" / "zebra", "not among"):
        load_image_folder(tmp_path)
