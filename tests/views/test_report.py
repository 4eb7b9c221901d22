"""The HTML run report: built for every preset, opened in headless Chromium, refused in one line.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` and Selenium (the ``test``
extra); they skip with the reason when either is absent (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit.cli import main
from aekit.nn import MODELS
from aekit.views.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False
BROWSER = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and HAVE_SELENIUM),
    reason="headless Chromium not available: apt-get install chromium chromium-driver, and "
    "pip install selenium (the test extra)",
)
SECTIONS = ("settings", "metrics", "losses", "recon", "errors", "codes", "anomaly")


def tiny_options(name: str) -> dict:
    """Small sizes for a preset: a few channels for conv, one small hidden layer for dense."""
    spec = MODELS[name]
    known = {f.name for f in fields(spec.cls.config_class)}
    options: dict = {"latent_dim": 3}
    if spec.defaults.get("latent") == "hyperprior":  # the spatial codec (dct: 16 coefficients)
        options = {"stages": 2, "hyper_channels": 4}
    elif "width" in known:  # fully convolutional (a denoiser, a context model): no code
        options = {"width": 8, "depth": 3}
    elif "channels" in known:
        options["channels"] = (4, 8)
    elif spec.defaults.get("hidden") != ():
        options["hidden"] = (16,)
    return options


def spec_has_code(name: str) -> bool:
    return MODELS[name].cls.has_code


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One epoch of every preset on 300 digits: {preset: run directory}."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name in sorted(MODELS):
        run = aekit.train(
            "digits", out=root / name, model=name, limit=300, epochs=1, batch_size=64,
            model_options=tiny_options(name),
        )  # fmt: skip
        out[name] = run.out
    return out


def page_text(path: Path) -> str:
    """The page without the inlined plotly.js bundle (the part aekit writes)."""
    return re.sub(r"<script[^>]*>.{100000,}?</script>", "", path.read_text(), count=1, flags=re.S)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_preset_builds_a_report(runs, name):
    path = build_report(runs[name])
    assert path == runs[name] / "report.html"
    text = page_text(path)
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in text, anchor
    gaussian = MODELS[name].defaults.get("latent") == "gaussian"
    assert ('id="generation"' in text) == gaussian
    assert ("noisy input" in text) == (name == "denoising")
    assert "(nats)" in text if gaussian else "per sample (" in text  # losses carry units
    assert "class 9" in text or not spec_has_code(name)  # codes coloured by the labels
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)  # all inline
    assert text.count('data-kind="png"') >= (3 if gaussian else 1)


def test_metrics_are_in_the_data_units_and_the_scaled_space_is_labelled(runs):
    import torch

    from aekit.functional.losses import reconstruction_metrics
    from aekit.views import report_sections as rs
    from aekit.views.report import load_context

    ctx = load_context(runs["dense"])
    text = rs.metrics(ctx).body
    scaler = ctx.model.scaler
    X = scaler.inverse_transform(ctx.X)  # the digits' 0..16 units, by hand
    X_hat = scaler.inverse_transform(ctx.model.reconstruct_scaled(ctx.X))
    mse = reconstruction_metrics(torch.from_numpy(X_hat), torch.from_numpy(X))["mse"]
    shown = re.search(r"MSE per element, data units</th><td>([^<]+)<", text)
    assert shown and float(shown.group(1)) == pytest.approx(mse, rel=1e-4)
    assert f"MSE per element, scaled ({scaler.kind})" in text


def test_denoising_figures_show_the_noisy_input(runs):
    """The run directory's PNGs: a titled loss curve and three rows for a denoising model."""
    from PIL import Image

    run = runs["denoising"]
    loss = np.asarray(Image.open(run / "loss.png").convert("L"), dtype=float)
    assert loss.std() > 10
    plain = Image.open(runs["dense"] / "reconstructions.png").size
    noisy = Image.open(run / "reconstructions.png").size
    assert noisy[1] > plain[1]  # one more row of images: the noisy input


