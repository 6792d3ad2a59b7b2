"""The Slack harness's fixtures (tests/adapters/chat/slack_harness.py) for the tests here."""

from tests.adapters.chat.slack_harness import (  # noqa: F401 - fixtures pytest finds by name
    harness,
    no_child_identity_in_chat,
    slack,
    unanimous,
)
