"""Shoot dust map: the spots that recur at the same place of the frame across a batch.

Sensor dust sits on the sensor, so it shows at the same stored pixel position in every frame
of a shoot whatever the scene; a blemish in one photo does not. Spots the model edited
(`FileResult.edit.spots`, positions as stored, never rotated, i.e. sensor coordinates) are
clustered across frames by relative position: two spots match when their centres are closer
than the larger of 0.4 % of the long side and half the spot's diameter. A cluster seen in at
least `max(2, 25 % of the frames)` frames is reported as recurring: "clean your sensor here".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from abpn_cli.engine.dustprofile import same_aspect

MATCH_FRACTION = 0.004  # of the long side
RECUR_SHARE = 0.25
MAP_WIDTH = 1200


@dataclass(frozen=True)
class FrameSpots:
    width: int
    height: int
    spots: Sequence[dict[str, float]]  # {"x", "y", "diameter", "change"} in frame pixels


@dataclass(frozen=True)
class DustMapNote:
    """What the batch tells the user about its dust map once it has run."""

    image: Path  # OUT/_qa/dust-map.png
    frames: int  # frames the map is made of (retouched now or before)
    recurring: int  # spots seen in at least frames_needed(frames) of them
    profiled: bool  # the batch already divided a --dust-profile out
    inputs: tuple[Path, ...] = ()  # what the batch was given (the hint names them)

    @classmethod
    def of(
        cls, entry: dict, out: Path, profile: Path | None, inputs: tuple[Path, ...]
    ) -> DustMapNote:
        """From the report's `dust_map` entry and the batch's OUT, --dust-profile, inputs."""
        return cls(
            out / entry["image"], entry["frames"], len(entry["recurring"]), bool(profile), inputs
        )


@dataclass
class _Cluster:
    x: float  # relative to the width
    y: float  # relative to the height
    diameter: float  # relative to the long side
    frames: set[int] = field(default_factory=set)
    n: int = 0

    def add(self, x: float, y: float, d: float, frame: int) -> None:
        self.n += 1
        self.x += (x - self.x) / self.n
        self.y += (y - self.y) / self.n
        self.diameter = max(self.diameter, d)
        self.frames.add(frame)


@dataclass(frozen=True)
class RecurringSpot:
    x: float  # centre relative to the frame width, 0..1
    y: float
    diameter: float  # relative to the long side
    frames: int
    members: tuple[int, ...] = ()  # which frames (indices into the batch's list), ascending

    def to_json(self, width: int, height: int) -> dict[str, float | int]:
        long_side = max(width, height)
        return {
            "x": round(self.x * width, 1),
            "y": round(self.y * height, 1),
            "diameter": round(self.diameter * long_side, 1),
            "frames": self.frames,
        }


def _cluster(frames: Sequence[FrameSpots]) -> list[_Cluster]:
    clusters: list[_Cluster] = []
    for index, frame in enumerate(frames):
        long_side = max(frame.width, frame.height)
        for s in frame.spots:
            x, y = s["x"] / frame.width, s["y"] / frame.height
            d = s["diameter"] / long_side
            best, best_dist = None, math.inf
            for c in clusters:
                dist = math.hypot((x - c.x) * frame.width, (y - c.y) * frame.height) / long_side
                if dist < max(MATCH_FRACTION, 0.5 * max(d, c.diameter)) and dist < best_dist:
                    best, best_dist = c, dist
            if best is None:
                clusters.append(_Cluster(x, y, d, {index}, 1))
            else:
                best.add(x, y, d, index)
    return clusters


def frames_needed(count: int) -> int:
    """In how many of `count` frames a spot must be seen to count as recurring."""
    return max(2, math.ceil(RECUR_SHARE * count))


def recurring_spots(frames: Sequence[FrameSpots]) -> list[RecurringSpot]:
    """Clusters seen in at least max(2, 25 % of the frames) frames, most frequent first."""
    need = frames_needed(len(frames))
    out = [
        RecurringSpot(c.x, c.y, c.diameter, len(c.frames), tuple(sorted(c.frames)))
        for c in _cluster(frames)
        if len(c.frames) >= need
    ]
    return sorted(out, key=lambda s: (-s.frames, -s.diameter))


def reference_size(frames: Sequence[FrameSpots]) -> tuple[int, int]:
    """The most common (width, height) of the batch: the frame the map is drawn on."""
    sizes = [(f.width, f.height) for f in frames]
    return max(set(sizes), key=sizes.count)


def same_shape(frames: Sequence[FrameSpots]) -> list[FrameSpots]:
    """The frames shaped as the batch's most common size (any scale): a frame of another aspect
    ratio or orientation is another camera, a crop, or rotated pixels, whose positions are not
    the same sensor positions, so it would put false recurring spots on the map."""
    if not frames:
        return []
    size = reference_size(frames)
    return [f for f in frames if same_aspect((f.width, f.height), size)]


def render_map(frames: Sequence[FrameSpots], recurring: Sequence[RecurringSpot]) -> np.ndarray:
    """(H, W, 3) uint8 BGR picture: spots as dots as bright as they are frequent, recurring
    ones ringed and counted.

    Why brightness by frequency (seen on a 100-frame review): with one dot per spot, the
    one-off edits of a hundred frames fill the map with noise and hide what recurs.
    """
    rw, rh = reference_size(frames)
    w = MAP_WIDTH
    h = max(1, round(MAP_WIDTH * rh / rw))
    seen = np.zeros((h, w), np.float32)
    for frame in frames:
        dots = np.zeros((h, w), np.float32)
        for s in frame.spots:
            x, y = s["x"] / frame.width * w, s["y"] / frame.height * h
            cv2.circle(dots, (round(x), round(y)), 2, 1.0, -1)
        seen += dots  # a frame counts once per place
    level = np.minimum(seen / frames_needed(len(frames)), 1.0)
    grey = np.where(seen > 0, 60 + 180 * level, 40).astype(np.uint8)
    img = np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), (90, 90, 90), 1)
    scale = w / rw
    for r in recurring:
        cx, cy = round(r.x * w), round(r.y * h)
        radius = max(6, round(r.diameter * max(rw, rh) * scale))
        cv2.circle(img, (cx, cy), radius, (60, 60, 255), 2, cv2.LINE_AA)
        label = f"{r.frames}/{len(frames)}"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        x = cx + radius + 3 if cx + radius + 3 + tw <= w else cx - radius - 3 - tw  # stay on it
        cv2.putText(
            img,
            label,
            (x, cy + 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (220, 220, 255),
            1,
            cv2.LINE_AA,
        )
    return img


def write_map_png(img: np.ndarray, dest: Path) -> None:
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"PNG encoding failed for {dest}")
    dest.write_bytes(buf.tobytes())
