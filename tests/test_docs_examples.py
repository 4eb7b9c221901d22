"""The examples of the README and of docs/ run (marker ``docs_examples``): a renamed flag fails
here instead of in a reader's terminal.

Every fenced ```bash and ```python block of README.md and docs/**/*.md is one test, run in a
fresh folder of its own (the reader's working directory) with this checkout's code
(``PYTHONPATH=src``), one thread and downloads off:

- a bash block runs as one ``bash`` script under ``set -euo pipefail``; ``aekit`` is a shell
  function for ``python -m aekit``, so ``aekit ...`` lines (and ``torchrun ... -m aekit``) run
  the checkout's command line. Its lines run in order: a later line may use an earlier one's
  run folder.
- a python block is written to a file and run by a new interpreter (a fresh namespace); a
  block of ``>>>`` lines runs as a doctest.

An HTML comment on the line just before the fence (several may stand one above the other)
tells the test more. Readers never see them; the page's source does:

- ``<!-- skip: REASON -->``: not run, reported as skipped with REASON (every skip has one:
  a GPU, several machines, installing packages, a measurement that takes minutes).
- ``<!-- needs: MODULE, ... -->``: run only when the optional modules import (an extra such as
  tensorboard); otherwise skipped, naming them.
- ``<!-- setup: NAME, ... -->``: the files a block refers to as a user's own (``photos/``,
  ``train.csv``, ``shards/``...) are made in its folder first by ``SETUPS[NAME]`` below, small
  and seeded; ``mnist`` links ``../shared/data`` to the shared data folder (the block is
  skipped with the reason when MNIST is absent, as the other MNIST tests are).
- ``<!-- quote: PATH -->``: the block quotes the source instead of being an example (the
  matrix derivation quotes src/aekit/scratch/): every line of code in it must still be a line of
  PATH, so a quote cannot drift from the code it explains.

Examples are small on purpose (the built-in digits, a few epochs): the module runs in a few
minutes on one core. The same pages build as a site, ``mkdocs build --strict``, in
``test_the_site_builds_strict`` (skipped without mkdocs: ``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import SRC, shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
TIMEOUT = 300  # seconds per block; each takes seconds

pytestmark = pytest.mark.docs_examples

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARK = re.compile(r"^<!--\s*(skip|needs|setup|quote)\s*:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The page's bash and python blocks, each with the markers just above its fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if m.group(1) in ("bash", "python"):
            marks, k = {}, i - 1
            while k >= 0 and lines[k].startswith("<!--"):
                mark = _MARK.match(lines[k])
                assert mark, f"{page.name}:{k + 1}: unknown marker {lines[k]!r}"
                marks[mark.group(1)] = mark.group(2)
                k -= 1
            found.append(Block(page, i + 1, m.group(1), "\n".join(lines[i + 1 : end]), marks))
        i = end + 1
    return found


BLOCKS = [b for page in PAGES for b in blocks_of(page)]


# ---- the user's files the examples name -------------------------------------------------


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * (255 / 16)).round().astype(np.uint8), d.target


def _write_pngs(folder: Path, images: np.ndarray, scale: int = 3, sub_every: int = 3) -> None:
    """8-bit grey PNGs, each digit enlarged ``scale`` times; every third in a subfolder."""
    from PIL import Image

    for i, img in enumerate(images):
        big = np.kron(img, np.ones((scale, scale), np.uint8))
        path = folder / ("more" if i % sub_every == 0 else "") / f"img{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(big, mode="L").save(path)


def setup_photos(work: Path) -> None:
    """photos/ (30 grey 24x24 PNGs, some in photos/more/) and new_photos/ (8 more)."""
    images, _ = _digits()
    _write_pngs(work / "photos", images[:30])
    _write_pngs(work / "new_photos", images[30:38])


def setup_clean_noisy(work: Path) -> None:
    """clean/: 40 grey 16x16 PNGs; noisy/: the same with Gaussian noise of sigma 25/255."""
    images, _ = _digits()
    clean = np.kron(images[:40], np.ones((2, 2), np.uint8))
    noise = np.random.default_rng(0).normal(0, 25, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).round().astype(np.uint8)
    _write_pngs(work / "clean", clean, scale=1)
    _write_pngs(work / "noisy", noisy, scale=1)


def setup_tables(work: Path) -> None:
    """my_table.csv (200 x 6, a header); train.csv, test.csv, normal.csv (rows near a plane,
    test with 10% gross outliers) and y.csv (test's labels, 1 = anomaly)."""
    rng = np.random.default_rng(0)

    def rows(n: int) -> np.ndarray:
        t = rng.normal(size=(n, 2))
        return t @ np.array([[1, 0.5, -1, 2, 0], [0, 1, 1, -0.5, 1]]) + rng.normal(0, 0.1, (n, 5))

    header = "a,b,c,d,e"
    np.savetxt(
        work / "my_table.csv",
        np.c_[rows(200), rng.random(200)],
        delimiter=",",
        header=header + ",f",
        comments="",
    )
    np.savetxt(work / "train.csv", rows(300), delimiter=",", header=header, comments="")
    np.savetxt(work / "normal.csv", rows(100), delimiter=",", header=header, comments="")
    test, y = rows(100), np.zeros(100, int)
    test[::10] += rng.choice([-6, 6], size=(10, 5))
    y[::10] = 1
    np.savetxt(work / "test.csv", test, delimiter=",", header=header, comments="")
    np.savetxt(work / "y.csv", y, fmt="%d", delimiter=",", header="y", comments="")


def setup_shards(work: Path) -> None:
    """shards/: three .npy shards of 300 rows x 16 float32 columns."""
    rng = np.random.default_rng(0)
    (work / "shards").mkdir()
    for i in range(3):
        np.save(work / "shards" / f"part-{i}.npy", rng.random((300, 16), dtype=np.float32))


def setup_mnist(work: Path) -> None:
    """../shared/data: the shared data folder (MNIST's IDX files), linked."""
    data = shared_data_dir()
    if data is None:
        pytest.skip("needs MNIST: set AEKIT_DATA or place shared/data beside the checkout")
    (work.parent / "shared").mkdir()
    (work.parent / "shared" / "data").symlink_to(data, target_is_directory=True)


SETUPS = {
    "photos": setup_photos,
    "clean-noisy": setup_clean_noisy,
    "tables": setup_tables,
    "shards": setup_shards,
    "mnist": setup_mnist,
}


# ---- running a block --------------------------------------------------------------------

_PRELUDE = """set -euo pipefail
aekit() { python -m aekit "$@"; }
"""


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": SRC,
        "OMP_NUM_THREADS": "1",
        "AEKIT_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        # `python` and `torchrun` are this interpreter's (its virtual environment's bin first)
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def _check_quote(block: Block) -> None:
    source = (ROOT / block.marks["quote"]).read_text(encoding="utf-8")
    code_lines = {line.split("  #")[0].strip() for line in source.splitlines()}
    for line in block.code.splitlines():
        code = line.split("  #")[0].strip()
        if code and not code.startswith("#"):
            assert code in code_lines, f"{block.id}: not a line of {block.marks['quote']}: {line}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    if "skip" in block.marks:
        assert block.marks["skip"], f"{block.id}: a skip needs a reason"
        pytest.skip(block.marks["skip"])
    if "quote" in block.marks:
        _check_quote(block)
        return
    for module in filter(None, re.split(r"[,\s]+", block.marks.get("needs", ""))):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}, not installed (an optional extra)")
    work = tmp_path / "work"
    work.mkdir()
    for name in filter(None, re.split(r"[,\s]+", block.marks.get("setup", ""))):
        assert name in SETUPS, f"{block.id}: unknown setup {name!r} (one of {sorted(SETUPS)})"
        SETUPS[name](work)
    if block.lang == "bash":
        argv = ["bash", "-c", _PRELUDE + block.code]
    elif block.code.lstrip().startswith(">>>"):
        (work / "example.txt").write_text(block.code + "\n", encoding="utf-8")
        argv = [sys.executable, "-m", "doctest", "example.txt"]
    else:
        (work / "example.py").write_text(block.code + "\n", encoding="utf-8")
        argv = [sys.executable, "example.py"]
    done = subprocess.run(
        argv, cwd=work, env=_env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, (
        f"{block.id} failed (exit {done.returncode}):\n{block.code}\n--- stdout\n"
        f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_every_example_is_found_and_every_skip_says_why() -> None:
    """The collection itself: the pages have runnable blocks, and no skip is silent."""
    assert len([b for b in BLOCKS if not b.marks]) >= 20
    assert {b.page.name for b in BLOCKS} >= {"README.md", "getting-started.md", "data.md"}
    for b in BLOCKS:
        assert b.marks.get("skip", "x").strip(), f"{b.id}: a skip without a reason"


def test_the_readme_commands_parse() -> None:
    """The README's table gives one command per job inline: each parses with today's flags."""
    from aekit.cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"`(aekit [^`]+)`", text)
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as e:
            pytest.fail(f"README's `{command}` does not parse (exit {e.code})")


def test_the_api_reference_names_every_public_name() -> None:
    import aekit

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r'heading: "aekit\.(\w+)"', text))
    assert documented == set(aekit.__all__) - {"__version__"}


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """mkdocs build --strict: no broken link, no docstring mkdocstrings rejects, offline."""
    if shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs") is None:
        pytest.skip('mkdocs is not installed (pip install -e ".[docs]")')
    for module in ("material", "mkdocstrings", "mkdocstrings_handlers.python", "latex2mathml"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{module} is not installed (pip install -e ".[docs]")')
    if not (ROOT / "mkdocs.yml").is_file() or not (ROOT / "benchmarks").is_dir():
        pytest.skip("not run from a checkout (mkdocs.yml or benchmarks/ absent)")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**_env(), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="aekit.apps.train.train"' in api  # the reference rendered, not left as text
    assert "<table" in (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert (site / "benchmarks" / "results" / "probe" / "templates.png").is_file()
    derivation = (site / "matrix-autoencoder" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' not in derivation and "\\frac" not in derivation  # no raw TeX
    assert "<math" in derivation and 'display="block"' in derivation  # MathML, inline and block
