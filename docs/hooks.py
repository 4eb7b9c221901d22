"""mkdocs hooks: benchmark figures join the site, and the pages' maths becomes MathML.

Figures: the pages link them as ``../benchmarks/results/...`` so that the links work on
GitHub; the site serves the same files under ``benchmarks/results/...`` and the links are
rewritten to that path. Nothing is copied into docs/, so the benchmarks stay the one source.

Maths: ``pymdownx.arithmatex`` (generic) leaves ``$...$`` and ``$$...$$`` as TeX in
``<span class="arithmatex">`` / ``<div class="arithmatex">``; each is converted here, at build
time, to MathML (``latex2mathml``, the docs extra), which browsers draw without a script or a
network, so the site reads the same offline. Without latex2mathml the build warns (and
``--strict`` fails) instead of shipping raw TeX.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.maths")

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


_MATH = re.compile(
    r'<(span|div) class="arithmatex">\\(?:\((?P<inline>.*?)\\\)|\[(?P<block>.*?)\\\])</\1>', re.S
)


def _mathml(match: re.Match) -> str:
    from latex2mathml.converter import convert

    tex = match["inline"] if match["inline"] is not None else match["block"]
    display = "inline" if match["inline"] is not None else "block"
    return convert(html.unescape(tex).strip(), display=display)


def on_page_content(content, page, config, files):
    if 'class="arithmatex"' not in content:
        return content
    try:
        import latex2mathml.converter  # noqa: F401
    except ImportError:
        log.warning(
            "%s: its maths stays TeX: pip install -e '.[docs]' (latex2mathml)", page.file.src_uri
        )
        return content
    return _MATH.sub(_mathml, content)
