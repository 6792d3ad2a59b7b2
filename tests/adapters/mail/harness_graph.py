"""Contract-suite harness running GraphMailbox against the loopback Graph server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.adapters.mail.graph import GraphMailbox
from bot.adapters.mail.graph_client import GraphApp, GraphClient
from bot.kernel.mailbox import CursorStore, MemoryCursorStore
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


def make_graph_mailbox(
    server: LoopbackGraph,
    *,
    tenant_id: str | None = None,
    client_secret: str | None = None,
    max_concurrency: int = 4,
    sleep: Callable[[float], None] = time.sleep,
    cursor_store: CursorStore | None = None,
    poll_seconds: float = 0.05,
    page_size: int = 50,
) -> GraphMailbox:
    """Build a GraphMailbox pointed at the loopback server, its app and mailbox by default."""
    state = server.state
    app = GraphApp(
        state.tenant_id if tenant_id is None else tenant_id,
        state.client_id,
        state.client_secret if client_secret is None else client_secret,
        authority_url=server.base_url,
        graph_url=server.graph_url,
    )
    client = GraphClient(
        app,
        state.mailbox,
        max_concurrency=max_concurrency,
        verify=str(server.cert_path),
        sleep=sleep,
    )
    return GraphMailbox(
        client,
        cursor_store=MemoryCursorStore() if cursor_store is None else cursor_store,
        poll_seconds=poll_seconds,
        page_size=page_size,
    )


def harness(request: Any, tmp_path: Path) -> Iterator[GraphHarness]:
    server = LoopbackGraph(tmp_path).start()
    mailbox = make_graph_mailbox(server)
    try:
        yield GraphHarness(server, mailbox)
    finally:
        mailbox.close()
        server.stop()
