"""Files of today's formats still load, resume and decode (issue 25, point 5).

``tests/fixtures/formats`` holds a run directory (with its density; and ``parts/``, a run
recording each part's settings on its own), a detector folder, a
codec run and .aek files of format versions 1 (the code), 2 (a residual layer) and 3 (file
names), written by ``tests/fixtures/formats/make.py``, with the numbers they gave then. A
change that cannot read them, or reads them differently, fails here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.apps.compression import decompress
from aekit.cli import main
from aekit.data import load_dataset
from aekit.io.bitstream import unpack
from aekit.sklearn import AutoencoderOutlierDetector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"


@pytest.fixture
def formats(tmp_path) -> Path:
    """A copy: the tests resume and write, never into the repository."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "formats"))


def test_the_fixtures_are_there_and_were_written_by_this_aekit_line():
    meta = json.loads((FIXTURES / "expected.json").read_text())
    assert meta["aek_versions"] == [1, 2, 3]
    for name in ("run/config.json", "run/density.safetensors", "detector/config.json",
                 "codec/model.safetensors", "v1.aek", "v2.aek", "v3.aek"):  # fmt: skip
        assert (FIXTURES / name).is_file(), name


def test_a_run_directory_loads_encodes_as_it_did_and_resumes(formats, capsys):
    expected = np.load(formats / "expected.npz")
    model = aekit.load(formats / "run")
    rows = load_dataset("digits", limit=5).X
    np.testing.assert_allclose(model.encode_numpy(rows), expected["codes"], rtol=1e-5, atol=1e-6)
    assert main(["eval", str(formats / "run"), "--json"]) == 0
    assert main(["sample", str(formats / "run"), "--n", "4", "--out", str(formats / "s.npy")]) == 0
    assert np.load(formats / "s.npy").shape == (4, 64)  # drawn from the stored density
    argv = ["train", "--resume", "--out", str(formats / "run"), "--epochs", "3", "--quiet"]
    assert main(argv) == 0
    assert len((formats / "run" / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_detector_folder_loads_and_scores_as_it_did(formats):
    expected = np.load(formats / "expected.npz")
    det = AutoencoderOutlierDetector.load(formats / "detector")
    images = np.load(formats / "digits8.npy")[:5].reshape(5, -1).astype(np.float32) / 255
    np.testing.assert_allclose(det.score_samples(images), expected["scores"], rtol=1e-5, atol=1e-6)


def test_aek_files_of_every_version_decode_as_they_did(formats):
    expected = np.load(formats / "expected.npz")
    codec = aekit.load(formats / "codec")
    versions = {v: int.from_bytes((formats / f"v{v}.aek").read_bytes()[4:6], "little")
                for v in (1, 2, 3)}  # fmt: skip
    assert versions == {1: 1, 2: 2, 3: 3}
    np.testing.assert_allclose(decompress(codec, (formats / "v1.aek").read_bytes()), expected["v1"],
                               rtol=1e-5, atol=1e-4)  # fmt: skip
    ten = np.load(formats / "digits8.npy")[:10].astype(np.float32)
    lossless = decompress(codec, (formats / "v2.aek").read_bytes())  # --step 1: exact
    np.testing.assert_array_equal(lossless.reshape(ten.shape), ten)
    v3 = (formats / "v3.aek").read_bytes()
    assert unpack(v3)[0].names == ("d0.png", "d2.png", "sub/d1.png", "sub/d3.png")
    np.testing.assert_allclose(decompress(codec, v3), expected["v3"], rtol=1e-5, atol=1e-4)
    out = formats / "decoded"
    assert (
        main(["decompress", str(formats / "codec"), str(formats / "v3.aek"), "--out", str(out)])
        == 0
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "d0.png", "d2.png", "sub/d1.png", "sub/d3.png"
    ]  # fmt: skip
    assert Image.open(out / "sub" / "d1.png").size == (8, 8)


def test_a_spatial_codec_file_of_version_4_decodes_as_it_did(formats):
    from aekit.apps.codec import decompress_images

    data = (formats / "v4.aek").read_bytes()
    assert int.from_bytes(data[4:6], "little") == 4
    assert unpack(data)[0].names == ("a.png", "b.png", "c.png")
    expected = np.load(formats / "expected_v4.npz")
    decoded = decompress_images(aekit.load(formats / "spatial"), data)
    assert [v.shape for v in decoded] == [(1, 9, 13), (1, 16, 16), (1, 5, 30)]
    for i, v in enumerate(decoded):
        np.testing.assert_allclose(v, expected[f"v4_{i}"], rtol=1e-5, atol=1e-3)


def test_a_run_recording_each_parts_settings_loads_encodes_as_it_did_and_resumes(formats):
    """parts/: config.json in the form since the parts own their settings (issue 25, point 3)."""
    record = json.loads((formats / "parts" / "config.json").read_text())["model"]["config"]
    assert record["latent_settings"]["kl_weight"] == 0.5 and "beta" not in record
    assert record["corruption"] == {"kind": "noise", "noise": "mask:0.2"}
    model = aekit.load(formats / "parts")
    expected = np.load(formats / "expected_parts.npz")
    rows = load_dataset("digits", limit=5).X
    np.testing.assert_allclose(model.encode_numpy(rows), expected["codes"], rtol=1e-5, atol=1e-6)
    argv = ["train", "--resume", "--out", str(formats / "parts"), "--epochs", "3", "--quiet"]
    argv += ["--noise", "mask:.2", "--kl-weight", "0.5"]  # the same settings, other spellings
    assert main(argv) == 0
    assert len((formats / "parts" / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_context_model_file_of_version_5_decodes_as_it_did(formats):
    from aekit.apps.lossless import decompress_images

    data = (formats / "v5.aek").read_bytes()
    assert int.from_bytes(data[4:6], "little") == 5
    assert unpack(data)[0].names == ("a.png", "b.png", "c.png")
    expected = np.load(formats / "expected_v5.npz")
    decoded = decompress_images(aekit.load(formats / "context"), data)
    assert [v.shape for v in decoded] == [(1, 9, 13), (1, 16, 16), (1, 5, 30)]
    for i, v in enumerate(decoded):
        np.testing.assert_array_equal(v, expected[f"v5_{i}"])
