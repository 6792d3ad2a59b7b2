"""Signing in to the cockpit with the council's OpenID Connect provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.store.models import AuditEntry
from tests.web.conftest import MANAGER, REFERENCE, accessible, rows, start_cockpit
from tests.web.oidc_provider import Provider

pytestmark = pytest.mark.slow


def test_signing_in_with_the_council_account(tmp_path: Path, browser: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a council provider that vouches for the business manager,
    provider = Provider(MANAGER, "cockpit-test")
    monkeypatch.setenv("TEST_OIDC_SECRET", "client-secret")
    cockpit = start_cockpit(tmp_path, browser, oidc={
        "issuer": provider.issuer, "client_id": "cockpit-test",
        "client_secret_env": "TEST_OIDC_SECRET"})
    try:
        page = cockpit.page()
        page.goto(f"{cockpit.url}/sign-in")
        accessible(page)
        # when she signs in with her council account,
        page.click("text=Sign in with your council account")
        # then she is back on the board, signed in, and the audit says how.
        assert page.url.endswith("/cases")
        assert REFERENCE in page.locator("main").inner_text()
        signed_in = rows(cockpit, AuditEntry, AuditEntry.action == "signed_in")
        assert [entry.detail for entry in signed_in] == ['{"how": "oidc"}']
        # And someone the provider knows but the partnership does not is refused.
        provider.email = "stranger@exampleshire.example"
        stranger = cockpit.page()
        stranger.goto(f"{cockpit.url}/sign-in")
        stranger.click("text=Sign in with your council account")
        assert "only for the partnership's business manager" in stranger.locator(
            "main").inner_text()
    finally:
        cockpit.service.stop()
        provider.stop()
