"""A loopback HTTPS server speaking Entra ID's token endpoint and Microsoft Graph's mail JSON."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import itertools
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

GRAPH_PREFIX = "/v1.0"
# Where upload sessions take their chunks (Graph gives an opaque URL of its own).
UPLOAD_PREFIX = "/upload/"
# The largest request body Graph accepts.
REQUEST_LIMIT = 4 * 1024 * 1024
WELL_KNOWN = {
    "msgfolderroot": "Top of Information Store",
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
}


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return both paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "loopback-cert.pem"
    key_path = directory / "loopback-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str | None


@dataclass
class Message:
    id: str
    folder_id: str
    mime: bytes
    internet_message_id: str
    is_draft: bool = False
    # Files attached after the draft was created: (name, content type, content).
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    # When the message arrived in the mailbox, as Graph reports it in receivedDateTime.
    received: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )


@dataclass
class Fault:
    """A scripted failure: the next `count` requests whose path contains `match` get it."""

    match: str
    count: int
    status: int = 429
    retry_after: str | None = "1"
    drop_after_action: bool = False
    method: str | None = None


@dataclass
class GraphState:
    tenant_id: str
    client_id: str
    client_secret: str
    mailbox: str
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    # Inbox membership changes: (sequence number, message id).
    inbox_log: list[tuple[int, str]] = field(default_factory=list)
    seq: int = 0
    generation: int = 1
    tokens: set[str] = field(default_factory=set)
    skip_pages: dict[str, tuple[list[dict[str, Any]], int, str]] = field(default_factory=dict)
    # Open upload sessions by id: the message, the file's name, type and size, bytes so far.
    uploads: dict[str, tuple[str, str, str, int, bytearray]] = field(default_factory=dict)


class LoopbackGraph:
    """A stateful stand-in for login.microsoftonline.com and graph.microsoft.com."""

    def __init__(
        self,
        tls_dir: Path,
        *,
        tenant_id: str = "contoso-tenant",
        client_id: str = "rrbot-app",
        client_secret: str = "s3cret",
        mailbox: str = "lscp@example.gov.uk",
        immutable_ids: bool = True,
    ) -> None:
        self.cert_path, key_path = make_tls_files(tls_dir)
        self.state = GraphState(tenant_id, client_id, client_secret, mailbox)
        self.immutable_ids = immutable_ids
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(1)
        for well_known, display in WELL_KNOWN.items():
            parent = None if well_known == "msgfolderroot" else self._folder_key("msgfolderroot")
            self.state.folders[self._folder_key(well_known)] = Folder(
                self._folder_key(well_known), display, parent
            )
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.graph = self  # type: ignore[attr-defined]
        self.server = server
        self.port = server.server_address[1]
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.graph_url = self.base_url + GRAPH_PREFIX
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)

    # Lifecycle.

    def start(self) -> LoopbackGraph:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # Helpers for tests and harnesses.

    @staticmethod
    def _folder_key(well_known: str) -> str:
        return f"folder-{well_known}"

    def new_id(self, prefix: str = "AAMk") -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(4)}"

    def folder_by_name(self, name: str) -> Folder | None:
        with self.lock:
            key = name.lower().replace(" ", "")
            if key in ("sent", "sentitems"):
                key = "sentitems"
            if key in WELL_KNOWN:
                return self.state.folders[self._folder_key(key)]
            for folder in self.state.folders.values():
                if folder.display_name == name:
                    return folder
        return None

    def _log_inbox_change(self, message_id: str) -> None:
        self.state.seq += 1
        self.state.inbox_log.append((self.state.seq, message_id))

    def deliver(self, raw: bytes, received: datetime.datetime | None = None) -> str:
        with self.lock:
            message = Message(
                self.new_id(), self._folder_key("inbox"), raw, _message_id(raw) or ""
            )
            if received is not None:
                message.received = received
            self.state.messages[message.id] = message
            self._log_inbox_change(message.id)
            return message.id

    def message_ids_in(self, folder_name: str) -> list[str]:
        folder = self.folder_by_name(folder_name)
        if folder is None:
            return []
        with self.lock:
            return [
                m.internet_message_id
                for m in self.state.messages.values()
                if m.folder_id == folder.id
            ]

    def expire_delta_links(self) -> None:
        with self.lock:
            self.state.generation += 1

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method not in (None, method):
                    continue
                if fault.match in path and fault.count > 0:
                    fault.count -= 1
                    return fault
        return None

    # Mail operations.

    def move(self, message: Message, folder_id: str) -> Message:
        with self.lock:
            inbox = self._folder_key("inbox")
            was_in_inbox = message.folder_id == inbox
            if not self.immutable_ids:
                del self.state.messages[message.id]
                old_id = message.id
                message.id = self.new_id()
                self.state.messages[message.id] = message
                if was_in_inbox:
                    self._log_inbox_change(old_id)
            message.folder_id = folder_id
            if was_in_inbox or folder_id == inbox:
                self._log_inbox_change(message.id)
            return message

    def delta_changes(self, since: int | None) -> list[dict[str, Any]]:
        with self.lock:
            inbox = self._folder_key("inbox")
            if since is None:
                ids = [m.id for m in self.state.messages.values() if m.folder_id == inbox]
            else:
                ids = list(dict.fromkeys(i for s, i in self.state.inbox_log if s > since))
            out: list[dict[str, Any]] = []
            for message_id in ids:
                message = self.state.messages.get(message_id)
                if message is not None and message.folder_id == inbox:
                    out.append({"@odata.type": "#microsoft.graph.message", "id": message_id,
                                "receivedDateTime": _graph_instant(message.received)})
                elif since is not None:
                    out.append({"id": message_id, "@removed": {"reason": "deleted"}})
            return out


def _graph_instant(when: datetime.datetime) -> str:
    """Write an instant as Graph does: UTC, whole seconds, with a Z."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message_id(raw: bytes) -> str | None:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    value = headers.get("Message-ID")
    return str(value).strip() if value else None


