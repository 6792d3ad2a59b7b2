"""Message-IDs (ours, keyed; others', checked against RFC 5322) and header text that is safe."""

from __future__ import annotations

import hashlib
import hmac
import re

# RFC 5322 section 2.1.1: no line of a message is longer than 998 characters.
MAX_LINE = 998
# RFC 5322 section 3.2.3 atext, and section 3.6.4's msg-id without the obsolete forms:
# "<" dot-atom-text "@" (dot-atom-text / no-fold-literal) ">". Dots separate the runs, so
# matching takes time linear in the length.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
MSG_ID = re.compile(rf"<{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[!-Z^-~]*\])>")
UNSAFE = ("\r", "\n", "\x00")


class UnsafeHeader(ValueError):
    """A header of a message we were about to send would carry a line break or a NUL."""


def clean_message_id(value: str | None) -> str | None:
    """Return a Message-ID exactly as RFC 5322 allows it, or None for anything else.

    An id that holds an encoded word ("=?") is refused too: the email package decodes one
    even inside angle brackets, and could write its decoded line breaks out (CVE-2024-6923).
    """
    if not value:
        return None
    text = value.strip()
    if len(text) > MAX_LINE or "=?" in text or MSG_ID.fullmatch(text) is None:
        return None
    return text


def safe_text(value: str) -> bool:
    """Say whether text may go into a header: no CR, LF or NUL."""
    return not any(character in value for character in UNSAFE)


def message_id_for(idempotency_key: str, domain: str, secret: bytes | None = None) -> str:
    """Derive the Message-ID of an outbox row from its idempotency key.

    With the installation's secret the id is keyed, <rr.DIGEST TAG@domain> (16 hex digits
    each): TAG is an HMAC of DIGEST, so only the bot, or whoever received the message, can
    quote one. Rows queued before the secret existed keep their unkeyed <rr.DIGEST@domain>
    (32 hex digits of the key's SHA-256). Both are as long, so neither header is ever folded.
    """
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    if secret is None:
        return f"<rr.{digest[:32]}@{domain}>"
    return f"<rr.{digest[:16]}{_tag(secret, digest[:16])}@{domain}>"


def is_keyed(message_id: str, secret: bytes) -> bool:
    """Say whether a Message-ID is one the bot made with this installation's secret."""
    local = message_id.strip().removeprefix("<").partition("@")[0]
    prefix, _dot, hexdigits = local.partition(".")
    return (prefix == "rr" and len(hexdigits) == 32
            and hmac.compare_digest(hexdigits[16:], _tag(secret, hexdigits[:16])))


def _tag(secret: bytes, digest: str) -> str:
    return hmac.new(secret, digest.encode("ascii", "replace"), hashlib.sha256).hexdigest()[:16]
