"""The cockpit's web app: routes, sessions, security headers, and pages for what went wrong."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.kernel.signing import signing_secret
from bot.store.db import transaction
from bot.web import actions, pages, quarantine, signin, votes
from bot.web.core import STATIC, Cockpit, Refused, render

# No script but the cockpit's own files, no inline script or style, no framing, no referrer
# (vote and sign-in links carry tokens in their paths).
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
     b" form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
GET_POST = ["GET", "POST"]


class SecurityHeaders:
    """Add the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def refused(request: Request, exc: Exception) -> Response:
    """Show a refusal as a page; someone not signed in goes to sign in."""
    assert isinstance(exc, Refused)
    if exc.status == 303:
        return RedirectResponse("/sign-in", status_code=303)
    return render(request, "message.html.j2", status=exc.status, title=exc.title,
                  message=exc.message)


async def not_found(request: Request, exc: Exception) -> Response:
    """Show a missing page as a page."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return render(request, "message.html.j2", status=status, title="Page not found",
                  message="There is no such page. Check the address, or go to the cases.")


def build_app(cockpit: Cockpit) -> Starlette:
    """Build the cockpit for a configuration and database."""
    with transaction(cockpit.database) as session:
        secret = signing_secret(session)
    routes = [
        Route("/", pages.home),
        Route("/sign-in", signin.sign_in_page, methods=GET_POST),
        Route("/sign-in/link/{token}", signin.sign_in_by_link, methods=GET_POST),
        Route("/sign-in/oidc", signin.oidc_start),
        Route("/sign-in/oidc/callback", signin.oidc_callback),
        Route("/sign-out", signin.sign_out, methods=["POST"]),
        Route("/cases", pages.board),
        Route("/cases/new/{action}", actions.action_page, methods=GET_POST),
        Route("/cases/{reference}", pages.case_page),
        Route("/cases/{reference}/documents/{document:int}", pages.document),
        Route("/cases/{reference}/export", pages.case_export),
        Route("/cases/{reference}/{action}", actions.action_page, methods=GET_POST),
        Route("/undelivered", pages.undelivered_page),
        Route("/undelivered/{message:int}/{choice:str}", pages.undelivered_action,
              methods=["POST"]),
        Route("/quarantine", quarantine.quarantine_page),
        Route("/quarantine/{message:int}/{choice:str}", quarantine.quarantine_action,
              methods=["POST"]),
        Route("/vote/{token}", votes.vote_page, methods=GET_POST),
        Route("/vote/{token}/report", votes.vote_report),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie="rrbot_session",
                   max_age=None, same_site="lax", https_only=True),
    ]
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={Refused: refused, 404: not_found, 405: not_found})
    app.state.cockpit = cockpit
    app.state.oidc = signin.oidc_client(cockpit.config)
    return app
