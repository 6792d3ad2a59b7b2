"""Contract-suite harness running GraphMailbox against the loopback Graph server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.adapters.mail.graph import GraphMailbox
from bot.kernel.mailbox import MemoryCursorStore
from tests.adapters.mail.loopback_graph import LoopbackGraph

NAME = "graph"


class GraphHarness:
    """Puts mail into the loopback Graph mailbox and reads its folders back."""

    def __init__(self, server: LoopbackGraph, mailbox: GraphMailbox) -> None:
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


def make_graph_mailbox(server: LoopbackGraph, **overrides: Any) -> GraphMailbox:
    """Build a GraphMailbox pointed at the loopback server."""
    state = server.state
    kwargs: dict[str, Any] = {
        "tenant_id": state.tenant_id,
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "mailbox_address": state.mailbox,
        "authority_url": server.base_url,
        "graph_url": server.graph_url,
        "verify": str(server.cert_path),
        "cursor_store": MemoryCursorStore(),
        "poll_seconds": 0.05,
    }
    kwargs.update(overrides)
    return GraphMailbox(**kwargs)


def harness(request: Any, tmp_path: Path) -> Iterator[GraphHarness]:
    server = LoopbackGraph(tmp_path).start()
    mailbox = make_graph_mailbox(server)
    try:
        yield GraphHarness(server, mailbox)
    finally:
        mailbox.close()
        server.stop()
