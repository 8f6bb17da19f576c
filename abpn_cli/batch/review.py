"""`abpn review OUT`: one offline HTML page over a finished batch, to look rather than read.

Per file: the input and the output side by side (thumbnails), the spots the model edited ringed
on the output, 100 % crops (before | after) of the largest edits, and the figures (spots,
mean change, untouched tiles, seconds); files sorted by how much was changed, failures and
skipped files listed with their reasons, the shoot's dust map on top. Everything the page needs
lies beside it in OUT/_review/ (no CDN, no server, no script): it opens from disk.

The batch's own report is the source: `--report FILE`, or the copy every run leaves in
OUT/.abpn/last-report.json.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from abpn_cli.batch.fsutil import atomic_write, atomic_write_bytes
from abpn_cli.batch.report import counted
from abpn_cli.exitcodes import EXIT_USAGE, ExitRule
from abpn_cli.imaging import DEFAULT_MAX_PIXELS, ImageError, read_photo
from abpn_cli.imaging.pixels import to_uint8

REVIEW_DIR = "_review"
LAST_REPORT = "last-report.json"  # in OUT/.abpn/, written by every run
THUMB = 480  # long side of the before/after thumbnails
CROP = 160  # side of a 100 % crop
SPOT_RING = (255, 60, 60)  # RGB


class ReviewError(Exception):
    """No report to review, or one that is not ours."""


REVIEW_EXITS = (ExitRule(ReviewError, EXIT_USAGE),)  # no page without a report of ours


@dataclass(frozen=True)
class ReviewSettings:
    out: Path
    report: Path | None = None
    crops: int = 3  # 100 % crops per file


@dataclass
class ReviewResult:
    page: Path
    shown: int
    failed: int
    problems: list[str] = field(default_factory=list)  # files whose pictures could not be made


def load_report(settings: ReviewSettings) -> dict[str, Any]:
    path = settings.report or settings.out / ".abpn" / LAST_REPORT
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ReviewError(
            f"no report at {path}: run `abpn retouch … --out {settings.out}` first, "
            "or pass --report FILE"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ReviewError(f"cannot read the report {path}: {exc}") from exc
    if not isinstance(report, dict) or not isinstance(report.get("files"), list):
        raise ReviewError(f"{path} is not an abpn report")
    return report


def _jpeg(rgb: np.ndarray, dest: Path) -> None:
    ok, buf = cv2.imencode(
        ".jpg",
        cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 88],
    )
    if not ok:
        raise OSError(f"JPEG encoding failed for {dest}")
    atomic_write(dest, lambda tmp: tmp.write_bytes(buf.tobytes()))


def _thumb(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    s = min(1.0, THUMB / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), s


def _pictures(
    entry: dict[str, Any], index: int, img_dir: Path, crops: int, max_pixels: int
) -> dict[str, Any]:
    """Thumbnails, ringed spots and crops of one file; returns what the page shows. An input
    the batch took with --accept-damaged is read the same way (QA most wants to see those)."""
    damaged = bool(entry.get("damaged"))
    source = read_photo(Path(entry["input"]), max_pixels, accept_damaged=damaged)
    before = to_uint8(source.pixels)
    after = to_uint8(read_photo(Path(entry["output"]), max_pixels).pixels)
    if before.shape != after.shape:
        raise ImageError("input and output differ in size")
    change = float(np.abs(after.astype(np.int16) - before).mean())
    tb, s = _thumb(before)
    ta, _ = _thumb(after)
    spots = sorted(entry.get("spot_list") or [], key=lambda p: -p["diameter"] * p["change"])
    ta = ta.copy()
    for p in spots:
        r = max(4, round(p["diameter"] * s * 0.75))
        cv2.circle(ta, (round(p["x"] * s), round(p["y"] * s)), r, SPOT_RING, 1, cv2.LINE_AA)
    names = {"before": f"{index:04d}-before.jpg", "after": f"{index:04d}-after.jpg"}
    _jpeg(tb, img_dir / names["before"])
    _jpeg(ta, img_dir / names["after"])
    h, w = before.shape[:2]
    crop_names = []
    for c, p in enumerate(spots[:crops]):
        y0 = int(np.clip(p["y"] - CROP / 2, 0, max(0, h - CROP)))
        x0 = int(np.clip(p["x"] - CROP / 2, 0, max(0, w - CROP)))
        win = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
        gap = np.full((min(CROP, h), 4, 3), 255, np.uint8)
        name = f"{index:04d}-crop{c}.jpg"
        _jpeg(np.concatenate([before[win], gap, after[win]], axis=1), img_dir / name)
        crop_names.append(name)
    return {"change": change, "crops": crop_names, **names}


_CSS = """
body{font:14px system-ui,sans-serif;margin:24px;background:#1d1f21;color:#ddd}
h1{font-size:20px} h2{font-size:16px;margin-top:28px} a{color:#8cf}
.file{background:#282a2e;border-radius:6px;padding:12px;margin:12px 0}
.pair img{max-width:48%;margin-right:1%} .crops img{margin:4px 6px 0 0}
.fig{color:#aaa;margin:6px 0} .bad{color:#f77} table{border-collapse:collapse}
td{padding:2px 10px 2px 0;vertical-align:top}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _file_card(entry: dict[str, Any], pics: dict[str, Any]) -> str:
    tiles = entry.get("tiles") or {}
    untouched = (
        f", {100 * tiles['untouched'] / tiles['total']:.0f} % of tiles untouched"
        if tiles.get("total")
        else ""
    )
    crops = "".join(f'<img src="img/{_esc(c)}" alt="crop">' for c in pics["crops"])
    return (
        f'<div class="file"><div><b>{_esc(Path(entry["input"]).name)}</b> → '
        f"{_esc(entry['output'])}</div>"
        f'<div class="fig">{counted(entry.get("spots", 0), "spot")}, mean change '
        f"{pics['change']:.3f}/255{untouched}, {entry.get('seconds', 0):.1f} s, "
        f"{_esc(entry.get('status'))}</div>"
        + _damaged_line(entry.get("damaged"))
        + _profile_line(entry.get("profile"))
        + f'<div class="pair"><img src="img/{pics["before"]}" alt="before">'
        f'<img src="img/{pics["after"]}" alt="after, spots ringed"></div>'
        + (f'<div class="crops">{crops}</div>' if crops else "")
        + "</div>"
    )


def _damaged_line(damaged: str | None) -> str:
    """--accept-damaged's mark: the file was decoded only in part (grey or smeared rows)."""
    if not damaged:
        return ""
    return (
        '<div class="fig bad">damaged input, taken with --accept-damaged (not for delivery): '
        f"{_esc(damaged)}</div>"
    )


def _profile_line(profile: dict[str, Any] | None) -> str:
    """--dust-profile's part: shadows divided out, or why not, and any aperture note."""
    if not profile:
        return ""
    if "skipped" in profile:
        return f'<div class="fig bad">dust profile not applied: {_esc(profile["skipped"])}</div>'
    note = f' <span class="bad">({_esc(profile["note"])})</span>' if profile.get("note") else ""
    spots = counted(profile.get("spots", 0), "sensor dust spot")
    return f'<div class="fig">{spots} divided out{note}</div>'


def _failures(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(e['input'])}</td><td>{_esc(e['status'])}</td>"
        f'<td class="bad">{_esc(e.get("error"))}</td></tr>'
        for e in entries
    )
    return f"<h2>Not retouched ({len(entries)})</h2><table>{rows}</table>"


def _page(
    report: dict[str, Any], cards: list[str], others: list[dict], dust_map: str | None
) -> str:
    summary = report.get("summary", {})
    head = (
        f"{summary.get('ok', 0)} ok, {summary.get('failed', 0)} failed, "
        f"{summary.get('skipped', 0)} skipped"
    )
    model = report.get("model", {})
    recurring = (report.get("dust_map") or {}).get("recurring", [])
    dust = ""
    if dust_map:
        rows = "".join(
            f"<tr><td>x {r['x']}, y {r['y']}</td><td>⌀ {r['diameter']} px</td>"
            f"<td>in {r['frames']} frames</td></tr>"
            for r in recurring
        )
        dust = (
            f"<h2>Dust map: {counted(len(recurring), 'recurring spot')} "
            "(clean the sensor here)</h2>"
            f'<img src="{_esc(dust_map)}" alt="dust map" style="max-width:100%">'
            f"<table>{rows}</table>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>abpn review</title>'
        f"<style>{_CSS}</style></head><body><h1>abpn review: {_esc(head)}</h1>"
        f'<div class="fig">model {_esc(Path(str(model.get("path"))).name)} '
        f"({_esc(str(model.get('sha256'))[:12])}), sorted by mean change, largest first; "
        "crops are 100 %, before | after</div>"
        + dust
        + _failures(others)
        + f"<h2>Retouched ({len(cards)})</h2>"
        + "".join(cards)
        + "</body></html>"
    )


def run_review(settings: ReviewSettings) -> ReviewResult:
    """Write OUT/_review/index.html and its pictures; one bad file never stops the page."""
    report = load_report(settings)
    folder = settings.out / REVIEW_DIR
    img_dir = folder / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    done, others, problems = [], [], []
    megapixels = (report.get("settings") or {}).get("max_megapixels")  # the batch's own limit
    max_pixels = DEFAULT_MAX_PIXELS if megapixels is None else int(float(megapixels) * 1e6)
    for index, entry in enumerate(report["files"]):
        has_output = entry.get("output") and Path(entry["output"]).is_file()
        if entry.get("status") == "failed" or not has_output:
            if entry.get("status") == "failed" or entry.get("error"):
                others.append(entry)
            continue
        try:
            done.append((entry, _pictures(entry, index, img_dir, settings.crops, max_pixels)))
        except (ImageError, OSError) as exc:
            problems.append(f"{entry['input']}: {exc}")
    done.sort(key=lambda t: -t[1]["change"])
    map_rel = (report.get("dust_map") or {}).get("image")
    dust_map = f"../{map_rel}" if map_rel and (settings.out / map_rel).is_file() else None
    page = folder / "index.html"
    atomic_write_bytes(
        page, _page(report, [_file_card(e, p) for e, p in done], others, dust_map).encode()
    )
    return ReviewResult(page, len(done), sum(e.get("status") == "failed" for e in others), problems)
