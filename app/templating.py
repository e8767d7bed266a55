"""Jinja2 filters: base units in data, humanised only here."""

from __future__ import annotations

from jinja2 import Environment


def si(value: float | int | None, unit: str = "", digits: int = 1) -> str:
    """138357544 -> '138.4 M'; 15470264320 -> '15.5 G'."""
    if value is None:
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}f} {prefix}{unit}"
    return f"{value:g} {unit}".rstrip()


def bytes_(value: int | None) -> str:
    """Decimal megabytes, as the course quotes them: 553,440,000 -> '553.4 MB'."""
    return si(value, "B")


def upload_limit(max_bytes: int) -> str:
    """How an upload limit reads, on the page and in the too_large error alike: '10.5 MB (10,485,760 bytes)'."""
    return f"{bytes_(max_bytes)} ({max_bytes:,} bytes)"


def thousands(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def install_filters(env: Environment) -> None:
    env.filters["si"] = si
    env.filters["bytes"] = bytes_
    env.filters["thousands"] = thousands
    env.filters["upload_limit"] = upload_limit
