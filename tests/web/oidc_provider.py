"""A loopback OpenID Connect provider: discovery, JWKS, /authorize and /token, RS256 tokens."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey


class Provider:
    """The provider, vouching for whichever address `email` holds when a code is redeemed."""

    def __init__(self, email: str, client_id: str) -> None:
        self.email, self.client_id = email, client_id
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.codes: dict[str, str] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider.get(self)

            def do_POST(self) -> None:
                provider.post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        if url.path == "/.well-known/openid-configuration":
            self.reply(request, {
                "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]})
        elif url.path == "/jwks":
            self.reply(request, {"keys": [self.key.as_dict(private=False)]})
        elif url.path == "/authorize":
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            assert query["client_id"] == self.client_id
            code = secrets.token_urlsafe(8)
            self.codes[code] = query.get("nonce", "")
            request.send_response(302)
            request.send_header("Location", query["redirect_uri"] + "?" + urlencode(
                {"code": code, "state": query["state"]}))
            request.end_headers()
        else:
            request.send_error(404)

    def post(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        form = {key: values[0] for key, values in
                parse_qs(request.rfile.read(length).decode()).items()}
        nonce = self.codes.pop(form.get("code", ""), None)
        if nonce is None:
            self.reply(request, {"error": "invalid_grant"}, 400)
            return
        # The provider's own clock dates its tokens, as Microsoft Entra ID's does.
        issued = int(time.time())
        claims = {"iss": self.issuer, "sub": "user-1", "aud": self.client_id, "iat": issued,
                  "exp": issued + 300, "nonce": nonce, "email": self.email}
        token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        self.reply(request, {"access_token": "access", "token_type": "Bearer",
                             "expires_in": 300, "id_token": token})

    def reply(self, request: BaseHTTPRequestHandler, body: dict[str, Any],
              status: int = 200) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def stop(self) -> None:
        self.server.shutdown()
