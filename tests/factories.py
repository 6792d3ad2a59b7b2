"""The one way the tests build a configuration: config.example.toml with a test's changes.

Every test configuration starts from the example the README documents, so a test changes only
what it is about. The few things tests vary have keywords of their own; any other change is a
TOML section given as a keyword (``mailbox={...}``, ``partners={...}``), merged deeply into the
example: a table merges key by key, anything else (a list, a string) replaces. Wrap a value in
``exactly(...)`` to replace a whole table instead of merging into it.

- ``config_document(...)``: the parsed document, for tests that change it further by hand;
- ``build_config(tmp_path, ...)``: the validated ``Config``;
- ``write_config(folder, ...)``: the same document as a TOML file, for the CLI and `rrbot run`;
- ``read_config(path)``: the ``Config`` of a written file, as a test's own process builds it;
- ``config_of(document)``: the ``Config`` of a document a test has changed by hand.

``tests/conftest.py`` offers ``make_config`` and ``make_config_file`` fixtures bound to the
test's tmp_path; helpers that run without a fixture (forked children, harnesses) call these
functions directly.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.config import Config, config_from_document

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
# The example's own database, a SQLite file in var/ beside the config file (the embedded
# default): pass database_url=EMBEDDED_DATABASE to keep it when a tmp_path is given.
EMBEDDED_DATABASE = "sqlite:///var/rrbot.sqlite3"


@dataclass(frozen=True)
class exactly:  # noqa: N801 - reads as a marker inside a section: exactly({...})
    """A section value that replaces the example's table as a whole instead of merging."""

    value: Any


def example_document() -> dict[str, Any]:
    """Return config.example.toml, parsed afresh."""
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge changes into base, in place: tables key by key, other values (lists) replaced.

    exactly() markers are kept, so that changes can be merged into changes; config_document
    removes them when it merges into the example.
    """
    for key, value in changes.items():
        if isinstance(value, exactly):
            base[key] = value
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        elif isinstance(value, Mapping):
            base[key] = merge({}, value)
        else:
            base[key] = value
    return base


def _plain(value: Any) -> Any:
    """Unwrap exactly() markers nested in a value that is set as a whole."""
    if isinstance(value, exactly):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def dotted(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys ({"mailbox.unauthenticated": "accept"}) into nested sections."""
    nested: dict[str, Any] = {}
    for key, value in changes.items():
        *path, last = key.split(".")
        table = nested
        for part in path:
            table = table.setdefault(part, {})
        table[last] = value
    return nested


def config_document(
    tmp_path: Path | None = None,
    *,
    preset: str | None = None,
    database_url: str | None = None,
    closure_dates: list[date] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """Return the example document with a test's changes.

    tmp_path: the test's folder; the database then defaults to a SQLite file in it.
    preset: follow this preset as published (the example's [process] table is replaced, so
        its quorum lines go too); to keep the example's [process] and change only its preset,
        pass process={"preset": NAME}.
    database_url: the [database] url (default: tmp_path/rrbot.sqlite3, else the example's).
    closure_dates: the partnership's closure dates (default: the example's, 29-31 Dec 2026).
    sections: any other TOML section, merged deeply (see the module's docstring).
    """
    document = example_document()
    if preset is not None:
        document["process"] = {"preset": preset}
    if database_url is not None:
        document["database"]["url"] = database_url
    elif tmp_path is not None:
        document["database"]["url"] = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    if closure_dates is not None:
        document["partnership"]["closure_dates"] = list(closure_dates)
    plain: dict[str, Any] = _plain(merge(document, sections))
    return plain


def build_config(
    tmp_path: Path | None = None,
    *,
    label: str = "config",
    source: Path | None = None,
    **changes: Any,
) -> Config:
    """Return the validated example configuration with a test's changes (see config_document).

    The config's source, against which relative paths (the embedded database, documents,
    Maildir) are read, is tmp_path/config.toml when a tmp_path is given.
    """
    if source is None and tmp_path is not None:
        source = tmp_path / "config.toml"
    return config_from_document(config_document(tmp_path, **changes), label, source=source)


def write_config(
    folder: Path,
    *,
    name: str = "config.toml",
    document: Mapping[str, Any] | None = None,
    **changes: Any,
) -> Path:
    """Write the example configuration with a test's changes (or a given document) as TOML."""
    if document is None:
        document = config_document(folder, **changes)
    else:
        assert not changes, "give either a document or changes, not both"
    text = dumps(document)
    assert tomllib.loads(text) == document, "the TOML written does not read back the same"
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read_config(path: Path) -> Config:
    """Build the Config of a written file, with the file as its source."""
    return config_of(tomllib.loads(path.read_text(encoding="utf-8")), source=path)


def config_of(
    document: Mapping[str, Any], *, label: str = "config", source: Path | None = None
) -> Config:
    """Validate a document from config_document that a test has changed further by hand."""
    return config_from_document(document, label, source=source)


# A minimal TOML writer: the example's own shapes (tables, arrays of tables, scalars, dates).

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(document: Mapping[str, Any]) -> str:
    """Return document as TOML text; tables become [sections], other dicts inline tables."""
    lines: list[str] = []
    _table(lines, [], document)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], table: Mapping[str, Any]) -> None:
    subtables = {key: value for key, value in table.items() if isinstance(value, Mapping)}
    if path:
        lines.append("")
        lines.append("[" + ".".join(_key(part) for part in path) + "]")
    for key, value in table.items():
        if key not in subtables:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in subtables.items():
        _table(lines, [*path, key], value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")
