"""A loopback HTTP server answering the EWS SOAP operations exchangelib sends for a mailbox."""

from __future__ import annotations

import base64
import itertools
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"

DISTINGUISHED = {
    "root": ("Root", None),
    "msgfolderroot": ("Top of Information Store", "root"),
    "inbox": ("Inbox", "msgfolderroot"),
    "sentitems": ("Sent Items", "msgfolderroot"),
    "drafts": ("Drafts", "msgfolderroot"),
    "deleteditems": ("Deleted Items", "msgfolderroot"),
}


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str | None
    change_key: str = field(default_factory=lambda: secrets.token_hex(6))


@dataclass
class Item:
    id: str
    folder_id: str
    mime: bytes
    message_id: str
    change_key: str = field(default_factory=lambda: secrets.token_hex(6))
    # When the item arrived in the mailbox, as Exchange reports it in DateTimeReceived.
    received: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Fault:
    """A scripted failure for the next `count` requests of `operation` (any when None)."""

    count: int
    operation: str | None = None
    kind: str = "busy"  # "busy" (ErrorServerBusy fault) or "drop" (act, then drop the reply)
    back_off_ms: int = 2000


def _message_id(raw: bytes) -> str:
    value = BytesHeaderParser(policy=default_policy).parsebytes(raw).get("Message-ID")
    return str(value).strip() if value else ""


class LoopbackEws:
    """A stateful stand-in for /EWS/Exchange.asmx with Basic authentication."""

    def __init__(
        self,
        *,
        username: str = "CORP\\rrbot",
        password: str = "s3cret",
        mailbox: str = "lscp@council.example.gov.uk",
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.mailbox = mailbox
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self.operations: list[str] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1)
        for well_known, (name, parent) in DISTINGUISHED.items():
            self.folders[self.fid(well_known)] = Folder(
                self.fid(well_known), name, self.fid(parent) if parent else None
            )
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.ews = self  # type: ignore[attr-defined]
        self.server = server
        scheme = "http"
        # With a (certificate, key) pair the server speaks HTTPS, as a council's Exchange does.
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        self.endpoint = f"{scheme}://127.0.0.1:{server.server_address[1]}/EWS/Exchange.asmx"
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> LoopbackEws:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # State helpers.

    @staticmethod
    def fid(well_known: str) -> str:
        return base64.b64encode(f"folder:{well_known}".encode()).decode()

    def new_id(self, kind: str) -> str:
        text = f"{kind}:{next(self._ids)}:{secrets.token_hex(4)}"
        return base64.b64encode(text.encode()).decode()

    def folder_named(self, name: str) -> Folder | None:
        key = name.lower().replace(" ", "")
        if key == "sent":
            key = "sentitems"
        with self.lock:
            if self.fid(key) in self.folders:
                return self.folders[self.fid(key)]
            for folder in self.folders.values():
                if folder.name == name:
                    return folder
        return None

    def deliver(self, raw: bytes, received: datetime | None = None) -> str:
        with self.lock:
            item = Item(self.new_id("item"), self.fid("inbox"), raw, _message_id(raw))
            if received is not None:
                item.received = received
            self.items[item.id] = item
            return item.id

    def message_ids_in(self, name: str) -> list[str]:
        folder = self.folder_named(name)
        if folder is None:
            return []
        with self.lock:
            return [i.message_id for i in self.items.values() if i.folder_id == folder.id]

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, operation: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.operation in (None, operation):
                    fault.count -= 1
                    return fault
        return None


# XML building.


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}"><s:Header>'
        f'<h:ServerVersionInfo xmlns:h="{T}" MajorVersion="15" MinorVersion="1" '
        'MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/>'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _response(operation: str, messages: list[str]) -> bytes:
    return _envelope(
        f'<m:{operation}Response xmlns:m="{M}" xmlns:t="{T}"><m:ResponseMessages>'
        + "".join(messages)
        + f"</m:ResponseMessages></m:{operation}Response>"
    )


def _ok(operation: str, inner: str) -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Success">'
        f"<m:ResponseCode>NoError</m:ResponseCode>{inner}</m:{operation}ResponseMessage>"
    )


def _error(operation: str, code: str, text: str, inner: str = "") -> str:
    return (
        f'<m:{operation}ResponseMessage ResponseClass="Error">'
        f"<m:MessageText>{escape(text)}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode>"
        f"<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{inner}</m:{operation}ResponseMessage>"
    )


def _busy_fault(back_off_ms: int) -> bytes:
    text = "The server cannot service this request right now. Try again later."
    return _envelope(
        f'<s:Fault><faultcode xmlns:a="{T}">a:ErrorServerBusy</faultcode>'
        f'<faultstring xml:lang="en-US">{text}</faultstring><detail>'
        f'<e:ResponseCode xmlns:e="{E}">ErrorServerBusy</e:ResponseCode>'
        f'<e:Message xmlns:e="{E}">{text}</e:Message>'
        f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value>'
        "</t:MessageXml></detail></s:Fault>"
    )


