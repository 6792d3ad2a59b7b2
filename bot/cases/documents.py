"""Keeping files that arrive by email: content-addressed on disk, one Document row each."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from bot.config import Config
from bot.mail.mime import FoundAttachment
from bot.store.models import Case, Document


def documents_folder(config: Config) -> Path:
    """Return the folder documents are kept in (relative paths from the config file's folder)."""
    folder = Path(config.settings.intake.documents_folder)
    if folder.is_absolute():
        return folder
    base = config.source.resolve().parent if config.source else Path.cwd()
    return base / folder


def safe_filename(filename: str) -> str:
    """Keep a filename's last part, with only letters, digits, dots, dashes and underscores."""
    name = re.split(r"[\\/]", filename)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "attachment"
    return name[-120:]


def store_document(
    session: Session, config: Config, case: Case, attachment: FoundAttachment, kind: str,
    now: datetime,
) -> Document:
    """Write a file under the case's folder and record it; the same file twice is one row."""
    digest = hashlib.sha256(attachment.content).hexdigest()
    existing = session.exec(select(Document).where(
        Document.case_id == case.id, Document.sha256 == digest)).first()
    if existing is not None:
        return existing
    folder = documents_folder(config) / case.partnership / case.reference
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest[:16]}-{safe_filename(attachment.filename)}"
    if not path.exists():
        # A temporary file renamed into place means a crash never leaves half a document.
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        with os.fdopen(handle, "wb") as file:
            file.write(attachment.content)
        os.replace(temporary, path)
    document = Document(
        partnership=case.partnership, case_id=case.id or 0, kind=kind,
        filename=attachment.filename[:300], sha256=digest, size=len(attachment.content),
        path=str(path), stored_at=now,
    )
    session.add(document)
    session.flush()
    return document
