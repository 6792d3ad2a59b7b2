"""Signing in and out: an emailed single-use link, or the council's OpenID Connect provider."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.commands.base import CommandError, NotAllowed
from bot.commands.signin import (
    SendSignInLink,
    SignedIn,
    redeem_signin_link,
    send_signin_link,
    signed_in,
)
from bot.config import Config
from bot.web.core import Refused, checked_form, cockpit_of, render, run_command
from bot.web.forms import EMAIL

if TYPE_CHECKING:
    from authlib.integrations.starlette_client import OAuth

PROVIDER = "council"


def oidc_client(config: Config) -> OAuth | None:
    """Register the council's OpenID Connect provider, when [web.oidc] names one."""
    oidc = config.settings.web.oidc
    if oidc is None:
        return None
    # authlib is loaded only for a council that signs in with it; its warning about its own
    # httpx support says nothing to the person running rrbot.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(PROVIDER, client_id=oidc.client_id,
                   client_secret=os.environ.get(oidc.client_secret_env, ""),
                   server_metadata_url=f"{oidc.issuer.rstrip('/')}"
                                       "/.well-known/openid-configuration",
                   client_kwargs={"scope": "openid email profile"})
    return oauth


def public_base(request: Request) -> str:
    """Return the address links in emails use: [web] base_url, else the one asked for."""
    configured = cockpit_of(request).config.settings.web.base_url
    return configured or str(request.base_url).rstrip("/")


async def sign_in_page(request: Request) -> Response:
    """Ask for an email address to send a sign-in link to, or offer the council's sign-in."""
    expired = bool(request.session.pop("expired", False))
    values: dict[str, Any] = dict(errors={}, address="", expired=expired,
                                  oidc=request.app.state.oidc is not None)
    if request.method == "POST":
        form = await checked_form(request)
        address = str(form.get("address", "")).strip()
        values["address"] = address
        if not EMAIL.match(address):
            values["errors"] = {"address": "Enter your email address, like name@council.example"}
            return render(request, "signin.html.j2", status=400, **values)
        try:
            await run_command(request, None, lambda context: send_signin_link(
                context, SendSignInLink(address, public_base(request))))
        except NotAllowed as exc:
            raise Refused(403, "You cannot sign in", str(exc)) from None
        except CommandError as exc:
            values["errors"] = {"address": str(exc)}
            return render(request, "signin.html.j2", status=429, **values)
        cockpit_of(request).on_change()
        return render(request, "message.html.j2", title="Check your email",
                      message=f"A sign-in link is on its way to {address}. It works once,"
                              " for 15 minutes.")
    return render(request, "signin.html.j2", **values)


async def sign_in_by_link(request: Request) -> Response:
    """Show the link's button (mail scanners only fetch), then sign in when it is pressed."""
    token = request.path_params["token"]
    if request.method == "GET":
        return render(request, "signin_link.html.j2", token=token)
    await checked_form(request)
    try:
        person = await run_command(request, None,
                                  lambda context: redeem_signin_link(context, token))
    except CommandError as exc:
        raise Refused(403, "This sign-in link cannot be used", str(exc)) from None
    return _start_session(request, person)


async def oidc_start(request: Request) -> Response:
    """Send the person to the council's sign-in page."""
    oauth: OAuth | None = request.app.state.oidc
    if oauth is None:
        raise Refused(404, "Page not found", "This cockpit has no council sign-in.")
    client: Any = oauth.create_client(PROVIDER)
    response: Response = await client.authorize_redirect(
        request, f"{public_base(request)}/sign-in/oidc/callback")
    return response


async def oidc_callback(request: Request) -> Response:
    """Sign in the person the council's provider vouches for, if the config names them."""
    oauth: OAuth | None = request.app.state.oidc
    if oauth is None:
        raise Refused(404, "Page not found", "This cockpit has no council sign-in.")
    client: Any = oauth.create_client(PROVIDER)
    from authlib.integrations.starlette_client import OAuthError

    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        raise Refused(403, "The council's sign-in did not work",
                      f"The sign-in was not completed ({exc.error}). Try again.") from None
    claims = token.get("userinfo") or {}
    address = str(claims.get("email") or claims.get("preferred_username") or "")
    try:
        person = await run_command(request, None,
                                  lambda context: signed_in(context, address, "oidc"))
    except CommandError as exc:
        raise Refused(403, "You cannot sign in", str(exc)) from None
    return _start_session(request, person)


async def sign_out(request: Request) -> Response:
    """End the session."""
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)


def _start_session(request: Request, person: SignedIn) -> Response:
    # A new session (and CSRF token) on sign-in, so a token planted before it is worthless.
    request.session.clear()
    request.session["address"] = person.address
    request.session["seen"] = cockpit_of(request).clock().isoformat()
    return RedirectResponse("/cases", status_code=303)
