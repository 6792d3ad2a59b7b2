"""The digest links to the cockpit's pages when [web] base_url is set, and only then."""

from __future__ import annotations

from pathlib import Path

from tests.digest.test_digest import digest_email
from tests.factories import build_config

COCKPIT = "https://rapidreview.exampleshire.example"


def test_the_digest_links_its_quarantine_section_to_the_cockpit(tmp_path: Path) -> None:
    # Given a partnership whose cockpit has a public address, and two messages in quarantine,
    config = build_config(database_url=f"sqlite:///{tmp_path / 'rrbot.sqlite3'}",
                          closure_dates=[], preset="oldham", web={"base_url": COCKPIT})
    # when the digest is built,
    _subject, text, html = digest_email(tmp_path, config)
    # then its quarantine section, in both parts, says where to release or discard them.
    assert f"to release or discard at {COCKPIT}/quarantine:" in text
    assert f'<a href="{COCKPIT}/quarantine">Release or discard them in the cockpit</a>' in html


def test_without_a_public_address_the_digest_has_no_quarantine_link(tmp_path: Path) -> None:
    # Given no [web] base_url,
    config = build_config(database_url=f"sqlite:///{tmp_path / 'rrbot.sqlite3'}",
                          closure_dates=[], preset="oldham")
    # when the digest is built, it names no page to click.
    _subject, text, html = digest_email(tmp_path, config)
    assert "/quarantine" not in text and "/quarantine" not in html


