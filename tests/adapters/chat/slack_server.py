"""A loopback Slack Web API: a real HTTP server on 127.0.0.1 that answers and records calls."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

TEAM_ID = "T0000000000"
CHANNEL_ID = "C0000000000"
README = Path(__file__).resolve().parents[3] / "README.md"

# The bot-token scope each Web API method needs (Slack's method reference), as the bot uses
# them: on a private channel (groups:*), and direct messages (im:write). Methods not listed
# need none (auth.test, views.open).
REQUIRED_SCOPES = {
    "chat.postMessage": "chat:write", "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write", "conversations.open": "im:write",
    "conversations.history": "groups:history", "conversations.info": "groups:read",
    "users.info": "users:read",
}


def manifest_scopes() -> set[str]:
    """Return the bot scopes the README's Slack app manifest gives the app."""
    found = re.search(r"^\s*bot: \[(.*)\]\s*$", README.read_text(encoding="utf-8"),
                      re.MULTILINE)
    assert found, "README.md has no Slack app manifest with bot scopes"
    return {scope.strip() for scope in found.group(1).split(",")}


@dataclass
class Call:
    """One Web API call the server received."""

    method: str
    arguments: dict[str, Any]
    raw: str


@dataclass
class SlackState:
    """What the fake workspace knows and what it was asked."""

    users: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = field(
        default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ts_counter: int = 0
    # The scopes the app was installed with: a call needing another fails as Slack's does.
    scopes: set[str] = field(default_factory=manifest_scopes)

    def named(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def fail_next(self, method: str, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
        self.failures.setdefault(method, []).append((status, body, headers or {}))


class SlackApiServer:
    """Start with `with SlackApiServer() as server:`; point WebClient at server.base_url."""

    def __init__(self) -> None:
        self.state = SlackState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                parsed = urlparse(self.path)
                method = parsed.path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                arguments: dict[str, Any] = dict(parse_qsl(parsed.query))
                if raw:
                    if "json" in (self.headers.get("Content-Type") or ""):
                        arguments.update(json.loads(raw))
                    else:
                        arguments.update(dict(parse_qsl(raw)))
                with state.lock:
                    state.calls.append(Call(method, arguments, raw + parsed.query))
                    failures = state.failures.get(method)
                    needed = REQUIRED_SCOPES.get(method)
                    if failures:
                        status, body, headers = failures.pop(0)
                    elif needed is not None and needed not in state.scopes:
                        status, headers = 200, {}
                        body = {"ok": False, "error": "missing_scope", "needed": needed,
                                "provided": ",".join(sorted(state.scopes))}
                    else:
                        status, body, headers = 200, answer(state, method, arguments), {}
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def __enter__(self) -> SlackApiServer:
        self.thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(state: SlackState, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Answer as Slack documents each method (only the fields the bot reads, and a few more)."""
    if method == "auth.test":
        return {"ok": True, "url": "https://example.slack.com/", "team": "Example",
                "user": "rrbot", "team_id": TEAM_ID, "user_id": "U0BOT00000",
                "bot_id": "B0BOT00000", "is_enterprise_install": False}
    if method == "chat.postMessage":
        state.ts_counter += 1
        ts = f"1700000000.{state.ts_counter:06d}"
        message = {"type": "message", "ts": ts, "text": arguments.get("text", "")}
        metadata = arguments.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if metadata:
            message["metadata"] = metadata
        if arguments.get("channel") == CHANNEL_ID:
            state.messages.append(message)
        return {"ok": True, "channel": arguments.get("channel"), "ts": ts, "message": message}
    if method == "chat.update":
        return {"ok": True, "channel": arguments.get("channel"), "ts": arguments.get("ts"),
                "text": arguments.get("text", "")}
    if method == "chat.postEphemeral":
        return {"ok": True, "message_ts": "1700000000.999999"}
    if method == "conversations.open":
        return {"ok": True, "channel": {"id": "D" + str(arguments.get("users", ""))[1:]}}
    if method == "conversations.history":
        return {"ok": True, "messages": list(reversed(state.messages)), "has_more": False}
    if method == "conversations.info":
        if arguments.get("channel") != CHANNEL_ID:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": {"id": CHANNEL_ID, "name": "rapid-review",
                                        "is_private": True, "is_member": True}}
    if method == "users.info":
        user = arguments.get("user", "")
        if user not in state.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "team_id": state.users[user],
                                     "deleted": False, "name": user.lower()}}
    if method == "views.open":
        return {"ok": True, "view": {"id": "V0000000001"}}
    return {"ok": False, "error": "unknown_method"}
