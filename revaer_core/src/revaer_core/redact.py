"""Keep secrets out of logs and output: DSN passwords are replaced before anything prints."""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)")
# libpq keyword form: password=secret or password='se cret'
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every DSN password masked; text without one comes back unchanged.

    Neither form can match without an ``@`` or an ``=``: text with neither (most
    of what the API sends, every torrent name and path) skips both patterns.
    """
    if "@" not in text and "=" not in text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks DSN passwords in every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
