"""Shared test settings: hypothesis profiles and the location of the optional full data set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# "default" keeps the whole suite within minutes on two cores; "thorough" is for a long local run:
#   HYPOTHESIS_PROFILE=thorough python -m pytest
settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
# scripts/mutate.py runs the engine's tests once per mutant: few examples, the same ones every run, and no
# example database shared between its parallel runs.
settings.register_profile("mutation", max_examples=2, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))

REPO = Path(__file__).resolve().parents[1]

# The full MNIST 3-vs-7 data (12,396 train and 2,038 valid images), for the tests marked "data": where
# MICROGRADX_DATA says, else in shared/data beside the checkout. Either place may hold the data itself
# (fastai's mnist_sample folder, or a folder of IDX files) or folders of it: mnist_sample/ (PNGs) and
# mnist_3_7_idx/ (IDX). Read once, at import: test_notebooks clears the variable for the notebooks.
DATA_ENV = "MICROGRADX_DATA"
_DATA_ROOT = Path(os.environ[DATA_ENV]).expanduser() if os.environ.get(DATA_ENV) else \
    REPO.parent / "shared" / "data"


def _find_full_data(kind: str) -> Path | None:
    for folder in (_DATA_ROOT, _DATA_ROOT / {"png": "mnist_sample", "idx": "mnist_3_7_idx"}[kind]):
        if kind == "png" and (folder / "train" / "3").is_dir():
            return folder
        if kind == "idx" and any(folder.glob("train-images-idx3-ubyte*")):
            return folder
    return None


FULL_DATA = {kind: _find_full_data(kind) for kind in ("png", "idx")}
# No path in the reason: a skip says what is missing and how to provide it, wherever the suite runs.
NO_FULL_DATA = (f"the full MNIST 3-vs-7 data is not here; set {DATA_ENV} to a copy (fastai's mnist_sample "
                "folder, IDX files, or a folder holding mnist_sample/ and mnist_3_7_idx/)")


def full_data(kind: str) -> Path:
    """The full data as PNG folders (``"png"``) or IDX files (``"idx"``); skips the test when absent."""
    folder = FULL_DATA[kind]
    if folder is None:
        pytest.skip(NO_FULL_DATA)
    return folder


@pytest.fixture
def full_png_folder() -> Path:
    return full_data("png")


@pytest.fixture
def full_idx_folder() -> Path:
    return full_data("idx")
