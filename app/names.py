"""How model names compare and match for people: natural order (ResNet-18 < 34 < 50 < 101)
and a folded form that forgives case, spaces, hyphens, underscores and dots."""

from __future__ import annotations

import re


def folded(text: str) -> str:
    """'ResNet-50' and 'resnet_50' -> 'resnet50'."""
    return re.sub(r"[\s\-_.]+", "", text.lower())


def natural_key(text: str) -> tuple:
    """'ResNet-101' after 'ResNet-50': digit runs compare as numbers, the rest without case."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in re.split(r"(\d+)", text.lower()) if part)
