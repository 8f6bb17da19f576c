"""abpn eval's report: capped means and strict JSON."""

from __future__ import annotations

import json
import math

import pytest

from abpn_cli.training import eval_report as rep
from abpn_cli.training.evaluate import FileResult


def test_summary_caps_infinite_psnr_and_json_is_strict() -> None:
    files = [
        FileResult("a", 8, 8, None, math.inf, 30.0, 1.0, 0.9, math.nan, 0.5),
        FileResult("b", 8, 8, None, 40.0, 50.0, 0.8, 0.9, 2.0, 1.5),
    ]
    report = rep.EvalReport(None, {}, files)
    assert report.summary.psnr_in == pytest.approx((rep.PSNR_CAP + 40.0) / 2)
    assert report.summary.locality_255 == 2.0 and report.summary.seconds_total == 2.0
    doc = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert doc["files"][0]["psnr_in"] is None and doc["files"][0]["locality_255"] is None
