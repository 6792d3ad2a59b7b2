"""A case's records in one zip: every message, document, vote, the plan and the audit entries.

The manifest (manifest.json) lists every other file with its SHA-256 and size, so that the
partnership's records, or the answer to a subject access request, can be checked later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bot.cases.documents import safe_filename
from bot.cases.records import case_audit, case_record, inbound_of, outbox_of
from bot.config import Config
from bot.kernel import audit
from bot.store.models import Case
from bot.store.statuses import OutboxChannel

MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    """One file of an export and its checksum."""

    path: str
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class CaseExport:
    """What an export holds: its files, and how many messages in and out."""

    path: Path
    files: tuple[ExportedFile, ...]
    messages_in: int
    messages_out: int
    documents: int
    missing_documents: tuple[str, ...]


def export_case(
    session: Session, config: Config, case: Case, out: Path, now: datetime, actor: str
) -> CaseExport:
    """Write the case's records to a zip at out (replaced if it exists) and audit it."""
    contents: dict[str, bytes] = {}
    inbound, outbox = inbound_of(session, case), outbox_of(session, case)
    for number, received in enumerate(inbound, 1):
        contents[f"messages/in/{number:04d}-{received.id}.eml"] = received.raw
    for number, queued in enumerate(outbox, 1):
        suffix = "eml" if queued.channel == OutboxChannel.MAIL else "json"
        contents[f"messages/out/{number:04d}-{queued.id}-{queued.purpose}.{suffix}"] = (
            queued.payload)
    record = case_record(session, config, case)
    missing = []
    for document in record.documents:
        name = f"documents/{document.sha256[:16]}-{safe_filename(document.filename)}"
        try:
            contents[name] = Path(document.path).read_bytes()
        except OSError:
            # A purged or lost file is listed, not invented: the record keeps its checksum.
            missing.append(document.filename)
    contents["plan.json"] = _json([dataclasses.asdict(step) for step in record.plan])
    contents["votes.json"] = _json([dataclasses.asdict(ballot) for ballot in record.ballots])
    contents["case.json"] = _json(dataclasses.asdict(record))
    contents["audit.json"] = _json([
        {"id": entry.id, "at": entry.at, "actor": entry.actor, "action": entry.action,
         "detail": json.loads(entry.detail), "prev_hash": entry.prev_hash, "hash": entry.hash}
        for entry in case_audit(session, case)])
    files = tuple(ExportedFile(name, hashlib.sha256(body).hexdigest(), len(body))
                  for name, body in contents.items())
    manifest = {"case": case.reference, "partnership": case.partnership, "exported_at": now,
                "messages_in": len(inbound), "messages_out": len(outbox),
                "missing_documents": missing,
                "files": [dataclasses.asdict(file) for file in files]}
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in contents.items():
            archive.writestr(name, body)
        archive.writestr(MANIFEST, _json(manifest))
    temporary.replace(out)
    audit.record(session, case.partnership, actor, "case_exported", now, case.id,
                 files=len(files), manifest_sha256=hashlib.sha256(_json(manifest)).hexdigest())
    return CaseExport(out, files, len(inbound), len(outbox), len(record.documents) - len(missing),
                      tuple(missing))


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, default=_plain, ensure_ascii=False).encode("utf-8")


def _plain(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
