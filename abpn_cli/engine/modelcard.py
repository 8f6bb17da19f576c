"""How a model file was made: one `ModelCard` shape for every writer and every reader.

Writers: `abpn export` (a checkpoint), `abpn train` (trainer), `abpn train-dust` (the dust
model's LRL stage) and `abpn learn` (exemplar pairs). Readers: `doctor`, the model cards in
Markdown, tests. The card is stored under `card` in the file's `abpn.json`; `from_meta` also
reads the three layouts written before it existed, so older files (the first shipped default
among them) describe themselves the same way. No torch here: a card is plain JSON data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

CARD_KEY = "card"
KINDS = ("export", "train", "train-dust", "learned", "test", "unknown")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelCard:
    """What a model file says about its own making (JSON types only)."""

    kind: str  # one of KINDS
    steps: int | None = None  # optimizer steps that made these weights (this run)
    samples: int | None = None  # training samples seen (this run)
    minutes: float | None = None  # training time
    init_from: str | None = None  # the model file or checkpoint it continued from
    # the batch --sensitivity the model was judged at, used when none is given (None: the
    # batch default, which is the dust model's); a learned look applies all it learned: 1.0
    sensitivity: float | None = None
    created: str = field(default_factory=_now)
    details: dict[str, Any] = field(default_factory=dict)  # writer-specific: data, scores

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model card kind must be one of {KINDS}, not {self.kind!r}")

    def to_meta(self) -> dict[str, Any]:
        return {CARD_KEY: asdict(self)}

    @property
    def summary(self) -> str:
        """One line for `doctor`: kind, steps and samples where known."""
        parts = [self.kind, f"steps {'?' if self.steps is None else self.steps}"]
        if self.samples is not None:
            parts.append(f"{self.samples:,} samples")
        return ", ".join(parts)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ModelCard:
        """The card of a file's metadata, whichever version of abpn wrote it."""
        card = meta.get(CARD_KEY)
        if isinstance(card, dict):
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in card.items() if k in names})
        return _legacy(meta)


def _legacy(meta: dict[str, Any]) -> ModelCard:
    """Files written before the card: trainer/dust `training`, learn's top level, export's."""
    training = meta.get("training")
    if isinstance(training, dict):
        rest = {k: v for k, v in training.items() if k not in ("steps", "samples", "minutes")}
        init = rest.pop("init_from", None)
        return ModelCard(
            kind="train-dust" if training.get("stage") == "lrl" else "train",
            steps=training.get("steps"),
            samples=training.get("samples"),
            minutes=training.get("minutes"),
            init_from=init,
            created="",
            details=rest,
        )
    if meta.get("kind") == "learned":
        skip = {"kind", "steps", "created", "format", "abpn_version", "config", "weights_sha256"}
        return ModelCard(
            kind="learned",
            steps=meta.get("steps"),
            created=meta.get("created", ""),
            init_from=(meta.get("base_model") or {}).get("path"),
            details={k: v for k, v in meta.items() if k not in skip},
        )
    if "trained_steps" in meta:
        return ModelCard(
            kind="export",
            steps=meta["trained_steps"],
            init_from=meta.get("source"),
            created="",
            details={"metrics": meta.get("metrics")},
        )
    return ModelCard(kind="unknown", created="")
