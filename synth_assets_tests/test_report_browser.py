"""The HTML report as a real browser sees it: headless Chromium (Debian's `chromium`) parses the
page and renders it. Skipped where no Chromium is installed (`apt-get install chromium`)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from synth_assets.core.evaluate import privacy_guarantee
from synth_assets.core.report_html import json_safe, render_html
from synth_assets_tests.test_evaluate import _full_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def _page(tmp_path):
    rep = _full_report()
    rep["guarantee"] = privacy_guarantee(
        {
            "ledger": {"epsilon_spent": 0.9999999999999472, "delta": 1e-6},
            "privacy": {"unit_table": "customers", "rows_per_unit": {"accounts": 4}},
            "reference_ledger": {"epsilon_spent": 3.2, "delta": 1e-6},
            "plan": {"merchants": {"kind": "reference"}},
        }
    )
    path = tmp_path / "index.html"
    path.write_text(render_html(json_safe(rep)))
    return path


def test_chromium_renders_the_guarantee_scores_heatmaps_and_distance_plots(tmp_path):
    path = _page(tmp_path)
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Privacy guarantee" in dom and "(1, 1e-06)-differential privacy" in dom
    assert "Reference tables (<code>merchants</code>): (3.2, 1e-06)" in dom
    assert '<h2 id="glance">Scores at a glance</h2>' in dom and "(database)" in dom
    assert "customers: pair trend scores" in dom and "customers: Spearman, synthetic" in dom
    assert "customers: DCR (share of rows)" in dom and "customers: NNDR (share of rows)" in dom
    assert dom.count("<svg") >= 8 and "<script" not in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, "--window-size=1400,2000", f"--screenshot={shot}", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
