"""Argument checks shared by the public constructors: each names the field, the value and what
is allowed, and raises TypeError for a wrong type, ValueError for a wrong value."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Tuple

#: The core reads every count as an unsigned 64-bit integer: the bound of a field that has no
#: tighter one (beyond it the value would not even parse as an integer there).
U64_MAX = (1 << 64) - 1


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, shortened; never fails (Python refuses ``repr`` of an
    int of more than 4300 digits)."""
    try:
        r = repr(value)
    except ValueError:
        return "<%s of %d bits>" % (type(value).__name__, value.bit_length()) if isinstance(value, int) else "<%s>" % type(value).__name__
    return r if len(r) <= limit else r[: limit - 3] + "..."


def check_int(field: str, value: Any, lo: int, hi: Optional[int] = None) -> int:
    """``value`` when it is an int in ``lo..=hi`` (None: up to :data:`U64_MAX`; a range of
    ``_core.LIMITS`` is passed as ``*LIMITS[name]``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s: expected an integer, got %s" % (field, show(value)))
    top = U64_MAX if hi is None else hi
    if value < lo or value > top:
        allowed = ">= %d (and below 2**64)" % lo if top == U64_MAX else "between %d and %d" % (lo, hi)
        raise ValueError("%s: %s is out of range; must be %s" % (field, show(value), allowed))
    return value


def check_float(field: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s: expected a number, got %s" % (field, show(value)))
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float
        v = math.inf if value > 0 else -math.inf
    if math.isnan(v) or v < lo or v > hi or (lo_open and v == lo):
        raise ValueError("%s: %s is out of range; must be %s %g and at most %g" % (field, show(value), "more than" if lo_open else "at least", lo, hi))
    return v


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("%s: expected True or False, got %s" % (field, show(value)))
    return value


def check_str(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("%s: expected a string, got %s" % (field, show(value)))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the core's JSON parser would refuse it unnamed
        raise ValueError("%s: %s is not valid Unicode text (lone surrogate)" % (field, show(value))) from None
    return value


def check_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` when it is one of the string ``choices``: a TypeError when it is not a string,
    a ValueError naming the choices when it is another string."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError("%s: expected one of %s, got %s" % (field, ", ".join(repr(c) for c in choices), show(value)))
    if value not in choices:
        raise ValueError("%s: %s is not one of %s" % (field, show(value), ", ".join(repr(c) for c in choices)))
    return value


def check_seq(field: str, value: Any) -> Tuple[Any, ...]:
    """``tuple(value)``, or a TypeError naming the field when ``value`` is not iterable."""
    try:
        return tuple(value)
    except TypeError:
        raise TypeError("%s: expected a list, got %s" % (field, show(value))) from None
