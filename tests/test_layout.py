"""tests/ mirrors src/aekit/ (issue 25, point 4): a package's tests are in tests/<package>/, and
only the tests of the whole sit at tests/ itself. DEVELOPERS.md, "Where things go", says which
folder a test belongs in."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src" / "aekit"

# the tests of the whole: the import graph, the layout, the release, the docs' examples, and the
# failures, faults and hostile files that go through every layer from the command line
WHOLE = {
    "test_docs_examples.py",
    "test_failures.py",
    "test_faults.py",
    "test_hostile_files.py",
    "test_layers.py",
    "test_layout.py",
    "test_release.py",
}
NOT_TESTS = {"fixtures", "__pycache__"}


def _packages() -> set[str]:
    return {p.parent.name for p in SRC.glob("*/__init__.py")}


def _folders() -> list[Path]:
    return [p for p in TESTS.iterdir() if p.is_dir() and p.name not in NOT_TESTS]


def test_every_test_folder_is_named_for_a_package_of_src():
    unknown = sorted(p.name for p in _folders() if p.name not in _packages())
    assert unknown == [], f"tests/{unknown} mirror no package of src/aekit/"


def test_the_test_folders_are_one_level_deep():
    deeper = sorted(
        str(p.relative_to(TESTS)) for folder in _folders() for p in folder.iterdir() if p.is_dir()
    )
    assert [d for d in deeper if not d.endswith("__pycache__")] == []


def test_only_the_tests_of_the_whole_sit_at_the_top():
    top = {p.name for p in TESTS.glob("test_*.py")}
    assert top - WHOLE == set(), (
        f"{sorted(top - WHOLE)}: put a package's tests in tests/<package>/ (DEVELOPERS.md)"
    )


def test_test_module_names_are_unique():
    """pytest's default import mode imports a test module by its file name (the folders have no
    __init__.py), so two test_x.py in different folders would collide."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "fixtures" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []
    assert not any(folder.joinpath("__init__.py").exists() for folder in _folders())
