"""One error type for bad user input, raised before any work starts."""
from __future__ import annotations


class FairgapError(ValueError):
    """A bad parameter or missing input; the message names the value and the valid choices."""


def check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise FairgapError(f"unknown {what} {value!r}; valid choices: {', '.join(map(str, choices))}")


def check_range(what: str, value, low, high) -> None:
    try:
        ok = low <= float(value) <= high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise FairgapError(f"{what} {value!r} is out of range; it must lie in [{low}, {high}]")