def _folder_xml(ews: LoopbackEws, folder: Folder) -> str:
    total = sum(1 for i in ews.items.values() if i.folder_id == folder.id)
    children = sum(1 for f in ews.folders.values() if f.parent_id == folder.id)
    parent = (
        f'<t:ParentFolderId Id="{folder.parent_id}" ChangeKey="AQAAAA=="/>'
        if folder.parent_id else ""
    )
    return (
        f'<t:Folder><t:FolderId Id="{folder.id}" ChangeKey="{folder.change_key}"/>{parent}'
        f"<t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>{escape(folder.name)}"
        f"</t:DisplayName><t:TotalCount>{total}</t:TotalCount>"
        f"<t:ChildFolderCount>{children}</t:ChildFolderCount><t:UnreadCount>0</t:UnreadCount>"
        "</t:Folder>"
    )


def _item_xml(item: Item, with_mime: bool) -> str:
    mime = (
        f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(item.mime).decode()}'
        "</t:MimeContent>" if with_mime else ""
    )
    return (
        f'<t:Message>{mime}<t:ItemId Id="{item.id}" ChangeKey="{item.change_key}"/>'
        f"<t:DateTimeReceived>{item.received.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        "</t:DateTimeReceived>"
        f"<t:InternetMessageId>{escape(item.message_id)}</t:InternetMessageId></t:Message>"
    )


# Request handling.


def _resolve_folder(ews: LoopbackEws, elem: Any) -> Folder | None:
    if etree.QName(elem).localname == "DistinguishedFolderId":
        return ews.folders.get(ews.fid(elem.get("Id")))
    return ews.folders.get(elem.get("Id"))


def _folder_refs(container: Any) -> list[Any]:
    return [] if container is None else list(container)


def _restriction_value(request: Any, field_uri: str) -> str | None:
    """Return the constant of an IsEqualTo restriction on field_uri, if there is one."""
    for equal in request.iter(f"{{{T}}}IsEqualTo"):
        uri = equal.find(f"{{{T}}}FieldURI")
        constant = equal.find(f".//{{{T}}}Constant")
        if uri is not None and uri.get("FieldURI") == field_uri and constant is not None:
            return str(constant.get("Value"))
    return None


def _paged(request: Any, entries: list[str], container: str) -> str:
    view = request.find(f"{{{M}}}IndexedPageItemView")
    if view is None:
        view = request.find(f"{{{M}}}IndexedPageFolderView")
    offset = int(view.get("Offset", "0")) if view is not None else 0
    limit = int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000
    page = entries[offset:offset + limit]
    last = offset + len(page) >= len(entries)
    return (
        f'<m:RootFolder IndexedPagingOffset="{offset + len(page)}" '
        f'TotalItemsInView="{len(entries)}" IncludesLastItemInRange="{str(last).lower()}">'
        f"<t:{container}>{''.join(page)}</t:{container}></m:RootFolder>"
    )


