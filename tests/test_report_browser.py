"""The report in a real headless Chromium (Selenium): no console errors, every figure drawn,
hostile names inert, every segment name visible; and a full-page screenshot for reviewers.

Needs Debian's `chromium` and `chromium-driver` (or CUSTSEG_CHROMIUM / CUSTSEG_CHROMEDRIVER);
`.ci/run` installs them in CI. Without them the tests skip and say why. The screenshot goes to
tests/artifacts/report.png (or $CUSTSEG_SCREENSHOT_DIR) and its path is printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from _report_data import hostile_result

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,900",
)
ARTIFACTS = Path(os.environ.get("CUSTSEG_SCREENSHOT_DIR") or Path(__file__).resolve().parent / "artifacts")
# Set before any page script runs (CDP scripts are not subject to the page's CSP): any payload that
# ran would leave a trace here.
TRAP = ("window.__alerts = [];"
        "window.alert = window.confirm = window.prompt = function (m) { window.__alerts.push(String(m)); };")


def _find(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    browser = _find("CUSTSEG_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    chromedriver = _find("CUSTSEG_CHROMEDRIVER", ("chromedriver",))
    if not browser or not chromedriver:
        pytest.skip("headless Chromium not found: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does it in CI)")
    profile = tempfile.mkdtemp(prefix="custseg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    hostile_result().to_dir(out)
    return out


@pytest.fixture(scope="module")
def loaded(driver, report_dir):
    """The report opened from file://, after every figure has been drawn; the console log of the load."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop anything from before
    driver.get((report_dir / "report.html").resolve().as_uri())
    expected = driver.execute_script("return document.querySelectorAll('[data-figure]').length")
    WebDriverWait(driver, 90).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.js-plotly-plot svg.main-svg').length > 0 && "
        "Array.from(document.querySelectorAll('[data-figure]')).every("
        "  e => e.classList.contains('js-plotly-plot') && e.querySelector('svg.main-svg'))"))
    return {"expected": expected, "log": driver.get_log("browser")}


def test_no_console_errors(loaded):
    errors = [entry for entry in loaded["log"] if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_every_figure_is_drawn(driver, loaded):
    drawn = driver.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".filter(e => e.querySelector('svg.main-svg') && e.getBoundingClientRect().height > 100).length")
    assert drawn == loaded["expected"] >= 8
    # the traces are there, not just empty axes
    traces = driver.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => (e.data || []).length)")
    assert all(n > 0 for n in traces)


def test_hostile_names_are_inert_and_shown_as_text(driver, loaded):
    from _report_data import ATTRIBUTE_PAYLOAD, SCRIPT_PAYLOAD

    assert driver.execute_script("return window.__pwned") is None
    assert driver.execute_script("return window.__alerts") == []
    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    text = driver.execute_script("return document.body.innerText")
    assert SCRIPT_PAYLOAD in text and ATTRIBUTE_PAYLOAD in text
    # in the best-seller charts, plotly draws the names as text too
    ticks = driver.execute_script(
        "return Array.from(document.querySelectorAll('[data-figure^=best_sellers] .ytick text'))"
        ".map(t => t.textContent)")
    assert any(t.startswith("</script><script>") for t in ticks)


def test_every_segment_name_of_profiles_csv_is_visible(driver, loaded, report_dir):
    from selenium.webdriver.common.by import By

    names = pd.read_csv(report_dir / "profiles.csv")["segment_name"].tolist()
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".card h3") if h.is_displayed()]
    assert headings == names
    strategies = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".card .todo")]
    assert len(strategies) == len(names) and all(len(s) > 30 for s in strategies)


def test_full_page_screenshot_for_reviewers(driver, loaded):
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    driver.set_window_size(1280, height)
    driver.execute_script("window.dispatchEvent(new Event('resize'))")  # plotly charts follow the width
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "report.png"
    assert driver.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 100_000
    print(f"\nreport screenshot: {path}")


