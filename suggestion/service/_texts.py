"""Columnar reads of wire texts: checks and reads of a whole column of a request's
assignment, metric or time texts at once (numpy over the joined bytes), for `TrialDecoder`."""

from __future__ import annotations

import re

import numpy as np

_DECIMAL_CHARACTERS = b"0123456789.eE+-"


def decimals(texts: list[bytes]) -> tuple[list[float], np.ndarray] | None:
    """Every text's value (and as an array) when each is a finite plain decimal literal
    (`_trial_reader._DECIMAL`), else None. Made of decimal characters only, a text is one
    exactly when ``float`` reads it (no whitespace, underscore, nan or inf can be spelt with
    them)."""
    if not texts or b"".join(texts).translate(None, _DECIMAL_CHARACTERS):
        return None
    try:
        numbers = list(map(float, texts))
    except ValueError:
        return None
    array = np.array(numbers)
    return (numbers, array) if bool(np.isfinite(array).all()) else None


_PLAIN_CHARACTERS = b"0123456789.-\x00"
_INTEGER_DIGITS = 15  # an integer part below 10**15 is exact in a double
_INTEGER_PLACES = 10 ** np.arange(_INTEGER_DIGITS - 1, -1, -1, dtype=np.int64)


def surely_inside(texts: list[bytes], lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether every text is ``-?[0-9]{1,15}\\.[0-9]+`` (a plain decimal literal, which
    `float` reads, finitely) and its value lies within its ``[lo, hi]`` (one pair of bounds
    per text), told for most texts from the integer part alone, without reading them
    (`float` of 6,000 texts is most of a cold decode). False says nothing: the caller then
    reads the texts (`decimals`).

    A text of integer part ``i`` reads (rounded to the nearest double) as a value within
    [i, i + 1] (negated for "-"), both doubles: inside when ``lo <= i`` and ``i + 1 <= hi``.
    The texts not settled so are read (`float`) and compared as `decimals` would.
    """
    n = len(texts)
    joined = b"\x00".join(texts) + b"\x00"
    if not n or joined.translate(None, _PLAIN_CHARACTERS):
        return False
    data = np.frombuffer(joined, dtype=np.uint8)
    ends = np.flatnonzero(data == 0)
    dots = np.flatnonzero(data == ord("."))
    if len(ends) != n or len(dots) != n:
        return False
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    negative = np.zeros(n, dtype=bool)
    if b"-" in joined:
        minus = np.flatnonzero(data == ord("-"))
        owner = np.searchsorted(ends, minus)
        if bool((minus != starts[owner]).any()):  # a "-" that does not lead its text
            return False
        negative[owner] = True
    first = starts + negative  # the first integer digit
    width = dots - first  # integer digits: each text's one dot, after one digit or more
    if bool(((dots >= ends) | (width < 1) | (width > _INTEGER_DIGITS) | (dots + 1 >= ends)).any()):
        return False
    m = int(width.max())
    at = dots[:, None] + np.arange(-m, 0)
    digits = np.where(at >= first[:, None], data[np.maximum(at, 0)], ord("0")) - ord("0")
    integer = (digits.astype(np.int64) @ _INTEGER_PLACES[-m:]).astype(np.float64)
    low = np.where(negative, -(integer + 1), integer)
    high = np.where(negative, -integer, integer + 1)
    unsure = np.flatnonzero((low < lo) | (high > hi)).tolist()
    if unsure:
        values = np.array([float(texts[i]) for i in unsure])
        if not bool(np.all((values >= lo[unsure]) & (values <= hi[unsure]))):
            return False
    return True


# Times as Go writes them in UTC, NUL-separated (or empty): every one `_convert.parse_time`
# reads (days past the 28th, other offsets and forms are read one by one).
_UTC_TIME = (
    rb"(?:(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    rb"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?Z)?"
)
UTC_TIMES = re.compile(rb"(?:" + _UTC_TIME + rb"\x00)*" + _UTC_TIME)
_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord("T"), 13: ord(":"), 16: ord(":"), 19: ord("Z")}


def plain_utc_seconds(texts: list[bytes]) -> bool:
    """Whether every non-empty text is ``YYYY-MM-DDTHH:MM:SSZ`` (as Go writes a UTC time to
    the second) with a year from 1, a month 1-12, a day 1-28, hours 0-23, minutes and
    seconds 0-59: times `_convert.parse_time` reads, checked as one array."""
    present = [text for text in texts if text] if b"" in texts else texts
    if not present:
        return True
    data = b"".join(present)
    if len(data) != 20 * len(present):
        return False
    chars = np.frombuffer(data, dtype=np.uint8).reshape(len(present), 20)
    for column, char in _SEPARATORS.items():
        if not bool(np.all(chars[:, column] == char)):
            return False
    digits = chars[:, _DIGITS].astype(np.int64) - ord("0")
    if bool(np.any((digits < 0) | (digits > 9))):
        return False
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month, day, hour, minute, second = (
        digits[:, k] * 10 + digits[:, k + 1] for k in (4, 6, 8, 10, 12)
    )
    return bool(
        np.all(
            (year >= 1)
            & (month >= 1)
            & (month <= 12)
            & (day >= 1)
            & (day <= 28)
            & (hour <= 23)
            & (minute <= 59)
            & (second <= 59)
        )
    )
