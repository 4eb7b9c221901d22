"""Hostile and broken files (issue 26 point 3): refused in one line with exit 2, before any
large allocation, with nothing written at ``--out``; and fuzzed images, .aek files, weights and
configs that either work or are refused that way, never a traceback.

Everything goes through the command (``main(argv)``) on tiny runs trained here on 8x8 PNGs.
Marked ``faults`` with the rest of the fault-injection suite (``tests/test_faults.py``).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from aekit.cli import main
from aekit.errors import DataError
from aekit.io import bitstream
from aekit.io.images import output_names
from aekit.nn.registry import MODELS

pytestmark = pytest.mark.faults
SIDE = 8  # the runs' images are SIDE x SIDE grey
SOAK = os.environ.get("AEKIT_FUZZ_EXAMPLES")  # e.g. 1000: a longer soak, with fresh examples
FUZZ = settings(
    max_examples=int(SOAK or 30),
    deadline=None,
    derandomize=not SOAK,  # CI sees the same examples every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _grey(seed: int = 0, side: int = SIDE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR (and its CRC) is patched to announce width x height."""
    data = bytearray(_encoded(Image.fromarray(_grey()), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _tiff_with_width(width: int) -> bytes:
    """A tiny valid TIFF whose ImageWidth tag is patched to ``width``."""
    data = bytearray(_encoded(Image.fromarray(_grey()), "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (n,) = struct.unpack("<H", data[ifd : ifd + 2])
    for e in range(ifd + 2, ifd + 2 + 12 * n, 12):
        tag, kind = struct.unpack("<HH", data[e : e + 4])
        if tag == 256:  # ImageWidth, SHORT (3) or LONG (4)
            value = struct.pack("<I", width) if kind == 4 else struct.pack("<HH", width, 0)
            data[e + 8 : e + 12] = value
    return bytes(data)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def images(base) -> Path:
    folder = base / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(24):
        Image.fromarray(_grey(i)).save(folder / ("sub" if i % 3 == 0 else "") / f"{i:02d}.png")
    return folder


QUICK = ["--epochs", "1", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(base, images) -> Path:
    out = base / "run"
    assert main(["train", "--data", str(images), "--hidden", "8", "--latent-dim", "2", *QUICK,
                 "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def codec(base, images) -> Path:
    out = base / "codec"
    assert main(["train", "--data", str(images), "--model", "compress", "--latent-dim", "4",
                 *QUICK, "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def aek(base, codec, images) -> Path:
    f = base / "x.aek"
    assert main(["compress", str(codec), "--data", str(images), "--out", str(f)]) == 0
    assert bitstream.unpack(f.read_bytes())[0].names is not None  # version 3, with names
    return f


@pytest.fixture(scope="module")
def aek_step(base, codec, images) -> Path:
    """A .aek with a residual layer (format version 3, flag bit 0): lossless, --step 1."""
    f = base / "step.aek"
    argv = ["compress", str(codec), "--data", str(images), "--out", str(f), "--step", "1"]
    assert main(argv) == 0
    assert bitstream.unpack(f.read_bytes())[0].residual
    return f


@pytest.fixture
def outs(tmp_path) -> Path:
    """An empty folder for outputs: it must still be empty after a refusal (no temp files)."""
    folder = tmp_path / "outs"
    folder.mkdir()
    return folder


def _refused(capsys, argv: list[str], outs: Path | None = None) -> str:
    """main(argv) exits 2 with one 'aekit: error:' line; nothing is left under ``outs``."""
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("aekit: error:"), err
    if outs is not None:
        assert list(outs.iterdir()) == []
    return err


def _encode(run_dir: Path, data: Path, outs: Path, *extra: str) -> list[str]:
    return ["encode", str(run_dir), "--data", str(data), "--out", str(outs / "z.npy"), *extra]


def _train(data: Path, outs: Path) -> list[str]:
    return ["train", "--data", str(data), "--hidden", "8", "--latent-dim", "2", *QUICK,
            "--out", str(outs / "run")]  # fmt: skip


# ------------------------------------------------------------------- broken image files


def _broken(name: str) -> tuple[str, bytes, str]:
    png = _encoded(Image.fromarray(_grey()), "PNG")
    jpeg = _encoded(Image.fromarray(_grey(side=64)), "JPEG", quality=90)
    return {
        "truncated-png": ("x.png", png[: len(png) // 2], "truncated"),
        "truncated-jpeg": ("x.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        "random-bytes": ("x.png", random.Random(0).randbytes(500), "not an image"),
        "empty-file": ("x.jpg", b"", "not an image"),
        # Pillow opens no 0-pixel image (and saves none): the header itself is refused
        "zero-width": ("x.png", _png_with_size(0, SIDE), "not an image"),
        "zero-width-tiff": ("x.tif", _tiff_with_width(0), "not an image"),
        "bomb": ("x.png", _png_with_size(100_000, 100_000), "AEKIT_MAX_PIXELS"),
    }[name]


@pytest.mark.parametrize(
    "name",
    [
        "truncated-png",
        "truncated-jpeg",
        "random-bytes",
        "empty-file",
        "zero-width",
        "zero-width-tiff",
        "bomb",
    ],
)
@pytest.mark.parametrize("command", ["encode", "train"])
def test_a_broken_image_is_one_line_exit_2_nothing_written(
    name, command, run_dir, tmp_path, outs, capsys
):
    file, content, fragment = _broken(name)
    path = tmp_path / file
    path.write_bytes(content)
    argv = _encode(run_dir, path, outs) if command == "encode" else _train(path, outs)
    if name == "truncated-jpeg" and command == "encode":
        argv += ["--resize", f"{SIDE}x{SIDE}"]
    t0 = time.perf_counter()
    line = _refused(capsys, argv, outs)
    assert fragment in line
    if name == "bomb":  # from the header: nothing of 10**10 pixels was decoded
        assert "100000x100000" in line and time.perf_counter() - t0 < 5


def test_a_broken_image_inside_a_folder_is_refused_by_name(images, tmp_path, outs, capsys):
    folder = tmp_path / "imgs"
    shutil.copytree(images, folder)
    png = (folder / "01.png").read_bytes()
    (folder / "sub" / "zz.png").write_bytes(png[: len(png) // 2])
    line = _refused(capsys, _train(folder, outs), outs)
    assert "zz.png" in line


def test_a_large_compressed_image_is_refused_from_its_header_until_the_limit_is_raised(
    run_dir, tmp_path, outs, capsys, monkeypatch
):
    path = tmp_path / "black.png"
    Image.new("L", (2048, 2048)).save(path, optimize=True)  # 4 Mpixels in a few kB
    assert path.stat().st_size < 50_000
    monkeypatch.setenv("AEKIT_MAX_PIXELS", str(2**20))
    argv = _encode(run_dir, path, outs, "--resize", f"{SIDE}x{SIDE}")
    line = _refused(capsys, argv, outs)
    assert "2048x2048" in line and "AEKIT_MAX_PIXELS" in line
    monkeypatch.setenv("AEKIT_MAX_PIXELS", str(2**22))
    assert main(argv) == 0, capsys.readouterr().err
    assert np.load(outs / "z.npy").shape == (1, 2)
    monkeypatch.setenv("AEKIT_MAX_PIXELS", "lots")
    (outs / "z.npy").unlink()
    assert "AEKIT_MAX_PIXELS" in _refused(capsys, argv, outs)


# ------------------------------------------------------------- modes, depths, animations


def _odd_images(folder: Path) -> dict[str, Path]:
    a = _grey(5)
    rgb = Image.fromarray(np.stack([a, 255 - a, a // 2], axis=-1))
    files = {
        "palette": ("p.png", rgb.quantize(16)),
        "cmyk": ("cmyk.jpg", rgb.convert("CMYK")),
        "grey16": ("g16.png", Image.fromarray(a.astype(np.uint16) * 257)),
    }
    out = {}
    for key, (name, img) in files.items():
        img.save(folder / name)
        out[key] = folder / name
    frames = [Image.fromarray(a), Image.fromarray(255 - a)]
    for name in ("anim.png", "anim.gif", "anim.webp"):
        frames[0].save(folder / name, save_all=True, append_images=frames[1:], duration=100)
        out[name] = folder / name
    return out


def test_palette_cmyk_and_16_bit_images_are_converted_as_documented(
    run_dir, tmp_path, outs, capsys
):
    from aekit.data.images import read_images

    odd = _odd_images(tmp_path)
    assert Image.open(odd["palette"]).mode == "P" and Image.open(odd["cmyk"]).mode == "CMYK"
    assert Image.open(odd["grey16"]).mode.startswith("I;16")
    for key in ("palette", "cmyk"):  # colour: read as RGB, channels first
        s = read_images(odd[key])
        assert s.shape == (3, SIDE, SIDE) and s.dtype == "uint8" and s.max_value == 255
        # the grey run takes them only converted, and says how
        assert "--color gray" in _refused(capsys, _encode(run_dir, odd[key], outs), outs)
        assert main(_encode(run_dir, odd[key], outs, "--color", "gray")) == 0
        (outs / "z.npy").unlink()
    s = read_images(odd["grey16"])  # 16-bit grey: kept 16-bit, in its own units
    assert s.shape == (1, SIDE, SIDE) and s.dtype == "uint16" and s.max_value == 65535
    np.testing.assert_array_equal(s.X.reshape(SIDE, SIDE), _grey(5).astype(np.float32) * 257)
    # the run was trained on 0-255: 16-bit values are refused unless converted
    assert "--units convert" in _refused(capsys, _encode(run_dir, odd["grey16"], outs), outs)
    assert main(_encode(run_dir, odd["grey16"], outs, "--units", "convert")) == 0
    capsys.readouterr()


@pytest.mark.parametrize("name", ["anim.png", "anim.webp", "anim.gif"])
def test_animated_images_are_refused(name, run_dir, tmp_path, outs, capsys):
    path = _odd_images(tmp_path)[name]
    line = _refused(capsys, _encode(run_dir, path, outs), outs)
    if name == "anim.gif":  # not an image suffix aekit reads at all
        assert "unknown data source" in line
    else:
        assert "2 frames" in line
    listed = tmp_path / "list.txt"  # nor through a path list
    listed.write_text(f"{name}\n")
    _refused(capsys, _encode(run_dir, listed, outs), outs)


# --------------------------------------------------------------- folders and path lists


@pytest.mark.parametrize("link", ["to-root", "to-parent"])
def test_a_symlink_loop_in_a_folder_is_refused(link, images, tmp_path, outs, capsys):
    folder = tmp_path / "imgs"
    shutil.copytree(images, folder)
    (folder / "sub" / "loop").symlink_to(folder if link == "to-root" else folder / "sub")
    assert "symbolic link loop" in _refused(capsys, _train(folder, outs), outs)


def test_a_self_referencing_link_named_like_an_image_is_not_read(
    images, run_dir, tmp_path, outs, capsys
):
    folder = tmp_path / "imgs"
    shutil.copytree(images, folder)
    (folder / "self.png").symlink_to(folder / "self.png")  # stat() fails with ELOOP
    assert main(_encode(run_dir, folder, outs)) == 0
    assert np.load(outs / "z.npy").shape == (24, 2)
    (outs / "z.npy").unlink()
    assert "no such data file" in _refused(capsys, _encode(run_dir, folder / "self.png", outs))


def test_a_path_list_naming_a_missing_file_is_refused(images, run_dir, tmp_path, outs, capsys):
    listed = tmp_path / "list.txt"
    listed.write_text(f"{images / '01.png'}\n# a comment\n\nnope.png\n")
    line = _refused(capsys, _encode(run_dir, listed, outs), outs)
    assert "line 4" in line and "nope.png" in line


def test_a_path_list_climbing_out_of_its_folder_writes_inside_out(
    images, run_dir, tmp_path, outs, capsys
):
    (tmp_path / "lists").mkdir()
    listed = tmp_path / "lists" / "list.txt"
    listed.write_text(f"../imgs/01.png\n{images / 'sub' / '00.png'}\n../imgs/02.png\n")
    shutil.copytree(images, tmp_path / "imgs")
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    folder = outs / "pngs"
    assert main(["reconstruct", str(run_dir), "--data", str(listed), "--out", str(folder)]) == 0
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert len(written) == 3 and all(folder in p.parents for p in written)
    capsys.readouterr()


# ------------------------------------------------------------------- names written out


@pytest.mark.parametrize(
    "name", ["../x.png", "a/../../x.png", "/tmp/x.png", "..", "", ".", "a\\..\\..\\x.png"]
)
def test_output_names_refuse_names_outside_the_folder(name):
    with pytest.raises(DataError, match="outside the output folder"):
        output_names(["ok.png", name], 2)


def test_output_names_refuse_two_inputs_writing_one_file():
    with pytest.raises(DataError, match="both be written"):
        output_names(["a.png", "a.jpg"], 2)
    assert output_names(["a/b.jpg", "c.tif"], 2) == ["a/b.png", "c.png"]


def _repacked(aek: Path, **changes) -> bytes:
    header, payload = bitstream.unpack(aek.read_bytes())
    fields = dict(header.__dict__, **changes)  # unpack gave the payload after the names
    return bitstream.pack(bitstream.Header(**fields), payload)


@pytest.mark.parametrize(
    "evil", ["../evil.png", "/tmp/aekit-evil.png", "a/../../evil.png", "nul\x00.png", "x" * 300]
)
def test_an_aek_naming_a_file_outside_the_folder_writes_nothing(
    evil, codec, aek, tmp_path, outs, capsys
):
    names = list(bitstream.unpack(aek.read_bytes())[0].names)
    names[3] = evil
    f = tmp_path / "evil.aek"
    f.write_bytes(_repacked(aek, names=tuple(names)))
    folder = outs / "pngs"
    line = _refused(capsys, ["decompress", str(codec), str(f), "--out", str(folder)], outs)
    if "evil" in evil:
        assert "outside the output folder" in line
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/aekit-evil.png").exists()
    # the same file into a .npy (names unused) decodes
    assert main(["decompress", str(codec), str(f), "--out", str(outs / "x.npy")]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------- .aek headers that lie


def _header_patched(data: bytes, **fields) -> bytes:
    """``data`` with header fields replaced and the CRC recomputed (a lie that checks out)."""
    names = ["magic", "version", "flags", "c", "h", "w", "count", "width", "digest", "length"]
    fields_now = bitstream._HEADER.unpack(data[: bitstream.HEADER_SIZE])[:-1]
    values = dict(zip(names, fields_now, strict=True))
    values.update(fields)
    head = bitstream._HEADER.pack(*values.values(), 0)[:-4]
    payload = data[bitstream.HEADER_SIZE :]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def _names_block(data: bytes, block: bytes) -> bytes:
    """``data`` (version 3) with its names block replaced by ``block`` (length and CRC fixed)."""
    payload = data[bitstream.HEADER_SIZE :]
    (size,) = struct.unpack("<I", payload[:4])
    new = block + payload[4 + size :]
    head = data[: bitstream.HEADER_SIZE - 8] + struct.pack("<I", len(new))
    return head + struct.pack("<I", zlib.crc32(new, zlib.crc32(head))) + new


def _lies(data: bytes) -> dict[str, tuple[bytes, str]]:
    n = struct.unpack("<I", data[20:24])[0]
    header, payload = bitstream.unpack(data)
    bare = bitstream.pack(bitstream.Header(**dict(header.__dict__, names=None)), payload)
    names = "\n".join(f"{i}.png" for i in range(n)).encode()
    return {
        "truncated": (data[:-7], "truncated"),
        "header-only": (data[: bitstream.HEADER_SIZE], "truncated"),
        "length-beyond-payload": (_header_patched(data, length=2**32 - 1), "truncated"),
        "names-beyond-payload": (
            _names_block(data, struct.pack("<I", 2**31) + zlib.compress(names)),
            "more than follow",
        ),
        "names-huge-decompressed": (
            _names_block(data, _sized(zlib.compress(b"a" * (64 * 1024 * n + 4096), 9))),
            "names section is corrupt",
        ),
        "names-not-zlib": (_names_block(data, _sized(b"\x00" * 40)), "names section is corrupt"),
        "names-too-few": (_names_block(data, _sized(zlib.compress(b"a\nb"))), "names 2 files"),
        "count-beyond-names": (_header_patched(data, count=n + 6), f"names {n} files"),
        "count-beyond-memory": (_header_patched(bare, count=2**32 - 1), "memory"),
        "count-beyond-payload": (_header_patched(bare, count=2**24), "can hold"),
        "shape-beyond-memory": (_header_patched(data, c=2**16, h=2**16, w=2**16), ""),
    }


def _sized(block: bytes) -> bytes:
    return struct.pack("<I", len(block)) + block


@pytest.mark.parametrize(
    "lie",
    [
        "truncated",
        "header-only",
        "length-beyond-payload",
        "names-beyond-payload",
        "names-huge-decompressed",
        "names-not-zlib",
        "names-too-few",
        "count-beyond-names",
        "count-beyond-memory",
        "count-beyond-payload",
        "shape-beyond-memory",
    ],
)
@pytest.mark.parametrize("into", ["x.npy", "pngs"])
def test_an_aek_whose_header_lies_is_refused(lie, into, codec, aek, tmp_path, outs, capsys):
    data, fragment = _lies(aek.read_bytes())[lie]
    f = tmp_path / "lie.aek"
    f.write_bytes(data)
    t0 = time.perf_counter()
    line = _refused(capsys, ["decompress", str(codec), str(f), "--out", str(outs / into)], outs)
    assert fragment in line and time.perf_counter() - t0 < 10


# --------------------------------------------------------------- damaged run folders


def _set(path: list, value):
    def patch(cfg):
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return cfg

    return patch


@pytest.mark.parametrize(
    "patch, fragment",
    [
        (lambda cfg: None, "no JSON object"),
        (lambda cfg: [cfg], "no JSON object"),
        (_set(["model"], "dense"), "'model' record"),
        (_set(["data"], None), "'data' record"),
        (_set(["data", "resize"], "8x8"), "'resize'"),
        (_set(["data", "image_shape"], [1, -8, 8]), "'image_shape'"),
        (_set(["model", "config", "hidden"], [2**64]), "model config is invalid"),
        (_set(["model", "config", "hidden"], [10**11]), "model config is invalid"),
        (_set(["model", "config", "latent_dim"], "two"), "model config is invalid"),
        (_set(["units", "max_value"], ""), "'units' record"),
        (_set(["units", "hi"], [float("inf")]), "'units' record"),
        (_set(["scaler", "scale"], [0.0]), "scaler"),
    ],
)
def test_a_damaged_config_is_one_line_exit_2(patch, fragment, run_dir, images, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cfg = patch(json.loads((run / "config.json").read_text()))
    (run / "config.json").write_text(json.dumps(cfg))
    outs = tmp_path / "outs"
    outs.mkdir()
    argv = ["encode", str(run), "--data", str(images), "--out", str(outs / "z.npy")]
    assert fragment in _refused(capsys, argv, outs)


# ---------------------------------------------------------- sizes beyond memory


# the command in a process of its own that writes its peak resident set (VmHWM, of its own
# address space: a child's ru_maxrss would count the parent's pages at the fork) as it exits
_PEAK = """import atexit, sys
def peak():
    with open('/proc/self/status') as f:
        hwm = next(line for line in f if line.startswith('VmHWM:'))
    with open(out, 'w') as f:
        f.write(hwm.split()[1])
atexit.register(peak)
out, sys.argv = sys.argv[1], ['aekit', *sys.argv[2:]]
from aekit.cli import main
sys.exit(main())
"""


def _peak_rss_kb(argv: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """(exit code, the command's peak resident set in KiB, its stderr)."""
    import subprocess
    import sys

    from conftest import SRC

    if not Path("/proc/self/status").is_file():
        pytest.skip("the peak resident set is read from /proc (Linux)")
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **env}
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak"
        done = subprocess.run([sys.executable, "-c", _PEAK, str(peak), *argv], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        return done.returncode, int(peak.read_text()), done.stderr


def test_a_config_announcing_weights_beyond_the_limit_is_refused_before_allocating(
    run_dir, images, tmp_path
):
    """A config.json whose hidden layer would take more than AEKIT_MAX_MEMORY (here set below
    it; by default half the machine's memory) is refused in one line, exit 2, nothing
    written. Raised above the weights' size, the same file is built (and then refused for
    weights that do not fit it, as any damaged file): that command's peak memory exceeds
    the refused one's by the weights' size, so the refusal came before they were made."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cfg = json.loads((run / "config.json").read_text())
    width = 2**21  # one hidden layer: 64 -> 2**21 -> code, and back: 0.5 GiB each way
    cfg["model"]["config"]["hidden"] = [width]
    (run / "config.json").write_text(json.dumps(cfg))
    weights = 4 * 2 * width * (SIDE * SIDE + cfg["model"]["config"]["latent_dim"])  # bytes
    outs = tmp_path / "outs"
    outs.mkdir()
    argv = ["encode", str(run), "--data", str(images), "--out", str(outs / "z.npy")]
    code, refused, err = _peak_rss_kb(argv, {"AEKIT_MAX_MEMORY": str(weights // 4)})
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "AEKIT_MAX_MEMORY" in lines[0] and "needs" in lines[0], lines
    assert list(outs.iterdir()) == []
    code, built, err = _peak_rss_kb(argv, {"AEKIT_MAX_MEMORY": str(weights * 4)})
    assert code == 2 and "AEKIT_MAX_MEMORY" not in err and "Traceback" not in err, err
    assert (built - refused) * 1024 > weights // 2, (built, refused, weights)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_preset_is_sized_before_it_is_built(name, monkeypatch):
    """The size check builds each preset on the meta device (a preset it could not build
    there would go unchecked): under a 1-byte limit every one is refused, naming its size,
    and the process's random numbers are untouched (a seeded run's weights stay the same)."""
    from dataclasses import fields

    import torch

    from aekit.errors import MemoryLimitError
    from aekit.nn.registry import build_model

    known = {f.name for f in fields(MODELS[name].cls.config_class)}
    shape = {"image_shape": (1, 16, 16)} if "image_shape" in known else {}
    monkeypatch.setenv("AEKIT_MAX_MEMORY", "1")
    before = torch.get_rng_state()
    with pytest.raises(MemoryLimitError, match=f"model '{name}' with these sizes needs"):
        build_model(name, 256, **shape)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("value", ["lots", "0", "-5G", "1.5G"])
def test_a_malformed_memory_limit_is_one_line(value, run_dir, images, outs, capsys, monkeypatch):
    monkeypatch.setenv("AEKIT_MAX_MEMORY", value)
    assert "AEKIT_MAX_MEMORY must be" in _refused(capsys, _encode(run_dir, images, outs), outs)


def test_training_a_model_beyond_memory_is_refused_before_anything_is_written(
    images, tmp_path, capsys
):
    """--latent-dim 10**9 on 64 pixels: 0.5 TB of weights (4 copies to train) on any machine,
    refused as MemoryLimitError in one line, with no run folder made; the Python API raises
    the same type (catchable, a MemoryError too)."""
    import aekit
    from aekit.errors import MemoryLimitError

    out = tmp_path / "run"
    argv = ["train", "--data", str(images), "--latent-dim", str(10**9), "--hidden", "8", *QUICK]
    t0 = time.perf_counter()
    line = _refused(capsys, [*argv, "--out", str(out)])
    assert "needs" in line and "to train" in line and time.perf_counter() - t0 < 30
    assert not out.exists()
    with pytest.raises(MemoryLimitError, match="AEKIT_MAX_MEMORY") as e:
        aekit.train(images, out=out, model_options={"latent_dim": 10**9}, epochs=1)
    assert isinstance(e.value, MemoryError) and not out.exists()


def test_images_decoding_beyond_the_limit_are_refused_from_their_headers(
    run_dir, images, outs, capsys, monkeypatch
):
    """Images whose decoded float32 total exceeds AEKIT_MAX_MEMORY (set between the run's
    weights and the images' total) are refused from their headers, before the array is
    made, with a way out named; a limit above both encodes them."""
    from safetensors.numpy import load_file

    weights = sum(t.nbytes for t in load_file(run_dir / "model.safetensors").values())
    decoded = 4 * SIDE * SIDE * len([p for p in images.rglob("*.png")])
    assert weights < decoded
    monkeypatch.setenv("AEKIT_MAX_MEMORY", str((weights + decoded) // 2))
    line = _refused(capsys, _encode(run_dir, images, outs), outs)
    assert "decodes to" in line and "AEKIT_MAX_MEMORY" in line and "--stream" in line
    monkeypatch.setenv("AEKIT_MAX_MEMORY", str(decoded))
    assert main(_encode(run_dir, images, outs)) == 0


# ------------------------------------------------------------------------------- fuzzing


@st.composite
def _mutated(draw, data: bytes, head: int = 64) -> bytes:
    """``data`` with 1-4 byte flips, insertions, deletions, overwrites or a truncation, half of
    them in the first ``head`` bytes (where the headers are)."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "set", "truncate"]))
        top = min(head, len(b)) if draw(st.booleans()) else len(b)
        at = draw(st.integers(0, max(top - 1, 0)))
        if op == "flip" and b:
            b[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            b[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and b:
            del b[at : at + draw(st.integers(1, 8))]
        elif op == "set" and b:
            b[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del b[at:]
    return bytes(b)


def _ok_or_refused(capsys, argv: list[str], out: Path) -> int:
    """0, or 2 with one 'aekit: error:' line and nothing at ``out`` (beside it, no temp)."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own usage errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    event(f"exit {rc}")  # pytest --hypothesis-show-statistics: how many worked, how many refused
    assert "Traceback" not in err
    if rc == 0:
        return 0
    assert rc == 2, err
    lines = [x for x in err.splitlines() if not x.startswith("aekit: warning:")]
    assert len(lines) == 1 and lines[0].startswith("aekit: error:"), err
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []
    return 2


_PNG = _encoded(Image.fromarray(_grey(7)), "PNG")


@FUZZ
@given(data=_mutated(_PNG))
def test_fuzzed_png_encodes_or_is_refused(data, run_dir, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        path.write_bytes(data)
        out = Path(tmp) / "outs" / "z.npy"
        out.parent.mkdir()
        argv = _encode(run_dir, path, out.parent, "--resize", f"{SIDE}x{SIDE}")
        _ok_or_refused(capsys, [*argv, "--units", "as-is", "--color", "gray"], out)


def _png_header(width: int, height: int, depth: int, colour: int, interlace: int) -> bytes:
    """The tiny PNG with its IHDR fields replaced (CRC recomputed, so Pillow reads them)."""
    data = bytearray(_PNG)
    data[16:29] = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@FUZZ
@given(
    size=st.one_of(
        st.tuples(st.integers(0, 300), st.integers(0, 300)),
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    ),
    depth=st.one_of(st.sampled_from([1, 2, 4, 8, 16]), st.integers(0, 255)),
    colour=st.one_of(st.sampled_from([0, 2, 3, 4, 6]), st.integers(0, 255)),
    interlace=st.integers(0, 2),
)
def test_fuzzed_png_header_fields_encode_or_are_refused(
    size, depth, colour, interlace, run_dir, capsys
):
    if 2**26 >= size[0] * size[1] > 2**16:  # decodable sizes over 64k pixels: memory, not bugs
        size = (size[0] % 257, size[1] % 257)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.png"
        path.write_bytes(_png_header(*size, depth, colour, interlace))
        out = Path(tmp) / "outs" / "z.npy"
        out.parent.mkdir()
        argv = _encode(run_dir, path, out.parent, "--resize", f"{SIDE}x{SIDE}")
        _ok_or_refused(capsys, [*argv, "--units", "as-is", "--color", "gray"], out)


@pytest.mark.parametrize("layer", ["code", "residual"])
@FUZZ
@given(mutation=st.data())
def test_fuzzed_aek_decompresses_or_is_refused(mutation, layer, codec, aek, aek_step, capsys):
    f = aek if layer == "code" else aek_step
    data = mutation.draw(_mutated(f.read_bytes(), head=bitstream.HEADER_SIZE + 64))
    into = mutation.draw(st.sampled_from(["x.npy", "pngs"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.aek"
        path.write_bytes(data)
        out = Path(tmp) / "outs" / into
        out.parent.mkdir()
        _ok_or_refused(capsys, ["decompress", str(codec), str(path), "--out", str(out)], out)


@pytest.mark.parametrize("layer", ["code", "residual"])
@FUZZ
@given(mutation=st.data())
def test_fuzzed_aek_with_a_valid_checksum_decompresses_or_is_refused(
    mutation, layer, codec, aek, aek_step, capsys
):
    """Mutations behind a recomputed CRC reach the parsers after the checksum."""
    f = aek if layer == "code" else aek_step
    data = mutation.draw(_mutated(f.read_bytes(), head=bitstream.HEADER_SIZE + 128))
    if len(data) >= bitstream.HEADER_SIZE:
        head = data[: bitstream.HEADER_SIZE - 8] + struct.pack(
            "<I", len(data) - bitstream.HEADER_SIZE
        )
        payload = data[bitstream.HEADER_SIZE :]
        data = head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.aek"
        path.write_bytes(data)
        out = Path(tmp) / "outs" / "pngs"
        out.parent.mkdir()
        _ok_or_refused(capsys, ["decompress", str(codec), str(path), "--out", str(out)], out)


_NAME = st.one_of(
    st.sampled_from(["a.png", "sub/b.png", "../up.png", "/abs.png", ".", "..", "", "a/../b.png",
                     "a\\..\\..\\c.png", "x" * 300, "nul\x00.png", "line\nbreak.png", "a.png"]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)  # fmt: skip


_LISTED = st.sampled_from(
    ["sub/01.png", "sub/sub/00.png", "../lists/sub/02.png", "sub/./04.png", "# c", " sub/05.png "]
)


@FUZZ
@given(mutation=st.data())
def test_fuzzed_stored_names_write_inside_the_folder_or_are_refused(mutation, codec, aek, capsys):
    """Any names an .aek carries: the PNGs land under --out, or nothing is written."""
    names = list(bitstream.unpack(aek.read_bytes())[0].names)
    for _ in range(mutation.draw(st.integers(1, 3))):
        names[mutation.draw(st.integers(0, len(names) - 1))] = mutation.draw(_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "x.aek"
        path.write_bytes(_repacked(aek, names=tuple(names)))
        out = root / "outs" / "pngs"
        out.parent.mkdir()
        argv = ["decompress", str(codec), str(path), "--out", str(out)]
        if _ok_or_refused(capsys, argv, out) == 0:
            written = [p for p in root.rglob("*") if p.is_file() and p != path]
            assert written and all(out in p.parents for p in written)
            assert len(written) == 24


@FUZZ
@given(lines=st.lists(st.one_of(_NAME, _LISTED), min_size=1, max_size=4))
def test_fuzzed_path_lists_encode_or_are_refused(lines, run_dir, images, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "lists").mkdir()
        shutil.copytree(images, root / "lists" / "sub")
        listed = root / "lists" / "list.txt"
        listed.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
        out = root / "outs" / "pngs"
        out.parent.mkdir()
        argv = ["reconstruct", str(run_dir), "--data", str(listed), "--out", str(out)]
        if _ok_or_refused(capsys, argv, out) == 0:
            written = {p for p in root.rglob("*") if p.is_file()} - set(root.glob("lists/**/*"))
            assert written and all(out in p.parents for p in written)


def _encode_with_run(run: Path, images: Path, capsys, tmp: str) -> None:
    out = Path(tmp) / "outs" / "z.npy"
    out.parent.mkdir()
    _ok_or_refused(capsys, ["encode", str(run), "--data", str(images), "--out", str(out)], out)


@FUZZ
@given(mutation=st.data())
def test_fuzzed_weights_encode_or_are_refused(mutation, run_dir, images, capsys):
    raw = (run_dir / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    data = mutation.draw(_mutated(raw, head=8 + size))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(run_dir, run)
        (run / "model.safetensors").write_bytes(data)
        _encode_with_run(run, images, capsys, tmp)


_JSON_VALUES = st.sampled_from(
    [None, True, 0, -1, 1.5, 1e308, 2**64, "", "x", "nan", [], [1, -1], {}, {"a": 1}]
)


def _replace_somewhere(draw, node):
    """``node`` (parsed JSON) with one value somewhere in it replaced or removed."""
    if isinstance(node, dict) and node and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.integers(0, 5)) == 0:
            return {k: v for k, v in node.items() if k != key}
        return {**node, key: _replace_somewhere(draw, node[key])}
    if isinstance(node, list) and node and draw(st.integers(0, 3)):
        i = draw(st.integers(0, len(node) - 1))
        return [*node[:i], _replace_somewhere(draw, node[i]), *node[i + 1 :]]
    return draw(_JSON_VALUES)


@FUZZ
@given(mutation=st.data())
def test_fuzzed_config_json_encodes_or_is_refused(mutation, run_dir, images, capsys):
    text = (run_dir / "config.json").read_text()
    if mutation.draw(st.booleans()):
        new = mutation.draw(_mutated(text.encode(), head=len(text)))
    else:
        new = json.dumps(_replace_somewhere(mutation.draw, json.loads(text))).encode()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(run_dir, run)
        (run / "config.json").write_bytes(new)
        _encode_with_run(run, images, capsys, tmp)


def test_the_fuzz_seeds_are_valid(run_dir, codec, aek, aek_step, images, tmp_path, capsys):
    """The unmutated inputs succeed, so the fuzz tests start from files that work."""
    png = tmp_path / "x.png"
    png.write_bytes(_PNG)
    assert main(_encode(run_dir, png, tmp_path)) == 0
    assert main(_encode(run_dir, images, tmp_path)) == 0  # the run's weights and config
    for f, folder in ((aek, "pngs"), (aek_step, "lossless")):
        assert main(["decompress", str(codec), str(f), "--out", str(tmp_path / folder)]) == 0
        assert len(list((tmp_path / folder).rglob("*.png"))) == 24
    for name in ("01.png", "sub/00.png"):  # --step 1 is lossless for 8-bit images
        a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in ("lossless", "pngs"))
        assert np.array_equal(a, np.asarray(Image.open(images / name))) and a.shape == b.shape
    capsys.readouterr()