def test_without_webgl_the_3d_scatter_is_drawn_flat_without_errors(report_dir):
    """Some locked-down viewers have no WebGL: the page still draws every chart."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _find("CUSTSEG_CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    chromedriver = _find("CUSTSEG_CHROMEDRIVER", ("chromedriver",))
    if not browser or not chromedriver:
        pytest.skip("headless Chromium not found (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="custseg-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}", "--disable-webgl", "--disable-3d-apis"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        drv.get((report_dir / "report.html").resolve().as_uri())
        WebDriverWait(drv, 90).until(lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('[data-figure]'))"
            ".every(e => e.querySelector('svg.main-svg'))"))
        assert drv.execute_script("return !!document.createElement('canvas').getContext('webgl')") is False
        title = drv.execute_script("return document.querySelector('[data-figure=scatter] .gtitle').textContent")
        assert "no WebGL" in title
        assert drv.execute_script("return document.querySelector('[data-figure=scatter]').data[0].type") == "scatter"
        assert not [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


# Every plotly text element (titles, subtitles, tick and bar labels, legends) inside its figure's frame.
CLIPPED_TEXT = """
var out = [];
document.querySelectorAll('.js-plotly-plot').forEach(function (p) {
  var svg = p.querySelector('svg.main-svg');
  if (!svg) { return; }
  var R = svg.getBoundingClientRect();
  p.querySelectorAll('text').forEach(function (t) {
    var r = t.getBoundingClientRect();
    if (r.width > 0 && (r.right > R.right + 1 || r.left < R.left - 1 || r.top < R.top - 1 || r.bottom > R.bottom + 1)) {
      out.push(p.getAttribute('data-figure') + ': ' + t.textContent);
    }
  });
});
return out;
"""


@pytest.mark.parametrize("width", [800, 1400, 1920])
def test_no_sideways_scroll_and_no_clipped_chart_text_at_laptop_widths(driver, loaded, report_dir, width):
    """The page opened in a window of each width (a fresh load: what a reader of that laptop sees)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(width, 900)
    driver.get((report_dir / "report.html").resolve().as_uri())
    WebDriverWait(driver, 90).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('[data-figure]')).every(e => e.querySelector('svg.main-svg'))"))
    inner = driver.execute_script("return window.innerWidth")
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px window"
    assert driver.execute_script(CLIPPED_TEXT) == []
    # the period card shows its whole text (it wraps instead of being cut)
    period = driver.execute_script(
        "var v = document.querySelector('.kpi .v.period'); return v ? [v.scrollWidth, v.clientWidth] : null")
    assert period is None or period[0] <= period[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"report-top-{width}.png"))


# Set before the page's scripts: at the load event, each chart's position and whether it is drawn.
AT_LOAD = """
window.addEventListener('load', function () {
  window.__atLoad = Array.from(document.querySelectorAll('[data-figure]')).map(function (n) {
    return [n.getAttribute('data-figure'), n.getBoundingClientRect().top, !!n.querySelector('svg.main-svg')];
  });
  window.__windowHeight = window.innerHeight;
});
"""


def test_loaded_with_its_first_window_drawn_and_not_held_by_the_charts_below(driver, loaded, report_dir):
    """What a browser (and Selenium's `get`) counts as opened: the load event. By then every chart in
    the first window is drawn; the charts far below are drawn after it and do not hold it."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(1280, 1150)  # (the first window holds a chart; the next one is well below)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": AT_LOAD})
    driver.get((report_dir / "report.html").resolve().as_uri())  # (returns after the load event)
    at_load = driver.execute_script("return window.__atLoad")
    height = driver.execute_script("return window.__windowHeight")
    first_window = [name for name, top, _ in at_load if top < height]
    far_below = [name for name, top, _ in at_load if top >= height + 300]  # (beyond the scroll observer's margin)
    drawn = {name for name, _, is_drawn in at_load if is_drawn}
    assert first_window and far_below
    assert set(first_window) <= drawn, f"not drawn when the page had loaded: {set(first_window) - drawn}"
    assert not drawn & set(far_below), f"the load waited for charts far below: {drawn & set(far_below)}"
    WebDriverWait(driver, 90).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('[data-figure]')).every(e => e.querySelector('svg.main-svg'))"))
