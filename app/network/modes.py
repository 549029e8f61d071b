"""Travel modes (standard library only, so the CLI can offer them without importing numpy)."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """How a worker travels."""

    WALK = "walk"
    EBIKE = "ebike"
    CAR = "car"
