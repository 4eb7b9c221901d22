"""A release a user can trust: `python -m build` makes a wheel and an sdist that hold everything.

Offline: the build runs without isolation (setuptools from this environment, nothing
downloaded), in a copy of the project so that the checkout gets no build folders.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import aekit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "aekit"
SDIST_EXTRAS = (
    "README.md",
    "CHANGELOG.md",
    "pyproject.toml",
    "constraints.txt",
    "LICENSE",
    "mkdocs.yml",
    "docs/index.md",  # the pages tests/test_docs_examples.py runs
)


def _modules() -> set[str]:
    """Every module of the source tree, as the wheel names it (aekit/...)."""
    return {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")}


def _need_build_tools() -> None:
    """Skip unless `python -m build --no-isolation` can run here without downloading."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    if find_spec("build") is None or find_spec("build.__main__") is None:
        pytest.skip("the build package is not installed (pip install build)")
    try:
        setuptools = version("setuptools")
    except PackageNotFoundError:
        pytest.skip("setuptools is not installed (the build backend; pip install setuptools)")
    if int(setuptools.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools} is older than pyproject's setuptools>=77")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    _need_build_tools()
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not run from a checkout (no pyproject.toml beside tests/)")
    tmp = tmp_path_factory.mktemp("release")
    project = tmp / "project"
    ignore = shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", "dist", "runs", "site", ".*", "benchmarks"
    )
    shutil.copytree(ROOT, project, ignore=ignore)
    out = tmp / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_build_makes_a_wheel_and_an_sdist_of_this_version(built):
    version = aekit.__version__
    wheels, sdists = list(built.glob("*.whl")), list(built.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"aekit-{version}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"aekit-{version}.tar.gz"]
    with zipfile.ZipFile(wheels[0]) as whl:
        meta = whl.read(f"aekit-{version}.dist-info/METADATA").decode()
        entry_points = whl.read(f"aekit-{version}.dist-info/entry_points.txt").decode()
    fields = email.parser.Parser().parsestr(meta)
    assert fields["Name"] == "aekit" and fields["Version"] == version
    assert fields["License-Expression"] == "BSD-3-Clause"
    assert fields.get_all("License-File") == ["LICENSE"]
    with zipfile.ZipFile(wheels[0]) as whl:
        assert (
            "Redistribution and use"
            in whl.read(f"aekit-{version}.dist-info/licenses/LICENSE").decode()
        )
    assert "aekit = aekit.__main__:run" in entry_points
    extras = set(fields.get_all("Provides-Extra"))
    assert {"tensorboard", "mlflow", "test", "export"} <= extras
    assert not any("tensorboard" in r or "mlflow" in r for r in _test_extra(fields))


def _test_extra(fields) -> list[str]:
    return [r for r in fields.get_all("Requires-Dist") if 'extra == "test"' in r]


def test_the_wheel_holds_every_module(built):
    (wheel,) = built.glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = {n for n in whl.namelist() if n.startswith("aekit/")}
    assert {n for n in names if n.endswith(".py")} == _modules()


def test_the_sdist_holds_the_sources_and_the_documents(built):
    (sdist,) = built.glob("*.tar.gz")
    top = f"aekit-{aekit.__version__}/"
    with tarfile.open(sdist) as tar:
        names = {n[len(top) :] for n in tar.getnames() if n.startswith(top)}
    assert set(SDIST_EXTRAS) <= names
    assert {f"src/{m}" for m in _modules()} <= names
    assert "tests/test_release.py" in names


def test_changelog_names_this_version_or_unreleased():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "keepachangelog.com" in text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings, "CHANGELOG.md has no version sections"
    assert f"[{aekit.__version__}]" in headings[0] or "[Unreleased]" in headings[0]


def test_the_version_lives_in_one_place():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not run from a checkout (no pyproject.toml beside tests/)")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "aekit.__version__"}
