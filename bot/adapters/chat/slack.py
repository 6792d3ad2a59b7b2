"""The Slack chat backend: ballots as Block Kit messages, votes through modals, slash commands.

Block Kit is built here in Python rather than in templates/chat/*.json.j2: the blocks are
nested structures with loops over the options, and building them as data means no text can
break the JSON (a rationale or a label is never spliced into a JSON template).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Config
from bot.kernel.chat import (
    BallotView,
    ChatError,
    ChatInteractions,
    ChatUser,
    RationalePrompt,
    TransientChatError,
    ballot_text,
)
from bot.settings import SlackSettings

log = logging.getLogger(__name__)

VOTE_ACTION_PREFIX = "vote:"
RATIONALE_CALLBACK = "ballot_rationale"
METADATA_EVENT = "rrbot_ballot"
Clock = Callable[[], datetime]


def _real_clock() -> datetime:
    # The adapter is the edge of the bot: the only place that reads the real clock.
    return datetime.now(UTC)


class SlackChat:
    """A ChatChannel that posts to one private Slack channel through the Web API."""

    name = "slack"

    def __init__(self, client: WebClient, channel_id: str, team_id: str) -> None:
        self.client = client
        self.channel_id = channel_id
        self.team_id = team_id

    @classmethod
    def from_settings(cls, settings: SlackSettings, environ: Mapping[str, str]) -> SlackChat:
        """Build the channel from the config and the bot token in the environment."""
        client = WebClient(token=environ.get(settings.bot_token_env) or None)
        return cls(client, settings.channel_id, settings.team_id)

    def post_ballot(self, view: BallotView, key: str) -> str:
        """Post the ballot message; the outbox key rides along as message metadata."""
        response = self._call(
            self.client.chat_postMessage, channel=self.channel_id, text=ballot_text(view),
            blocks=ballot_blocks(view),
            metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_key": key}},
        )
        return str(response["ts"])

    def update_ballot(self, reference: str, view: BallotView) -> None:
        """Replace the ballot message in place."""
        self._call(self.client.chat_update, channel=self.channel_id, ts=reference,
                   text=ballot_text(view), blocks=ballot_blocks(view))

    def find_posted(self, key: str) -> str | None:
        """Look through the channel's recent history for a ballot posted under key."""
        response = self._call(self.client.conversations_history, channel=self.channel_id, limit=200,
                              include_all_metadata=True)
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (metadata.get("event_type") == METADATA_EVENT
                    and (metadata.get("event_payload") or {}).get("outbox_key") == key):
                return str(message["ts"])
        return None

    def post_ephemeral(self, user_id: str, text: str) -> None:
        """Show text to one user in the channel."""
        self._call(self.client.chat_postEphemeral, channel=self.channel_id, user=user_id, text=text)

    def send_direct(self, user_id: str, text: str) -> None:
        """Open (or find) the direct conversation with a user and post to it."""
        opened = self._call(self.client.conversations_open, users=user_id)
        self._call(self.client.chat_postMessage, channel=opened["channel"]["id"], text=text)

    def post_notice(self, text: str) -> None:
        """Post a plain notice to the channel."""
        self._call(self.client.chat_postMessage, channel=self.channel_id, text=text)

    def check(self) -> list[str]:
        """Check the token and the channel; raise ChatError naming what is wrong."""
        identity = self._call(self.client.auth_test)
        lines = [f"token OK: bot user {identity.get('user_id')} in workspace"
                 f" {identity.get('team_id')}"]
        if identity.get("team_id") != self.team_id:
            raise ChatError(f"the token belongs to workspace {identity.get('team_id')}, not the"
                            f" configured {self.team_id}")
        channel = self._call(self.client.conversations_info, channel=self.channel_id)["channel"]
        private = "private" if channel.get("is_private") else "public"
        lines.append(f"channel {self.channel_id} OK ({private})")
        return lines

    def check_users(self, user_ids: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Look up each user id (labelled for people); return lines found and problems."""
        found, problems = [], []
        for user_id, label in user_ids.items():
            try:
                user = self._call(self.client.users_info, user=user_id)["user"]
            except ChatError as exc:
                problems.append(f"{label}: Slack user {user_id}: {exc}")
                continue
            if user.get("deleted"):
                problems.append(f"{label}: Slack user {user_id} is deactivated")
            elif user.get("team_id") and user["team_id"] != self.team_id:
                problems.append(f"{label}: Slack user {user_id} is in workspace"
                                f" {user['team_id']}, not {self.team_id}")
            else:
                found.append(f"{label}: Slack user {user_id} OK")
        return found, problems

    def _call(self, method: Callable[..., Any], **arguments: Any) -> Any:
        name = getattr(method, "__name__", "call")
        try:
            return method(**arguments).validate()
        except SlackApiError as exc:
            status = exc.response.status_code
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            message = f"{name}: {error or f'HTTP {status}'}"
            if status == 429 or status >= 500:
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                    "retry-after")
                raise TransientChatError(message, float(retry) if retry else None) from None
            raise ChatError(message) from None
        except OSError as exc:
            raise TransientChatError(f"{name}: {exc}") from None


def ballot_blocks(view: BallotView) -> list[dict[str, Any]]:
    """Build a ballot's Block Kit: the question, the progress, and a button per choice."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(view.title)},
        {"type": "section", "text": _plain(view.question)},
        {"type": "context", "elements": [_plain(view.progress)]},
    ]
    if view.open:
        blocks.append({
            "type": "actions", "block_id": f"ballot:{view.ballot_id}",
            "elements": [
                {"type": "button", "action_id": f"{VOTE_ACTION_PREFIX}{option.value}",
                 "text": _plain(option.label), "value": f"{view.ballot_id}:{option.value}",
                 **({"style": "primary"} if option.value == "approve" else {})}
                for option in view.options
            ],
        })
    else:
        blocks.append({"type": "section", "text": _plain(f"Outcome: {view.outcome}")})
    return blocks


