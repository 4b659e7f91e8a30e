"""The web page in a real headless browser: Debian's chromium driven by selenium through the system
chromedriver, against a real `scalefit serve` (uvicorn on loopback, SQLite registry file).

Loads `/`, opens a stored fit from the fits list, checks its summary table and plot, submits the predict
form and reads the number back (it must be `fits.predict` at the same point), submits the recommend form
(`fits.recommend`), and sees a bad input answered with the CLI's one error line. Every resource the page
loaded came from the server itself. Skips, with the reason, when selenium, chromium or chromedriver is
missing (`.ci/run` installs Debian's `chromium` and `chromium-driver` when it can).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from test_service_api import synthetic_runs

import fits
from service.live import LiveServer

TOKEN = "browser-token-0123456789"
WAIT = 90.0
"""Seconds to wait for the page (a shared 2-core machine can be slow to start chromium)."""

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _find(names: tuple[str, ...], env: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if Path(os.environ[env]).is_file() else None
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')"
    )
    from selenium.webdriver.chrome.service import Service

    browser = _find(BROWSERS, "SCALEFIT_CHROMIUM")
    chromedriver = _find(("chromedriver",), "SCALEFIT_CHROMEDRIVER")
    if browser is None or chromedriver is None:
        missing = " and ".join(
            n for n, p in (("chromium", browser), ("chromedriver", chromedriver)) if p is None
        )
        pytest.skip(
            f"no headless browser: {missing} not found (PATH, SCALEFIT_CHROMIUM, SCALEFIT_CHROMEDRIVER); "
            "apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    # the driver is given by path, so selenium never looks one up (or downloads one) itself
    service = Service(executable_path=chromedriver, log_output=str(tmp_path_factory.mktemp("cd") / "log"))
    d = webdriver.Chrome(options=options, service=service)
    d.set_page_load_timeout(WAIT)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A server with two fits uploaded as fit.json: (server, the FitResult of the one the test opens,
    its id)."""
    df = synthetic_runs(seed=7).rename(columns={"params": "N", "tokens": "D"})
    result = fits.fit(df, "chinchilla", n_boot=30, seed=0, holdout=None)
    other = fits.fit(
        synthetic_runs(seed=8).rename(columns={"params": "N", "tokens": "D"}),
        "chinchilla",
        n_boot=0,
        holdout=None,
    )
    store = tmp_path_factory.mktemp("browser-store")
    with LiveServer(store / "store", token=TOKEN) as server, httpx.Client(base_url=server.url) as client:
        ids = {}
        for label, res in (("browser fit", result), ("other fit", other)):
            path = store / f"{label.replace(' ', '-')}.json"
            res.to_json(path)
            r = client.post(
                "/api/fits",
                files={"file": (path.name, path.read_bytes())},
                data={"name": label},
                headers=server.headers,
            )
            assert r.status_code == 201, r.text
            ids[label] = r.json()["id"]
        yield server, result, ids["browser fit"]


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(condition)
    except TimeoutException:
        logs = driver.execute_script("return document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise AssertionError(f"timed out waiting for {what}; the page shows:\n{logs}") from None


def _visible(driver, element_id: str):
    from selenium.webdriver.common.by import By

    def check(d):
        el = d.find_element(By.ID, element_id)
        return el if el.is_displayed() else False

    return check


def _fill(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(value)


def test_page_opens_a_fit_and_predicts_what_the_library_predicts(driver, stored) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, result, fit_id = stored
    driver.get(server.url + "/")
    _wait(
        driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "the page"
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#fits tbody tr")
    assert sorted(r.find_element(By.TAG_NAME, "td").text for r in rows) == ["browser fit", "other fit"]
    assert "kumar2024" in [
        a.get_attribute("data-law") for a in driver.find_elements(By.CSS_SELECTOR, "#laws a")
    ]

    driver.find_element(By.CSS_SELECTOR, f'#fits tbody tr[data-fit-id="{fit_id}"]').click()
    _wait(driver, lambda d: d.find_element(By.ID, "title").text == "browser fit", "the fit to open")
    _wait(
        driver,
        lambda d: (
            d.execute_script("const p = document.getElementById('plot'); return p.data ? p.data.length : 0")
            > 0
        ),
        "the plot",
    )
    assert "selected" in driver.find_element(By.CSS_SELECTOR, f'tr[data-fit-id="{fit_id}"]').get_attribute(
        "class"
    )
    summary = driver.find_element(By.ID, "summary").text
    for name in ("alpha", "beta", "E"):
        assert name in summary
    traces = driver.execute_script("return document.getElementById('plot').data.map(t => t.name || '')")
    assert sum(t.startswith("runs ") for t in traces) == 5 and sum(t.startswith("fit ") for t in traces) == 5
    assert sum(t.startswith("interval ") for t in traces) == 5  # the bootstrap bands around the curves
    assert driver.find_elements(By.CSS_SELECTOR, "#plot svg.main-svg"), "plotly drew nothing"

    # the predict form: a point beyond the fitted ranges, so the extrapolation warning shows too
    N, D = 2.5e7, 4e8
    _fill(driver, "field-predict-fields-N", f"{N:g}")
    _fill(driver, "field-predict-fields-D", f"{D:g}")
    driver.find_element(By.ID, "predict-submit").click()
    _wait(driver, _visible(driver, "predict-result"), "the prediction")
    value = driver.find_element(By.ID, "prediction-value")
    expected = fits.predict(result, {"N": [N], "D": [D]}).table.iloc[0]
    assert value.text == f"{expected['prediction']:.4f}"
    assert float(value.get_attribute("data-value")) == pytest.approx(expected["prediction"], rel=1e-12)
    interval = driver.find_element(By.ID, "prediction-interval").text
    assert (
        f"{expected['lower']:.4f} .. {expected['upper']:.4f}" in interval and "30 bootstrap draws" in interval
    )
    warnings = driver.find_element(By.ID, "prediction-warnings").text
    assert "extrapolating" in warnings

    # the recommend form, for the same fit
    _fill(driver, "field-recommend-fields-flops", "1e17")
    Select(driver.find_element(By.ID, "field-recommend-profile")).select_by_value("bits")
    driver.find_element(By.ID, "recommend-submit").click()
    _wait(driver, _visible(driver, "recommend-result"), "the recommendation")
    rec = fits.recommend(1e17, fit=result, profile="bits")
    text = driver.find_element(By.ID, "recommend-best").text
    assert text.startswith("Train ") and f"at {rec.best.precision}: " in text, text
    assert text.endswith(f"predicted {rec.objective} {rec.best.loss:.4f} nats/token"), text
    shown = driver.find_elements(By.CSS_SELECTOR, "#recommend-result table tr")
    assert len(shown) == 1 + min(6, len(rec.options))  # header and the top options, as the API's default

    # bad input: the page shows the one line the API (and the CLI) gives
    _fill(driver, "field-predict-fields-N", "-1")
    driver.find_element(By.ID, "predict-submit").click()
    error = _wait(driver, _visible(driver, "predict-error"), "the error line")
    assert error.text == "error: N must be positive and finite at every point"
    assert not driver.find_element(By.ID, "predict-result").is_displayed()

    # nothing was fetched from anywhere but this server (plotly.js is served locally)
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith("/static/vendor/plotly.min.js") for u in urls), urls
    assert all(u.startswith(server.url + "/") for u in urls), urls


def test_page_predicts_with_a_published_law(driver, stored) -> None:
    from selenium.webdriver.common.by import By

    server, _, _ = stored
    driver.get(server.url + "/#law=kumar2024")
    _wait(
        driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", "the page"
    )
    _wait(driver, lambda d: d.find_element(By.ID, "title").text == "kumar2024", "the law to open")
    _fill(driver, "field-predict-fields-N", "1e9")
    _fill(driver, "field-predict-fields-D", "2e10")
    _fill(driver, "field-predict-fields-precision", "w4a8kv8")
    _fill(driver, "field-predict-fields-ptq", "int8")
    driver.find_element(By.ID, "predict-submit").click()
    _wait(driver, _visible(driver, "predict-result"), "the prediction")
    value = driver.find_element(By.ID, "prediction-value")
    points = {"N": [1e9], "D": [2e10], "precision": ["w4a8kv8"], "ptq": ["int8"]}
    expected = fits.predict("kumar2024", points).table["prediction"].iloc[0]
    assert float(value.get_attribute("data-value")) == pytest.approx(expected, rel=1e-12)
    assert value.text == f"{expected:.4f}"
    assert (
        "published constants carry no uncertainty" in driver.find_element(By.ID, "prediction-interval").text
    )


def test_api_docs_render_without_the_internet(driver, stored) -> None:
    from selenium.webdriver.common.by import By

    server, _, _ = stored
    driver.get(server.url + "/docs")
    _wait(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"), "Swagger UI's operations"
    )
    assert "scalefit" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/predict", "/api/recommend", "/api/jobs", "/api/fits/{fit_id}"} <= paths, paths
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.endswith("/openapi.json") for u in urls), urls
    assert all(u.startswith(server.url + "/") for u in urls), urls
