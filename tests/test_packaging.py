"""The package as users get it: the sdist and the wheel build cleanly, pass ``twine check``, hold what
they must, and the wheel installed into a fresh venv trains on the bundled sample.

The builds happen once for the module (about half a minute: ``python -m build`` makes its own isolated
build environment, from pip's cache or PyPI).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import microgradx

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.packaging

# What the test suite, run from the unpacked sdist, reads besides the package.
SUITE_FOLDERS = ("tests", "docs", "notebooks", "benchmarks", "scripts")
SUITE_FILES = ("README.md", "LICENSE", "CHANGELOG.md", "Makefile", "mkdocs.yml", "setup.cfg",
               "pyproject.toml", ".ci/run")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("build", reason="needs the test extra's build (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    warnings = [line for line in (done.stdout + done.stderr).splitlines()
                if re.search(r"warning", line, re.I) and "byte-compil" not in line]
    # Byte-compiling is skipped (and said so) only where PYTHONDONTWRITEBYTECODE is set: not ours to fix.
    assert not warnings, "setuptools warned:\n" + "\n".join(warnings)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_archives_pass_twine_check(dist):
    pytest.importorskip("twine", reason="needs the test extra's twine")
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]),
                           str(dist["wheel"])], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_archives_carry_the_version_of_the_package(dist):
    version = microgradx.__version__
    assert dist["sdist"].name == f"microgradx-{version}.tar.gz"
    assert dist["wheel"].name.startswith(f"microgradx-{version}-")


def test_the_sdist_holds_everything_its_test_suite_reads(dist):
    with tarfile.open(dist["sdist"]) as archive:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in archive.getnames()}
    expected = set(SUITE_FILES)
    for folder in (*SUITE_FOLDERS, "microgradx"):
        for path in (REPO / folder).rglob("*"):
            parts = path.relative_to(REPO).parts      # what runs leave behind: caches, hidden folders
            if path.is_file() and not any(p == "__pycache__" or p.startswith(".") for p in parts) \
                    and path.suffix != ".pyc":
                expected.add(path.relative_to(REPO).as_posix())
    missing = sorted(expected - names)
    assert not missing, f"not in the sdist: {missing}"
    assert "tests/conftest.py" in names and "tests/op_cases.py" in names     # the helpers it once lacked
    assert not [n for n in names if "__pycache__" in n or n.startswith(("site/", ".venv/"))]


def test_the_wheel_holds_the_package_and_its_data_only(dist):
    with zipfile.ZipFile(dist["wheel"]) as archive:
        names = archive.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"microgradx", f"microgradx-{microgradx.__version__}.dist-info"}, tops
    assert "microgradx/py.typed" in names and "microgradx/datasets/mnist_3_7_sample.npz" in names
    assert len([n for n in names if n.startswith("microgradx/examples/") and n.endswith(".png")]) == 8


def test_the_changelog_names_the_version_once():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (\S+)", text, re.M)
    assert versions == [microgradx.__version__], versions
    # ...and the package metadata reads it from the same single place.
    assert "version = attr: microgradx.__version__" in (REPO / "setup.cfg").read_text(encoding="utf-8")


def test_the_wheel_in_a_fresh_venv_trains_on_the_bundled_sample_and_predicts(dist, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # The dependencies come from the environment running the tests (a .pth line puts its site-packages
    # on the new venv's path), so nothing is downloaded; the package itself only from the wheel.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site, "borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--no-deps", "--no-index", "--force-reinstall", str(dist["wheel"])],
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    run_dir = tmp_path / "elsewhere"          # not the checkout: its microgradx/ must not be imported
    run_dir.mkdir()
    # Nor a checkout named by PYTHONPATH (a developer's worktree): the wheel alone must be imported.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import microgradx; print(microgradx.__file__)"],
                           cwd=run_dir, env=clean, capture_output=True, text=True, check=True).stdout
    assert Path(where).resolve().is_relative_to(Path(site).resolve()), where
    cli = env_dir / ("Scripts/microgradx.exe" if os.name == "nt" else "bin/microgradx")
    done = subprocess.run([str(cli), "train", "--epochs", "2", "--quiet", "--out", "run"], cwd=run_dir,
                          env=clean, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "data: bundled sample" in done.stdout and "valid accuracy" in done.stdout
    assert (run_dir / "run" / "metrics.json").is_file()
    done = subprocess.run([str(cli), "predict", "--weights", "run/checkpoint.safetensors", "--examples"],
                          cwd=run_dir, env=clean, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and "examples right:" in done.stdout, done.stderr
