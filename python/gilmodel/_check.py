"""Argument checks shared by the public constructors: each names the field, the value and what
is allowed, and raises TypeError for a wrong type, ValueError for a wrong value."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional


def check_int(field: str, value: Any, lo: int, hi: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s: expected an integer, got %r" % (field, value))
    if value < lo or (hi is not None and value > hi):
        allowed = ">= %d" % lo if hi is None else "between %d and %d" % (lo, hi)
        raise ValueError("%s: %r is out of range; must be %s" % (field, value, allowed))
    return value


def check_float(field: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s: expected a number, got %r" % (field, value))
    v = float(value)
    if math.isnan(v) or v < lo or v > hi or (lo_open and v == lo):
        raise ValueError("%s: %r is out of range; must be %s %g and at most %g" % (field, value, "more than" if lo_open else "at least", lo, hi))
    return v


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("%s: expected True or False, got %r" % (field, value))
    return value


def check_str(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("%s: expected a string, got %r" % (field, value))
    return value


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError("%s: %r is not one of %s" % (field, value, ", ".join(repr(c) for c in choices)))
    return value
