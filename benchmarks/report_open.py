"""How long report.html takes to open in a real browser (headless Chromium, driven by Selenium).

    .venv/bin/python benchmarks/report_open.py                      # runs `custseg demo` (70k lines) first
    .venv/bin/python benchmarks/report_open.py path/to/report.html --repeat 5 --width 1400
    .venv/bin/python benchmarks/report_open.py --screenshots benchmarks/results/shots   # also PNGs per width

Each repeat opens the page in a fresh browser profile (no cache) from file:// and reports, from
the page's own clock (performance.now(), 0 = navigation start): `fcp` (first contentful paint:
the page shows something), `dom` (DOMContentLoaded: the
HTML and every inline script parsed and run, plotly.js included), `first` (the first figure
drawn), `screen` (every figure in the first window drawn: the page as it is first seen is
complete; this is the report's opening time), `all` (every figure drawn: an <svg class="main-svg"> in each [data-figure] element) and
`load`. A probe injected through the DevTools protocol (which the page's CSP does not govern)
records when the figures appear; the page itself is not changed. Prints the median of each and
the file size; `--json` appends the numbers to benchmarks/results/report_open.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = """
window.__custsegTimes = {};
(function poll() {
  var nodes = document.querySelectorAll('[data-figure]');
  var drawn = 0;
  var t = window.__custsegTimes;
  t.figures = t.figures || {};
  for (var i = 0; i < nodes.length; i++) {
    if (nodes[i].querySelector('svg.main-svg')) {
      drawn++;
      var name = nodes[i].getAttribute('data-figure');
      if (t.figures[name] === undefined) { t.figures[name] = performance.now(); }
    }
  }
  if (t.fcp === undefined) {
    var paint = performance.getEntriesByName('first-contentful-paint')[0];
    if (paint) { t.fcp = paint.startTime; }
  }
  if (drawn > 0 && t.first === undefined) { t.first = performance.now(); }
  if (t.screen === undefined && nodes.length > 0) {  // every chart in the first window drawn
    var onScreen = 0, onScreenDrawn = 0;
    for (var j = 0; j < nodes.length; j++) {
      if (nodes[j].getBoundingClientRect().top < window.innerHeight) {
        onScreen++;
        if (nodes[j].querySelector('svg.main-svg')) { onScreenDrawn++; }
      }
    }
    // (no chart in the first window: it is complete once the page has run its scripts)
    if (onScreenDrawn === onScreen && (onScreen > 0 || t.dom !== undefined)) {
      t.screen = performance.now(); t.screen_charts = onScreen;
    }
  }
  if (nodes.length > 0 && drawn === nodes.length) { t.all = performance.now(); return; }
  setTimeout(poll, 5);
})();
document.addEventListener('DOMContentLoaded', function () { window.__custsegTimes.dom = performance.now(); });
window.addEventListener('load', function () { window.__custsegTimes.load = performance.now(); });
"""
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def browser(width: int, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = os.environ.get("CUSTSEG_CHROMIUM") or shutil.which("chromium") or shutil.which("google-chrome")
    driver = os.environ.get("CUSTSEG_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        sys.exit("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="custseg-open-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS + (f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    return drv, profile


def open_once(page: Path, width: int, screenshot: Path | None = None) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    drv, profile = browser(width)
    try:
        drv.get(page.resolve().as_uri())
        WebDriverWait(drv, 120, poll_frequency=0.05).until(
            lambda d: d.execute_script("var t = window.__custsegTimes; return t && t.all !== undefined "
                                       "&& t.load !== undefined"))
        times = drv.execute_script("return window.__custsegTimes")
        if times.get("fcp") is None:  # (painted after the last poll)
            times["fcp"] = drv.execute_script(
                "var p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null")
        times["tops"] = drv.execute_script(
            "return Array.from(document.querySelectorAll('[data-figure]')).map(function (n) {"
            " return [n.getAttribute('data-figure'), Math.round(n.getBoundingClientRect().top + window.scrollY)]; })")
        times["scroll_width"] = drv.execute_script("return document.documentElement.scrollWidth")
        times["inner_width"] = drv.execute_script("return window.innerWidth")
        if screenshot is not None:
            height = drv.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
            drv.set_window_size(width, min(height, 16000))
            time.sleep(1.0)  # plotly follows the resize
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            drv.save_screenshot(str(screenshot))
        return times
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


KEYS = ("fcp", "dom", "first", "screen", "all", "load")


def open_times(page: Path, repeat: int = 3, width: int = 1400) -> tuple[dict, list[dict]]:
    """The median of each time (ms) over `repeat` fresh opens, and the opens themselves."""
    runs = [open_once(page, width) for _ in range(repeat)]
    return {k: round(statistics.median(r[k] for r in runs)) for k in KEYS}, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", nargs="?", help="report.html (default: run `custseg demo` into a temp dir)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--screenshots", type=Path, help="also save full-page PNGs at 800, 1400 and 1920 px here")
    parser.add_argument("--figures", action="store_true", help="also print when each figure appeared (last open)")
    parser.add_argument("--json", action="store_true", help="append the result to benchmarks/results/report_open.jsonl")
    args = parser.parse_args()
    tmp = None
    if args.report:
        page = Path(args.report)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="custseg-open-demo-"))
        subprocess.run([sys.executable, "-m", "custseg.cli", "demo", "--out", str(tmp / "demo"), "-q"], check=True)
        page = tmp / "demo" / "report.html"
    try:
        median, runs = open_times(page, args.repeat, args.width)
        size = page.stat().st_size
        keys = KEYS
        print(f"{page}: {size / 1e6:.2f} MB; width {args.width} px; median of {len(runs)} opens (ms from "
              f"navigation start): " + ", ".join(f"{k} {median[k]:,}" for k in keys))
        if args.screenshots:
            for width in (800, 1400, 1920):
                shot = open_once(page, width, args.screenshots / f"report-{width}.png")
                print(f"{width} px: page {shot['scroll_width']} px wide in a {shot['inner_width']} px window; "
                      f"{args.screenshots / f'report-{width}.png'}")
        if args.figures:
            last = runs[-1]["figures"]
            for name, at in sorted(last.items(), key=lambda kv: kv[1]):
                print(f"  {name:<20} drawn at {at:,.0f} ms")
        if args.json:
            out = Path(__file__).resolve().parent / "results" / "report_open.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a") as fh:
                fh.write(json.dumps({"report": str(page), "bytes": size, "width": args.width, "median_ms": median,
                                     "runs": runs, "when": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
