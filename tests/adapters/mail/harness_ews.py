"""Contract-suite harness running EwsMailbox (exchangelib) against the loopback EWS server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.adapters.mail.ews import EwsMailbox
from tests.adapters.mail.loopback_ews import LoopbackEws

NAME = "ews"


class EwsHarness:
    """Puts mail into the loopback EWS mailbox and reads its folders back."""

    def __init__(self, server: LoopbackEws, mailbox: EwsMailbox) -> None:
        self.server = server
        self.mailbox = mailbox

    def deliver(self, raw: bytes) -> None:
        self.server.deliver(raw)

    def sent_message_ids(self) -> list[str]:
        return self.server.message_ids_in("sentitems")

    def folder_message_ids(self, folder: str) -> list[str]:
        return self.server.message_ids_in(folder)

    def inbox_message_ids(self) -> list[str]:
        return self.server.message_ids_in("inbox")


def make_ews_mailbox(server: LoopbackEws, **overrides: Any) -> EwsMailbox:
    """Build an EwsMailbox pointed at the loopback server with Basic authentication."""
    kwargs: dict[str, Any] = {
        "endpoint": server.endpoint,
        "primary_smtp_address": server.mailbox,
        "username": server.username,
        "password": server.password,
        "auth_type": "basic",
        "poll_seconds": 0.05,
    }
    kwargs.update(overrides)
    return EwsMailbox(**kwargs)


def harness(request: Any, tmp_path: Path) -> Iterator[EwsHarness]:
    from exchangelib.protocol import close_connections

    server = LoopbackEws().start()
    mailbox = make_ews_mailbox(server)
    try:
        yield EwsHarness(server, mailbox)
    finally:
        mailbox.close()
        close_connections()
        server.stop()
