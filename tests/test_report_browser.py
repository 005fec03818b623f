"""Snakemake's HTML report of the smoke run opened in a real browser (headless Chromium): a table
and two figures, each shown as a reader clicking it would see it, checked by the colours on screen.

In CI (CI=true) Chromium is installed (Debian's `chromium`, by .ci/provision) and must work. Elsewhere
the test is skipped, with the reason printed, when `chromium` is not installed. Screenshots are kept in the
test's temporary directory (the path is printed).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import in_ci

pytestmark = pytest.mark.workflow

# Once the report's React app is mounted: open one result in the content pane and its caption in
# the side bar, as clicking the result does (snakemake/report/html_reporter/.../result_view_button.js).
SHOW_RESULT = """<script>
const opener = setInterval(() => {
  if (typeof app === "undefined") return;  // React mounts the app asynchronously
  clearInterval(opener);
  const path = Object.keys(results).find(p => p.endsWith(%s));
  app.setView({navbarMode: "resultinfo", content: %s, contentPath: results[path].data_uri, resultPath: path});
}, 50);
</script>"""


@pytest.fixture(scope="session")  # session: set up before the session-scoped smoke run it would skip
def chromium() -> str:
    browser = shutil.which("chromium")
    if browser is None:
        reason = "the browser test needs Chromium: run `sudo .ci/provision` (or apt-get install chromium)"
        assert not in_ci(), reason  # CI provisions it: a missing browser is a failure there, not a skip
        print(f"\nskipping: {reason}")
        pytest.skip(reason)
    return browser


def open_in_chromium(browser: str, page: Path, *options: str, width: int = 1600) -> subprocess.CompletedProcess:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--window-size={width},1000", "--virtual-time-budget=20000", *options, page.as_uri()]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"chromium failed ({run.returncode}):\n{run.stderr[-3000:]}"
    return run


def screenshot(browser: str, report: Path, result: str | None, content: str, out: Path, width: int = 1600
               ) -> np.ndarray:
    """The report with ``result`` (a file name) opened, or as it opens (None), as a ``width`` x 1000 screenshot."""
    text = report.read_text()
    end = text.rindex("</body>")
    page = out.with_suffix(".html")
    opened = SHOW_RESULT % (json.dumps(result), json.dumps(content)) if result else ""
    page.write_text(text[:end] + opened + text[end:])
    open_in_chromium(browser, page, f"--screenshot={out}", width=width)
    assert out.exists()
    return np.asarray(Image.open(out).convert("RGB"))


def pixels_of(image: np.ndarray, hex_colour: str, tolerance: int = 6) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(int) - rgb).max(axis=2) <= tolerance).sum())


def test_the_report_shows_styled_tables_and_figures_in_chromium(chromium, smoke_report, tmp_path):
    print(f"\nscreenshots in {tmp_path}")
    table = screenshot(chromium, smoke_report, "table6.html", "html", tmp_path / "table6.png")
    assert table.shape == (1000, 1600, 3)
    # the table's style sheet at work inside the report: header row and zebra stripes (4 method rows)
    assert pixels_of(table, "#2f4b7c") > 2000 and pixels_of(table, "#eef2f8", 2) > 2000

    figure3 = screenshot(chromium, smoke_report, "figure3.png", "img", tmp_path / "figure3.png")
    assert pixels_of(figure3, "#d1495b", 10) > 50  # the paper's values (red diamonds)
    assert pixels_of(figure3, "#1f4e9c", 10) > 50  # our means with their intervals

    figure1 = screenshot(chromium, smoke_report, "figure1.png", "img", tmp_path / "figure1.png")
    assert pixels_of(figure1, "#053061", 40) + pixels_of(figure1, "#67001f", 40) > 50  # RdBu_r ends: signed maps
    assert pixels_of(figure1, "#440154", 30) + pixels_of(figure1, "#fde725", 30) > 50  # viridis: Grad-CAM maps


SIDE_PANEL = "#575c69"  # the report's side panel (bg-slate-900/70 over white)


def test_the_report_opens_on_the_claims_and_a_results_panel_leaves_them_room(chromium, smoke_report, tmp_path):
    """At 1400 px, as a reader opens it: the claims in the content pane, the side panel a menu; with the claims'
    description open beside them, the panel takes under a third of the window, not half."""
    dom = open_in_chromium(chromium, smoke_report, "--dump-dom", width=1400).stdout
    frames = [part.split('"', 1)[0] for part in dom.split('<iframe src="')[1:]]
    assert len(frames) == 1 and frames[0].startswith("data:text/html;charset=utf8;filename=claims.html;"), frames
    assert '<div id="rulegraph"' not in dom  # the rule graph is one click away (Workflow), not the landing
    landing = screenshot(chromium, smoke_report, None, "", tmp_path / "landing.png", width=1400)
    assert pixels_of(landing, "#2f4b7c") > 2000  # the claims' tables (their header rows)
    panel = pixels_of(landing[700:701], SIDE_PANEL, 3)  # its width, along a row below the menu's entries
    assert 200 < panel <= 0.25 * 1400, panel
    described = screenshot(chromium, smoke_report, "claims.html", "html", tmp_path / "described.png", width=1400)
    panel = pixels_of(described[700:701], SIDE_PANEL, 3)
    assert 300 < panel <= 0.32 * 1400, panel
    assert pixels_of(described[:, panel:], "#2f4b7c") > 2000