def rationale_modal(prompt: RationalePrompt) -> dict[str, Any]:
    """Build the modal that asks for the rationale of a choice."""
    hint = "Required." if prompt.needs_rationale else "Optional."
    return {
        "type": "modal", "callback_id": RATIONALE_CALLBACK,
        "private_metadata": json.dumps({"ballot_id": prompt.ballot_id, "choice": prompt.choice}),
        "title": _plain("Your vote"), "submit": _plain("Submit vote"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": _plain(f"{prompt.case_reference}: {prompt.label}")},
            {"type": "input", "block_id": "rationale", "optional": not prompt.needs_rationale,
             "label": _plain("Rationale"), "hint": _plain(
                 f"{hint} Do not name the child or family: the case reference is enough."),
             "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                         "max_length": 3000}},
        ],
    }


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:3000], "emoji": False}


def build_app(
    config: Config,
    interactions: ChatInteractions,
    client: WebClient,
    signing_secret: str,
    *,
    clock: Clock = _real_clock,
    on_change: Callable[[], None] | None = None,
) -> App:
    """Build the bolt app: vote buttons, the rationale modal and /rapidreview."""
    settings = config.settings.chat.slack
    if settings is None:
        raise ValueError("chat.slack is not configured")
    app = App(client=client, signing_secret=signing_secret, token_verification_enabled=False,
              process_before_response=True)
    team_id = settings.team_id

    def changed() -> None:
        if on_change is not None:
            try:
                on_change()
            except Exception:  # noqa: BLE001 - the outbox sends it on the next step anyway.
                log.exception("sending chat messages after a change failed")

    @app.middleware
    def refuse_replays(req: BoltRequest, resp: BoltResponse, next: Callable[[], Any]) -> Any:
        # A signed request within the five-minute window could be sent again by someone who
        # captured it; its signature is remembered so the copy is refused.
        signature = _header(req, "x-slack-signature")
        if req.mode == "socket_mode" or not signature:
            return next()
        timestamp = _header(req, "x-slack-request-timestamp") or ""
        key = "slack-request:" + hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
        if interactions.seen_before(key, clock()):
            return BoltResponse(status=401, body="replayed request")
        return next()

    @app.action({"action_id": _vote_action_pattern()})
    def on_vote_click(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        action = body["actions"][0]
        user = _user(team_id, body)
        ballot_id_text, _, choice = str(action.get("value", "")).partition(":")
        ballot_id = _ballot_number(ballot_id_text)
        stamp = action.get("action_ts", "")
        delivery = f"slack-action:{user.user_id}:{stamp}:{action['action_id']}"
        reply = interactions.vote_clicked(user, ballot_id, choice, delivery, clock())
        if reply.prompt is not None:
            client.views_open(trigger_id=body["trigger_id"], view=rationale_modal(reply.prompt))
        if reply.changed:
            changed()

    @app.view(RATIONALE_CALLBACK)
    def on_rationale(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            metadata = {}
        if not isinstance(metadata, dict):
            metadata = {}
        rationale = (((view.get("state") or {}).get("values") or {}).get("rationale") or {}) \
            .get("text", {}).get("value") or ""
        reply = interactions.rationale_given(
            _user(team_id, body), _ballot_number(str(metadata.get("ballot_id", ""))),
            str(metadata.get("choice", "")), rationale, f"slack-view:{view['id']}", clock())
        if reply.error:
            ack(response_action="errors", errors={"rationale": reply.error})
            return
        ack()
        if reply.changed:
            changed()

    @app.command("/rapidreview")
    def on_command(ack: Ack, body: dict[str, Any]) -> None:
        user_id = body.get("user_id", "")
        if body.get("team_id") != team_id:
            ack(text="Sorry, this command only works in the partnership's own workspace.")
            return
        user = ChatUser(user_id, team_id, in_workspace=True)
        ack(text=interactions.slash_command(user, body.get("text", ""), clock()))
        changed()

    return app


def _vote_action_pattern() -> Any:
    import re

    return re.compile(f"^{re.escape(VOTE_ACTION_PREFIX)}[a-z_]+$")


def _ballot_number(text: str) -> int | None:
    """Read a ballot id from a button or form; anything not a stored row's id is None."""
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    # Row ids are positive 64-bit integers; a larger number is no ballot (and no database's).
    return number if 0 < number < 2**63 else None


def _header(req: BoltRequest, name: str) -> str | None:
    values = req.headers.get(name) or []
    return values[0] if values else None


def _team(body: dict[str, Any]) -> str | None:
    team = body.get("team") or {}
    return team.get("id") or (body.get("user") or {}).get("team_id")


def _user(team_id: str, body: dict[str, Any]) -> ChatUser:
    """Say who acted, and whether they act from the partnership's own workspace."""
    user = body.get("user") or {}
    teams = {value for value in (_team(body), user.get("team_id")) if value}
    return ChatUser(user.get("id", ""), _team(body),
                    in_workspace=bool(teams) and teams == {team_id})


def serve(
    config: Config, interactions: ChatInteractions, environ: Mapping[str, str], port: int = 3000,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Listen for Slack: Socket Mode by default, or HTTP on port with signed requests."""
    settings = config.settings.chat.slack
    assert settings is not None
    client = WebClient(token=environ.get(settings.bot_token_env) or None)
    app = build_app(config, interactions, client, environ.get(settings.signing_secret_env, ""),
                    on_change=on_change)
    interactions.listening(settings.mode, _real_clock())
    if settings.mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(app, environ.get(settings.app_token_env)).start()
    else:
        app.start(port=port)
