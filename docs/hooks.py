"""mkdocs hook: the figures that benchmarks write (benchmarks/results/**/*.png) join the site.

The pages link them as ``../benchmarks/results/...`` so that the links work on GitHub; the
site serves the same files under ``benchmarks/results/...`` and the links are rewritten to
that path. Nothing is copied into docs/, so the benchmarks stay the one source.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
_LINK = re.compile(r"\]\(((?:\.\./)+)benchmarks/results/")


def on_files(files, config):
    for png in sorted((ROOT / RESULTS).rglob("*.png")):
        path = png.relative_to(ROOT).as_posix()
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")  # folders between the page and docs/
    return _LINK.sub(lambda m: "](" + "../" * depth + RESULTS + "/", markdown)
