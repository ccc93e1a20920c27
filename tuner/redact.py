"""Masking secrets before text is printed or logged: the password of every URL
(``postgresql://user:secret@host/db`` becomes ``postgresql://user:***@host/db``).

Works on text, not parsed URLs, so it also masks URLs that do not parse (a bad port) and
URLs inside longer messages."""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://authority: the authority runs to the first '/', '?', '#', whitespace or quote.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^/?#\s'\"]*)")


def _mask_match(match: re.Match[str]) -> str:
    authority = match.group("authority")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return match.group(0)
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return match.group(0)
    return f"{match.group('scheme')}{user}:{MASK}@{hostport}"


def mask_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` replaced by
    ``***``; text without such URLs is returned unchanged."""
    if "://" not in text:
        return text
    return _URL.sub(_mask_match, text)


class MaskingFormatter(logging.Formatter):
    """A log formatter whose output (message, arguments and traceback) has URL passwords
    masked; the CLI and the servers install it on their handlers."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls(super().format(record))


def mask_log_handlers(logger: logging.Logger | None = None) -> None:
    """Give every handler of ``logger`` (default: the root logger) a ``MaskingFormatter``
    that keeps the handler's format."""
    for handler in (logger or logging.getLogger()).handlers:
        current = handler.formatter
        fmt = current._fmt if current is not None else None  # noqa: SLF001
        datefmt = current.datefmt if current is not None else None
        handler.setFormatter(MaskingFormatter(fmt, datefmt))
