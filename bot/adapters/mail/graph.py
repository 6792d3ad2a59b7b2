"""Microsoft Graph mailbox adapter for Exchange Online shared mailboxes."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import quote

from bot.adapters.mail.graph_client import GraphApp, GraphClient, graph_error
from bot.adapters.mail.graph_upload import (
    FileToAttach,
    attach_files,
    attached_names,
    message_path,
    split_for_graph,
)
from bot.adapters.mail.polling import poll_until
from bot.kernel.mailbox import CursorStore, FetchedMail, MemoryCursorStore, MessageNotFound
from bot.kernel.outgoing import OutgoingMail, from_message
from bot.settings import MailboxSettings

log = logging.getLogger(__name__)

# Error codes Graph uses when a delta link can no longer be resumed and a full sync is needed.
_SYNC_RESET_CODES = frozenset(
    {"syncstatenotfound", "syncstateinvalid", "resyncrequired", "invaliddeltatoken"}
)

# The message properties the inbox delta asks for: its id and when it arrived in the mailbox.
_DELTA_SELECT = "id,receivedDateTime"


def _odata_string(value: str) -> str:
    """Quote value as an OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _parse_received(value: object) -> datetime | None:
    """Read a message's receivedDateTime (ISO 8601, normally UTC with a Z) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Graph gives every date-time in UTC; one without an offset is UTC too.
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class GraphMailbox:
    """A shared mailbox in Exchange Online, reached through Microsoft Graph with an app secret.

    Design of fetch_new: a delta query on the inbox tells us which messages arrived or left
    since the last call, and the ids delivered but not yet marked processed are kept in the
    cursor store next to the delta link. Every fetch yields the whole pending set, so a
    message is returned again until mark_processed moves it (at-least-once). When Graph says
    the delta link has expired (410 Gone) the link is dropped and a full delta rebuilds the
    pending set from what is actually in the inbox; with immutable ids the server ids are the
    same as before, so the engine de-duplicates them.
    """

    def __init__(
        self,
        client: GraphClient,
        *,
        cursor_store: CursorStore | None = None,
        poll_seconds: float = 60.0,
        page_size: int = 50,
    ) -> None:
        self.name = client.name
        self.mailbox_address = client.mailbox_address
        self.poll_seconds = poll_seconds
        self._graph = client
        self._cursors: CursorStore = cursor_store or MemoryCursorStore()
        self._page_size = page_size
        # The client's lock, so that the pending ids and the token are never changed at once.
        self._lock = self._graph.lock
        self._folder_ids: dict[str, str] = {}
        self._user_path = f"/users/{quote(self.mailbox_address, safe='@')}"
        # Where a full delta of the inbox starts, when there is no delta link to resume from.
        self._inbox_delta_url = (
            f"{self._graph.graph_url}{self._user_path}/mailFolders/inbox/messages/delta"
        )
        self._delta_key = f"graph:{self.name}:delta_link"
        self._pending_key = f"graph:{self.name}:pending_ids"
        # When each pending message arrived in the mailbox, as the inbox delta reported it.
        self._arrivals: dict[str, datetime] = {}

    @classmethod
    def from_settings(
        cls, settings: MailboxSettings, cursor_store: CursorStore, environ: Mapping[str, str]
    ) -> GraphMailbox:
        """Build the mailbox from [mailbox] and its graph table, reading the secret from environ."""
        graph = settings.graph
        if graph is None:
            raise ValueError("the graph backend needs a [mailbox.graph] table")
        app = GraphApp(
            graph.tenant_id, graph.client_id, environ.get(graph.client_secret_env) or "",
            graph.authority_url, graph.graph_url,
        )
        return cls(
            GraphClient(app, settings.address),
            cursor_store=cursor_store,
            poll_seconds=settings.poll_seconds,
        )

    # Pending ids and the inbox delta.

    def _pending(self) -> list[str]:
        """Return the ids fetched from the inbox and not yet marked processed."""
        raw = self._cursors.get(self._pending_key)
        return list(json.loads(raw)) if raw else []

    def _set_pending(self, ids: list[str]) -> None:
        """Persist the pending ids."""
        self._cursors.set(self._pending_key, json.dumps(ids))

    def _sync(self) -> tuple[list[str], int]:
        """Run the inbox delta; return the pending ids and how many of them are new."""
        with self._lock:
            pending = self._pending()
            link = self._cursors.get(self._delta_key) or None
            full = link is None
            url = link or self._inbox_delta_url
            params: dict[str, str] | None = None if link else {"$select": _DELTA_SELECT}
            added: list[str] = []
            removed: set[str] = set()
            while True:
                response = self._graph.request(
                    "GET", url, params=params,
                    extra_headers={
                        "Prefer": f'IdType="ImmutableId", odata.maxpagesize={self._page_size}'
                    },
                )
                code, _ = graph_error(response) if response.status_code >= 400 else ("", "")
                if not full and (
                    response.status_code == 410 or code.lower() in _SYNC_RESET_CODES
                ):
                    log.warning("%s: the inbox delta link expired; resynchronising", self.name)
                    self._cursors.set(self._delta_key, "")
                    full, added, removed = True, [], set()
                    url = self._inbox_delta_url
                    params = {"$select": _DELTA_SELECT}
                    continue
                if response.status_code != 200:
                    raise self._graph.fail(response, "reading the inbox changes")
                body = response.json()
                for entry in body.get("value", []):
                    if "@removed" in entry:
                        removed.add(entry["id"])
                    else:
                        added.append(entry["id"])
                        arrived_at = _parse_received(entry.get("receivedDateTime"))
                        if arrived_at is not None:
                            self._arrivals[entry["id"]] = arrived_at
                if body.get("@odata.nextLink"):
                    url, params = body["@odata.nextLink"], None
                    continue
                delta_link = body.get("@odata.deltaLink")
                break
            before = set(pending)
            base = [] if full else [i for i in pending if i not in removed]
            merged = list(dict.fromkeys(base + [i for i in added if i not in removed]))
            self._set_pending(merged)
            self._arrivals = {i: self._arrivals[i] for i in merged if i in self._arrivals}
            if delta_link:
                self._cursors.set(self._delta_key, delta_link)
            return merged, len(set(merged) - before)

    def _download(self, server_id: str) -> bytes | None:
        """Return the MIME bytes of one message, or None when it has left the mailbox."""
        response = self._graph.request(
            "GET", f"{self._user_path}/messages/{quote(server_id, safe='')}/$value"
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._graph.fail(response, "downloading a message")
        return response.content

    def _arrival(self, server_id: str) -> datetime | None:
        """Return when a message arrived, asking Graph if the delta did not say (an old link)."""
        with self._lock:
            known = self._arrivals.get(server_id)
        if known is not None:
            return known
        response = self._graph.request(
            "GET", f"{self._user_path}/messages/{quote(server_id, safe='')}",
            params={"$select": "receivedDateTime"},
        )
        if response.status_code != 200:
            # A message that left the mailbox since is not an error here; its download says so.
            return None
        arrived_at = _parse_received(response.json().get("receivedDateTime"))
        if arrived_at is not None:
            with self._lock:
                self._arrivals[server_id] = arrived_at
        return arrived_at

    def _fetch(self, server_id: str) -> FetchedMail | None:
        """Return one message with its arrival time, or None when it has left the mailbox."""
        raw = self._download(server_id)
        if raw is None:
            return None
        return FetchedMail(server_id=server_id, raw=raw, arrived_at=self._arrival(server_id))

    # The Mailbox protocol.

    def fetch_new(self) -> Iterator[FetchedMail]:
        """Yield every message in the inbox that has not been marked processed."""
        pending, _ = self._sync()
        if not pending:
            return
        gone: list[str] = []
        with ThreadPoolExecutor(max_workers=self._graph.max_concurrency) as pool:
            for server_id, mail in zip(pending, pool.map(self._fetch, pending), strict=True):
                if mail is None:
                    gone.append(server_id)
                    continue
                yield mail
        if gone:
            with self._lock:
                self._set_pending([i for i in self._pending() if i not in set(gone)])

    def _child_folder(self, parent: str, display_name: str, create: bool) -> str | None:
        """Return the id of a child folder by display name, creating it if asked."""
        path = f"{self._user_path}/mailFolders/{quote(parent, safe='')}/childFolders"
        params = {"$filter": f"displayName eq {_odata_string(display_name)}", "$select": "id"}
        response = self._graph.request("GET", path, params=params)
        if response.status_code != 200:
            raise self._graph.fail(response, f"looking up folder {display_name!r}")
        found = response.json().get("value", [])
        if found:
            return str(found[0]["id"])
        if not create:
            return None
        response = self._graph.request("POST", path, json_body={"displayName": display_name})
        if response.status_code == 409:
            # Another client created the folder between our lookup and our create.
            return self._child_folder(parent, display_name, create=False)
        if response.status_code not in (200, 201):
            raise self._graph.fail(response, f"creating folder {display_name!r}")
        log.info("%s: created mail folder %r", self.name, display_name)
        return str(response.json()["id"])

    def _folder_id(self, folder: str, create: bool = True) -> str | None:
        """Return the id of a folder path under the mailbox root, like "Processed/2025"."""
        if folder in self._folder_ids:
            return self._folder_ids[folder]
        parent: str | None = "msgfolderroot"
        for part in [p for p in folder.split("/") if p]:
            assert parent is not None
            parent = self._child_folder(parent, part, create)
            if parent is None:
                return None
        if parent is not None:
            self._folder_ids[folder] = parent
        return parent

    def mark_processed(self, server_id: str, folder: str) -> None:
        """Move a message out of the inbox into folder, creating the folder if needed."""
        if not self._move(server_id, folder):
            log.warning("%s: message %s had already left the inbox", self.name, server_id)
        with self._lock:
            self._set_pending([i for i in self._pending() if i != server_id])
            self._arrivals.pop(server_id, None)

    def _move(self, server_id: str, folder: str) -> bool:
        """Move a message into folder (made if missing); say False if it was not found."""
        path = f"{self._user_path}/messages/{quote(server_id, safe='')}/move"
        response = self._graph.request(
            "POST", path, json_body={"destinationId": self._folder_id(folder)})
        if response.status_code not in (200, 201, 404):
            raise self._graph.fail(response, f"moving a message to {folder!r}")
        return response.status_code != 404

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        """Move a message the engine filed in source (Quarantine) on to target, by Message-ID."""
        found = self._find_by_path(source, message_id)
        if found is not None and self._move(found, target):
            return
        # One already in target (moved before a crash, say) needs nothing more.
        if self._find_by_path(target, message_id) is None:
            raise MessageNotFound(f"{self.name}: message {message_id or server_id} is in "
                                  f"neither {source} nor {target}")

    def _find_by_path(self, folder: str, message_id: str | None) -> str | None:
        """Return the id of a message in a folder named by its path, if both are there."""
        folder_id = self._folder_id(folder, create=False) if message_id else None
        if not (folder_id and message_id):
            return None
        return self._find_in(quote(folder_id, safe=""), message_id)

    def _find_in(self, folder: str, message_id: str) -> str | None:
        """Return the id of a message with this internetMessageId in a folder (by its id)."""
        response = self._graph.request(
            "GET",
            f"{self._user_path}/mailFolders/{folder}/messages",
            params={
                "$filter": f"internetMessageId eq {_odata_string(message_id)}",
                "$select": "id",
                "$top": "1",
            },
        )
        if response.status_code != 200:
            raise self._graph.fail(response, f"searching {folder}")
        found = response.json().get("value", [])
        return str(found[0]["id"]) if found else None

    def send(self, message: EmailMessage) -> None:
        """Send a message's MIME (see send_raw)."""
        self.send_raw(from_message(message))

    def send_raw(self, mail: OutgoingMail) -> None:
        """Create a draft from the message's MIME, then send it; Graph saves it in Sent Items.

        A message over 3 MB is created without its large files, which are then attached (an
        upload session each), so that no request passes Graph's 4 MB limit. A draft left
        behind by an earlier attempt whose outcome was lost is sent instead of creating a
        second one, once it has every file; one missing a file is deleted and made again.
        """
        message_id = mail.message_id
        raw, files = split_for_graph(mail)
        draft_id = self._find_in("drafts", message_id)
        if draft_id is not None and files and not self._has_files(draft_id, files):
            response = self._graph.request("DELETE", message_path(self._user_path, draft_id))
            if response.status_code not in (200, 204, 404):
                raise self._graph.fail(response, "deleting an incomplete draft")
            draft_id = None
        if draft_id is None:
            response = self._graph.request(
                "POST",
                f"{self._user_path}/messages",
                content=base64.b64encode(raw),
                content_type="text/plain",
            )
            if response.status_code not in (200, 201):
                raise self._graph.fail(response, "creating the draft")
            created = response.json()
            draft_id = str(created["id"])
            stamped = created.get("internetMessageId")
            if stamped and stamped != message_id:
                log.warning("%s: Graph changed the Message-ID of a draft", self.name)
            attach_files(self._graph, message_path(self._user_path, draft_id), files)
        else:
            log.info("%s: sending the draft left by an earlier attempt", self.name)
        response = self._graph.request(
            "POST", f"{self._user_path}/messages/{quote(draft_id, safe='')}/send"
        )
        if response.status_code not in (200, 202, 204):
            raise self._graph.fail(response, "sending the message")

    def _has_files(self, draft_id: str, files: list[FileToAttach]) -> bool:
        attached = attached_names(self._graph, message_path(self._user_path, draft_id))
        return all((found.name, len(found.content)) in attached for found in files)

    def find_sent(self, message_id: str) -> bool:
        """Say whether a message with this Message-ID is in Sent Items."""
        return self._find_in("sentitems", message_id) is not None

    def wait_for_mail(self, timeout: float) -> bool:
        """Poll the inbox delta every poll_seconds until new mail arrives or timeout passes."""
        return poll_until(
            lambda: self._sync()[1] > 0, timeout, self.poll_seconds, self._graph.sleep
        )

    def check(self) -> list[str]:
        """Sign in and describe the folders the bot uses."""
        lines = []
        for folder in ("inbox", "sentitems", "drafts"):
            response = self._graph.request(
                "GET",
                f"{self._user_path}/mailFolders/{folder}",
                params={"$select": "displayName,totalItemCount"},
            )
            if response.status_code != 200:
                raise self._graph.fail(response, f"opening {folder}")
            body = response.json()
            lines.append(
                f"{self.mailbox_address}: {body.get('displayName', folder)} "
                f"({body.get('totalItemCount', '?')} messages)"
            )
        return lines

    def close(self) -> None:
        """Close HTTP connections; the next call opens new ones."""
        self._graph.close()
