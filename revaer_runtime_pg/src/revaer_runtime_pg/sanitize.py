"""Make values storable: PostgreSQL TEXT refuses NUL bytes and lone surrogates, BIGINT stops at 2^63-1.

Every function returns the value unchanged (the same object) when it is
storable, so the common case costs one cheap check; otherwise it returns a
cleaned copy and says what it changed in ``problems``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from revaer_core import MAX_BYTES

BIGINT_MIN = -(2**63)
BIGINT_MAX = MAX_BYTES
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
REPLACEMENT = "\ufffd"


def _unsurrogate(text: str) -> str:
    """Lone surrogates as U+FFFD; surrogate-escaped bytes (``os.fsdecode``) decoded where they form UTF-8."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def text(value: str, field: str, problems: list[str]) -> str:
    """``value`` as PostgreSQL TEXT accepts it."""
    if value.isascii():
        if "\x00" not in value:
            return value
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"{field} is not valid UTF-8 (undecodable bytes replaced by U+FFFD)")
            value = _unsurrogate(value)
        if "\x00" not in value:
            return value
    problems.append(f"{field} contains NUL bytes (replaced by U+FFFD)")
    return value.replace("\x00", REPLACEMENT)


def optional_text(value: str | None, field: str, problems: list[str]) -> str | None:
    return None if value is None else text(value, field, problems)


def bigint(value: int, field: str, problems: list[str]) -> int:
    """``value`` clamped to BIGINT."""
    if BIGINT_MIN <= value <= BIGINT_MAX:
        return value
    problems.append(f"{field} {value} is beyond BIGINT (clamped)")
    return BIGINT_MAX if value > 0 else BIGINT_MIN


def optional_bigint(value: int | None, field: str, problems: list[str]) -> int | None:
    return None if value is None else bigint(value, field, problems)


#: The extremes a timestamp may take: psycopg reads TIMESTAMPTZ in UTC, and Python's years stop at 1 and 9999.
MOMENT_MIN = datetime.min.replace(tzinfo=UTC)
MOMENT_MAX = datetime.max.replace(tzinfo=UTC)


def moment(value: datetime, field: str, problems: list[str]) -> datetime:
    """``value`` clamped to what can be read back: 0001-01-01T00:00+05:00 is in year 0 in UTC."""
    if 1 < value.year < 9999:
        return value
    try:
        value.astimezone(UTC)
        return value
    except OverflowError:
        problems.append(f"{field} {value.isoformat()} is outside years 1 to 9999 in UTC (clamped)")
        return MOMENT_MIN if value.year == 1 else MOMENT_MAX


def optional_moment(value: datetime | None, field: str, problems: list[str]) -> datetime | None:
    return None if value is None else moment(value, field, problems)


def integer(value: int, field: str, problems: list[str]) -> int:
    """``value`` clamped to INTEGER (file index and priority)."""
    if INT_MIN <= value <= INT_MAX:
        return value
    problems.append(f"{field} {value} is beyond INTEGER (clamped)")
    return INT_MAX if value > 0 else INT_MIN