def test_report_command_and_its_errors(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(runs["vae"]), "--out", str(out)]) == 0
    assert out.stat().st_size > 1_000_000  # plotly.js inlined
    cases = [
        ([str(tmp_path)], "is not an aekit run"),
        ([str(tmp_path / "nope")], "is not a run directory"),
        ([str(runs["vae"]), "--out", str(tmp_path)], "is a folder"),
        ([str(runs["vae"]), "--out", str(out / "x.html")], "cannot write"),
        ([str(runs["vae"]), "--anomaly-labels", "y.csv"], "--anomaly-labels needs --data"),
    ]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(runs["vae"] / "config.json", unfinished)
    cases.append(([str(unfinished)], "has not finished an epoch"))
    capsys.readouterr()
    for argv, message in cases:
        assert main(["report", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_anomaly_labels_add_the_roc(runs, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.save(tmp_path / "x.npy", d.data[:200])
    np.savetxt(tmp_path / "y.csv", (d.target[:200] == 7).astype(int), fmt="%d")
    out = tmp_path / "a.html"
    argv = [str(runs["dense"]), "--out", str(out), "--data", str(tmp_path / "x.npy")]
    assert main(["report", *argv, "--anomaly-labels", str(tmp_path / "y.csv")]) == 0
    assert "ROC-AUC" in page_text(out)


def test_train_report_flag(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--limit", "200", "--epochs", "1", "--hidden", "8", "--latent-dim", "2"]
    assert main([*argv, "--quiet", "--out", str(out), "--report"]) == 0
    assert (out / "report.html").is_file()
    assert f"report written to {out / 'report.html'}" in capsys.readouterr().out


# ---- in the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="aekit-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 '--host-resolver-rules=MAP * ~NOTFOUND', "--window-size=1300,1000"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path) -> dict:
    """Load a page and wait for every Plotly figure; its console errors, requests, figures."""
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser"), driver.get_log("performance")  # drop earlier pages' entries
    driver.get(path.resolve().as_uri())
    n_plotly = len(driver.find_elements(By.CSS_SELECTOR, 'figure[data-kind="plotly"]'))
    WebDriverWait(driver, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= n_plotly
    )
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    figs = driver.find_elements(By.CSS_SELECTOR, "figure.fig")
    return {"errors": errors, "requests": requests, "figures": figs}


def spread(element) -> float:
    """Standard deviation of the grey levels of an element's screenshot (0: blank)."""
    from PIL import Image

    img = Image.open(io.BytesIO(element.screenshot_as_png)).convert("L")
    return float(np.asarray(img, dtype=float).std())


LOCAL = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-untrusted:", "devtools:")


def external(urls: list[str]) -> list[str]:
    """The requests that would leave the machine (the browser's own chrome:// pages stay)."""
    return [u for u in urls if not u.startswith(LOCAL)]


@BROWSER
@pytest.mark.parametrize("name", ["vae", "denoising"])
def test_report_renders_in_chromium(runs, browser, name, tmp_path_factory, capsys):
    path = runs[name] / "report.html"  # built by test_every_preset_builds_a_report
    path = path if path.is_file() else build_report(runs[name])
    page = open_page(browser, path)
    assert page["errors"] == []
    assert path.resolve().as_uri() in page["requests"]  # the log saw the page load
    assert external(page["requests"]) == []
    assert len(page["figures"]) >= 5
    for fig in page["figures"]:
        assert spread(fig) > 8, fig.get_attribute("outerHTML")[:200]
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1300, height)
    shot = tmp_path_factory.mktemp("artifacts") / f"report-{name}.png"
    browser.save_screenshot(str(shot))
    browser.set_window_size(1300, 1000)
    with capsys.disabled():
        print(f"\nscreenshot of the {name} report: {shot}")
    assert shot.stat().st_size > 50_000


@BROWSER
def test_the_browser_checks_can_fail(browser, tmp_path):
    """A blank figure, a console error and a request to the network are each caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><figure class="fig" style="width:300px;height:200px"></figure>'
        '<img src="http://example.invalid/x.png"><script>console.error("boom")</script>'
        "</body></html>"
    )
    page = open_page(browser, bad)
    assert any("boom" in e for e in page["errors"])
    assert external(page["requests"]) == ["http://example.invalid/x.png"]
    assert spread(page["figures"][0]) < 1