def _odata_eq(filter_text: str) -> tuple[str, str] | None:
    """Parse "field eq 'value'" from a $filter expression."""
    name, _, rest = filter_text.partition(" eq ")
    rest = rest.strip()
    if not rest.startswith("'") or not rest.endswith("'"):
        return None
    return name.strip(), rest[1:-1].replace("''", "'")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def graph(self) -> LoopbackGraph:
        return self.server.graph  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # Plumbing.

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = b""
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, headers)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(2)

    def _dispatch(self, method: str) -> None:
        graph = self.graph
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with graph.lock:
            graph.requests.append((method, path))
            graph.in_flight += 1
            graph.max_in_flight = max(graph.max_in_flight, graph.in_flight)
        try:
            if graph.delay:
                # Holding each request open is what lets a test see how many overlap.
                time.sleep(graph.delay)  # real-time ok: a bounded server-side latency
            if path.startswith(UPLOAD_PREFIX):
                self._upload(method, path[len(UPLOAD_PREFIX):], body)
            elif path.startswith(GRAPH_PREFIX + "/"):
                self._graph(method, path[len(GRAPH_PREFIX):], query, body)
            else:
                self._login(method, path, body)
        finally:
            with graph.lock:
                graph.in_flight -= 1

    # Entra ID.

    def _login(self, method: str, path: str, body: bytes) -> None:
        state = self.graph.state
        tenant = state.tenant_id
        if method == "GET" and path == f"/{tenant}/v2.0/.well-known/openid-configuration":
            base = f"{self.graph.base_url}/{tenant}"
            self._send(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{self.graph.base_url}/{tenant}/v2.0",
            })
            return
        if method == "GET" and path.endswith("/.well-known/openid-configuration"):
            self._send(400, {"error": "invalid_tenant",
                             "error_description": "AADSTS90002: Tenant not found."})
            return
        if method == "POST" and path == f"/{tenant}/oauth2/v2.0/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("client_id") != state.client_id or (
                form.get("client_secret") != state.client_secret
            ):
                self._send(401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.\r\n"
                                         "Trace ID: 0000",
                    "error_codes": [7000215],
                })
                return
            token = secrets.token_urlsafe(24)
            with self.graph.lock:
                state.tokens.add(token)
            self._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                             "access_token": token})
            return
        self._send(404, {"error": "not_found"})

    # Graph.

    def _graph(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        graph = self.graph
        state = graph.state
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in state.tokens:
            self._error(401, "InvalidAuthenticationToken", "Access token validation failure.")
            return
        # Graph refuses any request body over 4 MB (upload sessions take larger files).
        if len(body) > REQUEST_LIMIT:
            self._error(413, "RequestEntityTooLarge", "The request body is too large.")
            return
        fault = graph.take_fault(method, path)
        if fault is not None and not fault.drop_after_action:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._error(fault.status, "TooManyRequests" if fault.status == 429 else
                        "ServiceUnavailable", "Application is over its MailboxConcurrency limit.",
                        headers)
            return
        prefix = f"/users/{state.mailbox}"
        if not path.lower().startswith(prefix.lower()):
            self._error(404, "ErrorInvalidUser", "The requested user is invalid.")
            return
        rest = path[len(prefix):].split("/")[1:]
        respond = self._respond_or_drop(fault)
        with graph.lock:
            self._route(method, rest, query, body, respond)

    def _respond_or_drop(self, fault: Fault | None) -> Any:
        def respond(status: int, payload: Any = None, headers: dict[str, str] | None = None,
                    content_type: str = "application/json") -> None:
            if fault is not None and fault.drop_after_action:
                self._drop()
            else:
                self._send(status, payload, headers, content_type)
        return respond

    def _folder(self, ref: str) -> Folder | None:
        state = self.graph.state
        if ref.lower() in WELL_KNOWN:
            return state.folders[self.graph._folder_key(ref.lower())]
        return state.folders.get(ref)

    def _folder_json(self, folder: Folder) -> dict[str, Any]:
        count = sum(1 for m in self.graph.state.messages.values() if m.folder_id == folder.id)
        return {"id": folder.id, "displayName": folder.display_name,
                "parentFolderId": folder.parent_id, "totalItemCount": count}

    def _message_json(self, message: Message) -> dict[str, Any]:
        return {"id": message.id, "internetMessageId": message.internet_message_id,
                "isDraft": message.is_draft, "parentFolderId": message.folder_id,
                "receivedDateTime": _graph_instant(message.received)}

    def _route(self, method: str, rest: list[str], query: dict[str, str], body: bytes,
               respond: Any) -> None:
        graph = self.graph
        state = graph.state
        not_found = ("ErrorItemNotFound",
                     "The specified object was not found in the store.")
        if rest[:1] == ["mailFolders"] and len(rest) >= 2:
            folder = self._folder(rest[1])
            if folder is None:
                respond(404, {"error": {"code": "ErrorInvalidIdMalformed",
                                        "message": "Id is malformed."}})
                return
            if len(rest) == 2 and method == "GET":
                respond(200, self._folder_json(folder))
                return
            if rest[2:] == ["childFolders"]:
                children = [f for f in state.folders.values() if f.parent_id == folder.id]
                if method == "GET":
                    wanted = _odata_eq(query.get("$filter", ""))
                    if wanted is not None:
                        children = [f for f in children if f.display_name == wanted[1]]
                    respond(200, {"value": [self._folder_json(f) for f in children]})
                    return
                name = json.loads(body)["displayName"]
                if any(f.display_name == name for f in children):
                    respond(409, {"error": {"code": "ErrorFolderExists",
                                            "message": "A folder with the specified name "
                                                       "already exists."}})
                    return
                created = Folder(graph.new_id("AAMkF"), name, folder.id)
                state.folders[created.id] = created
                respond(201, self._folder_json(created))
                return
            if rest[2:] == ["messages", "delta"] and method == "GET":
                self._delta(folder, query, respond)
                return
            if rest[2:] == ["messages"] and method == "GET":
                found = [m for m in state.messages.values() if m.folder_id == folder.id]
                wanted = _odata_eq(query.get("$filter", ""))
                if wanted is not None and wanted[0] == "internetMessageId":
                    found = [m for m in found if m.internet_message_id == wanted[1]]
                top = int(query.get("$top", "10"))
                respond(200, {"value": [self._message_json(m) for m in found[:top]]})
                return
        if rest == ["messages"] and method == "POST":
            if not self.headers.get("Content-Type", "").startswith("text/plain"):
                respond(400, {"error": {"code": "UnableToDeserializePostBody",
                                        "message": "were unable to deserialize"}})
                return
            mime = base64.b64decode(body)
            message = Message(graph.new_id(), graph._folder_key("drafts"), mime,
                              _message_id(mime) or f"<{secrets.token_hex(8)}@loopback>",
                              is_draft=True)
            state.messages[message.id] = message
            respond(201, self._message_json(message))
            return
        if rest[:1] == ["messages"] and len(rest) == 2 and method == "GET":
            found = state.messages.get(rest[1])
            if found is None:
                respond(404, {"error": {"code": not_found[0], "message": not_found[1]}})
                return
            respond(200, self._message_json(found))
            return
        if rest[:1] == ["messages"] and len(rest) == 2 and method == "DELETE":
            deleted = state.messages.pop(rest[1], None)
            respond(204 if deleted else 404)
            return
        if rest[:1] == ["messages"] and rest[2:3] == ["attachments"]:
            message = state.messages.get(rest[1])
            if message is None or not message.is_draft:
                respond(404, {"error": {"code": not_found[0], "message": not_found[1]}})
                return
            self._attachments(message, method, rest[3:], body, respond)
            return
        if rest[:1] == ["messages"] and len(rest) == 3:
            message = state.messages.get(rest[1])
            if message is None:
                respond(404, {"error": {"code": not_found[0], "message": not_found[1]}})
                return
            if rest[2] == "$value" and method == "GET":
                respond(200, message.mime, None, "text/plain")
                return
            if rest[2] == "move" and method == "POST":
                target = self._folder(json.loads(body).get("destinationId", ""))
                if target is None:
                    respond(400, {"error": {"code": "ErrorInvalidIdMalformed",
                                            "message": "Id is malformed."}})
                    return
                moved = graph.move(message, target.id)
                respond(201, self._message_json(moved))
                return
            if rest[2] == "send" and method == "POST":
                if not message.is_draft:
                    respond(400, {"error": {"code": "ErrorInvalidOperation",
                                            "message": "Only drafts can be sent."}})
                    return
                message.is_draft = False
                graph.move(message, graph._folder_key("sentitems"))
                respond(202)
                return
        respond(400, {"error": {"code": "BadRequest",
                                "message": f"Unsupported {method} {'/'.join(rest)}"}})

    def _attachments(self, message: Message, method: str, rest: list[str], body: bytes,
                     respond: Any) -> None:
        graph = self.graph
        if not rest and method == "GET":
            respond(200, {"value": [{"name": name, "size": len(content)}
                                    for name, _kind, content in message.attachments]})
        elif not rest and method == "POST":
            item = json.loads(body)
            message.attachments.append((item["name"], item["contentType"],
                                        base64.b64decode(item["contentBytes"])))
            respond(201, {"id": graph.new_id("AAMkA"), "name": item["name"]})
        elif rest == ["createUploadSession"] and method == "POST":
            item = json.loads(body)["AttachmentItem"]
            session = secrets.token_hex(8)
            graph.state.uploads[session] = (message.id, item["name"], item["contentType"],
                                            int(item["size"]), bytearray())
            respond(201, {"uploadUrl": f"{graph.base_url}{UPLOAD_PREFIX}{session}",
                          "nextExpectedRanges": ["0-"]})
        else:
            respond(400, {"error": {"code": "BadRequest", "message": "unsupported"}})

    def _upload(self, method: str, session: str, body: bytes) -> None:
        """Take one chunk of an upload session, as Graph's attachment upload URL does."""
        graph = self.graph
        if self.headers.get("Authorization"):
            self._error(401, "InvalidAuthenticationToken",
                        "The Authorization header is not allowed on an upload URL.")
            return
        with graph.lock:
            found = graph.state.uploads.get(session)
            if method != "PUT" or found is None:
                self._error(404, "ItemNotFound", "The upload session was not found.")
                return
            message_id, name, kind, size, received = found
            span, _, total = self.headers.get("Content-Range", "").removeprefix(
                "bytes ").partition("/")
            first, _, last = span.partition("-")
            whole = int(last) + 1 == size
            if (int(first) != len(received) or int(total) != size
                    or int(last) - int(first) + 1 != len(body)
                    or (not whole and len(body) % (320 * 1024))):
                self._error(416, "InvalidRange", "The Content-Range is not the next one.")
                return
            received += body
            if not whole:
                self._send(200, {"nextExpectedRanges": [f"{len(received)}-"]})
                return
            del graph.state.uploads[session]
            graph.state.messages[message_id].attachments.append((name, kind, bytes(received)))
        self._send(201, {"name": name, "size": size})

    def _delta(self, folder: Folder, query: dict[str, str], respond: Any) -> None:
        graph = self.graph
        state = graph.state
        if folder.id != graph._folder_key("inbox"):
            respond(400, {"error": {"code": "BadRequest", "message": "inbox only here"}})
            return
        link_base = f"{graph.graph_url}/users/{state.mailbox}/mailFolders/inbox/messages/delta"
        page_size = 10
        for part in self.headers.get("Prefer", "").split(","):
            if part.strip().startswith("odata.maxpagesize="):
                page_size = int(part.strip().split("=", 1)[1])
        if "$skiptoken" in query:
            entry = state.skip_pages.pop(query["$skiptoken"], None)
            if entry is None:
                respond(410, {"error": {"code": "SyncStateNotFound",
                                        "message": "The sync state could not be found."}})
                return
            changes, offset, final_token = entry
        else:
            since: int | None = None
            if "$deltatoken" in query:
                generation, _, seq = query["$deltatoken"].partition(".")
                if int(generation) != state.generation:
                    respond(410, {"error": {
                        "code": "SyncStateNotFound",
                        "message": "The sync state generation is not found. The delta token is "
                                   "expired and data must be synchronized again."}})
                    return
                since = int(seq)
            changes, offset = graph.delta_changes(since), 0
            final_token = f"{state.generation}.{state.seq}"
        page = changes[offset:offset + page_size]
        payload: dict[str, Any] = {
            "@odata.context": f"{graph.graph_url}/$metadata#Collection(message)",
            "value": page,
        }
        if offset + page_size < len(changes):
            skip = secrets.token_hex(8)
            state.skip_pages[skip] = (changes, offset + page_size, final_token)
            payload["@odata.nextLink"] = f"{link_base}?$skiptoken={skip}"
        else:
            payload["@odata.deltaLink"] = f"{link_base}?$deltatoken={final_token}"
        respond(200, payload)
