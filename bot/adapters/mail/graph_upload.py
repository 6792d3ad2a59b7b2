"""Large messages through Graph: the MIME without its big files, then each file attached.

Graph refuses a request body over 4 MB, so a message whose MIME is over 3 MB (the report to
the National Panel, say) is created as a draft from its MIME without the large attachments,
which keeps every header (Message-ID, Auto-Submitted, the outbox key) and the body; then each
file is attached, through an upload session when it is 3 MB or more, before the draft is sent.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from email.message import Message
from urllib.parse import quote

from bot.adapters.mail.graph_client import GraphClient
from bot.kernel.mailbox import MailboxError
from bot.kernel.outgoing import OutgoingMail

# Above this many bytes of MIME, a message goes in parts (Graph's request limit is 4 MB).
SINGLE_REQUEST_BYTES = 3 * 1024 * 1024
# A file this large or larger goes through an upload session; a smaller one in one request.
UPLOAD_SESSION_BYTES = 3 * 1024 * 1024
# Upload chunks must be multiples of 320 KiB; ten of them stay under the 4 MB limit.
CHUNK_BYTES = 10 * 320 * 1024
# The largest file Graph accepts as an attachment through an upload session.
MAX_ATTACHMENT_BYTES = 150 * 1024 * 1024


@dataclass(frozen=True)
class FileToAttach:
    """A file taken out of a message's MIME, to be attached to its draft."""

    name: str
    content_type: str
    content: bytes


def split_for_graph(mail: OutgoingMail) -> tuple[bytes, list[FileToAttach]]:
    """Return the MIME to create the draft from, and the files to attach to it afterwards."""
    # Only a message too big for one request is taken apart; the rest go as their bytes.
    if len(mail.raw) <= SINGLE_REQUEST_BYTES:
        return mail.raw, []
    message = mail.message()
    crlf = message.policy.clone(linesep="\r\n")
    if not message.is_multipart():
        return mail.raw, []
    remainder = copy.deepcopy(message)
    files: list[FileToAttach] = []
    kept = []
    parts = remainder.get_payload()
    assert isinstance(parts, list)
    for part in parts:
        if isinstance(part, Message) and part.get_content_disposition() == "attachment":
            decoded = part.get_payload(decode=True)
            content = decoded if isinstance(decoded, bytes) else b""
            if len(content) > MAX_ATTACHMENT_BYTES:
                raise MailboxError(f"{part.get_filename()} is {len(content) // 2**20} MB;"
                                   " Microsoft Graph takes files of at most 150 MB")
            files.append(FileToAttach(part.get_filename() or "attachment",
                                      part.get_content_type(), content))
        else:
            kept.append(part)
    remainder.set_payload(kept)
    return remainder.as_bytes(policy=crlf), files


def attach_files(
    graph: GraphClient, message_path: str, files: list[FileToAttach]
) -> None:
    """Attach each file to the draft at message_path: in one request, or an upload session."""
    for found in files:
        if len(found.content) < UPLOAD_SESSION_BYTES:
            response = graph.request("POST", f"{message_path}/attachments", json_body={
                "@odata.type": "#microsoft.graph.fileAttachment", "name": found.name,
                "contentType": found.content_type,
                "contentBytes": base64.b64encode(found.content).decode("ascii"),
            })
            if response.status_code not in (200, 201):
                raise graph.fail(response, f"attaching {found.name}")
            continue
        _upload(graph, message_path, found)


def attached_names(graph: GraphClient, message_path: str) -> list[tuple[str, int]]:
    """Return the name and size of every file already attached to a draft."""
    response = graph.request("GET", f"{message_path}/attachments",
                             params={"$select": "name,size"})
    if response.status_code != 200:
        raise graph.fail(response, "listing the draft's attachments")
    return [(str(item["name"]), int(item["size"])) for item in response.json().get("value", [])]


def message_path(user_path: str, draft_id: str) -> str:
    """Return the Graph path of one message of the mailbox."""
    return f"{user_path}/messages/{quote(draft_id, safe='')}"


def _upload(graph: GraphClient, path: str, found: FileToAttach) -> None:
    response = graph.request("POST", f"{path}/attachments/createUploadSession", json_body={
        "AttachmentItem": {"attachmentType": "file", "name": found.name,
                           "size": len(found.content), "contentType": found.content_type},
    })
    if response.status_code not in (200, 201):
        raise graph.fail(response, f"starting the upload of {found.name}")
    upload_url = str(response.json()["uploadUrl"])
    total = len(found.content)
    for start in range(0, total, CHUNK_BYTES):
        chunk = found.content[start:start + CHUNK_BYTES]
        response = graph.upload(upload_url, chunk, f"bytes {start}-{start + len(chunk) - 1}"
                                                   f"/{total}")
        if response.status_code not in (200, 201):
            raise graph.fail(response, f"uploading {found.name}")