def handle(ews: LoopbackEws, operation: str, request: Any) -> bytes | None:
    """Apply one EWS operation to the state and return the SOAP response."""
    if operation == "GetFolder":
        messages = []
        for ref in _folder_refs(request.find(f"{{{M}}}FolderIds")):
            folder = _resolve_folder(ews, ref)
            if folder is None:
                messages.append(_error(operation, "ErrorFolderNotFound",
                                       "The specified folder could not be found in the store.",
                                       "<m:Folders/>"))
            else:
                folders = f"<m:Folders>{_folder_xml(ews, folder)}</m:Folders>"
                messages.append(_ok(operation, folders))
        return _response(operation, messages)
    if operation == "FindFolder":
        messages = []
        wanted = _restriction_value(request, "folder:DisplayName")
        for ref in _folder_refs(request.find(f"{{{M}}}ParentFolderIds")):
            parent = _resolve_folder(ews, ref)
            if parent is None:
                messages.append(_error(operation, "ErrorFolderNotFound", "Folder not found."))
                continue
            children = [
                _folder_xml(ews, f) for f in ews.folders.values()
                if f.parent_id == parent.id and wanted in (None, f.name)
            ]
            messages.append(_ok(operation, _paged(request, children, "Folders")))
        return _response(operation, messages)
    if operation == "CreateFolder":
        parent_ref = request.find(f"{{{M}}}ParentFolderId")
        parent = _resolve_folder(ews, parent_ref[0]) if parent_ref is not None else None
        messages = []
        for spec in _folder_refs(request.find(f"{{{M}}}Folders")):
            name = spec.findtext(f"{{{T}}}DisplayName") or ""
            if parent is None:
                messages.append(_error(operation, "ErrorParentFolderNotFound", "No parent."))
                continue
            if any(f.parent_id == parent.id and f.name == name for f in ews.folders.values()):
                messages.append(_error(operation, "ErrorFolderExists",
                                       "A folder with the specified name already exists."))
                continue
            folder = Folder(ews.new_id("folder"), name, parent.id)
            ews.folders[folder.id] = folder
            messages.append(_ok(operation, f'<m:Folders><t:Folder><t:FolderId Id="{folder.id}" '
                                           f'ChangeKey="{folder.change_key}"/></t:Folder>'
                                           "</m:Folders>"))
        return _response(operation, messages)
    if operation == "FindItem":
        messages = []
        wanted = _restriction_value(request, "message:InternetMessageId")
        for ref in _folder_refs(request.find(f"{{{M}}}ParentFolderIds")):
            folder = _resolve_folder(ews, ref)
            if folder is None:
                messages.append(_error(operation, "ErrorFolderNotFound", "Folder not found."))
                continue
            entries = [
                _item_xml(i, with_mime=False) for i in ews.items.values()
                if i.folder_id == folder.id and wanted in (None, i.message_id)
            ]
            messages.append(_ok(operation, _paged(request, entries, "Items")))
        return _response(operation, messages)
    if operation == "GetItem":
        with_mime = any(
            uri.get("FieldURI") == "item:MimeContent"
            for uri in request.iter(f"{{{T}}}FieldURI")
        )
        messages = []
        for ref in _folder_refs(request.find(f"{{{M}}}ItemIds")):
            item = ews.items.get(ref.get("Id"))
            if item is None:
                messages.append(_error(operation, "ErrorItemNotFound",
                                       "The specified object was not found in the store.",
                                       "<m:Items/>"))
            else:
                messages.append(_ok(operation, f"<m:Items>{_item_xml(item, with_mime)}</m:Items>"))
        return _response(operation, messages)
    if operation == "MoveItem":
        target_ref = request.find(f"{{{M}}}ToFolderId")
        target = _resolve_folder(ews, target_ref[0]) if target_ref is not None else None
        messages = []
        for ref in _folder_refs(request.find(f"{{{M}}}ItemIds")):
            item = ews.items.get(ref.get("Id"))
            if item is None or target is None:
                messages.append(_error(operation, "ErrorItemNotFound",
                                       "The specified object was not found in the store.",
                                       "<m:Items/>"))
                continue
            # A move gives the item a new id, as Exchange does.
            del ews.items[item.id]
            item.id, item.folder_id = ews.new_id("item"), target.id
            ews.items[item.id] = item
            messages.append(_ok(operation, f'<m:Items><t:Message><t:ItemId Id="{item.id}" '
                                           f'ChangeKey="{item.change_key}"/></t:Message>'
                                           "</m:Items>"))
        return _response(operation, messages)
    if operation == "CreateItem":
        disposition = request.get("MessageDisposition")
        saved = request.find(f"{{{M}}}SavedItemFolderId")
        folder = _resolve_folder(ews, saved[0]) if saved is not None else None
        messages = []
        for spec in _folder_refs(request.find(f"{{{M}}}Items")):
            mime_text = spec.findtext(f"{{{T}}}MimeContent")
            if not mime_text:
                messages.append(_error(operation, "ErrorInvalidRequest", "MIME content needed."))
                continue
            raw = base64.b64decode(mime_text)
            if disposition == "SendAndSaveCopy":
                folder = folder or ews.folders[ews.fid("sentitems")]
            elif folder is None:
                folder = ews.folders[ews.fid("drafts")]
            item = Item(ews.new_id("item"), folder.id, raw, _message_id(raw))
            if disposition != "SendOnly":
                ews.items[item.id] = item
            messages.append(_ok(operation, "<m:Items/>"))
        return _response(operation, messages)
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        ews: LoopbackEws = self.server.ews  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        expected = "Basic " + base64.b64encode(
            f"{ews.username}:{ews.password}".encode()
        ).decode()
        if self.headers.get("Authorization") != expected:
            self._reply(401, b"", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
            return
        envelope = etree.fromstring(body)
        request = envelope.find(f"{{{SOAP}}}Body")[0]
        operation = etree.QName(request).localname
        with ews.lock:
            ews.operations.append(operation)
        fault = ews.take_fault(operation)
        if fault is not None and fault.kind == "busy":
            self._reply(500, _busy_fault(fault.back_off_ms))
            return
        with ews.lock:
            response = handle(ews, operation, request)
        if response is None:
            self._reply(500, _envelope(
                f"<s:Fault><faultcode>s:Client</faultcode><faultstring>"
                f"Unsupported operation {escape(operation)}</faultstring></s:Fault>"
            ))
            return
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._reply(200, response)


__all__ = ["Fault", "LoopbackEws"]
