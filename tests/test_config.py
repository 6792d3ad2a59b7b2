"""Configuration: the example loads, presets override by one number, broken files say why."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.config import Config, ConfigError, config_from_document, load_config, missing_secrets
from bot.kernel.mailbox import MemoryCursorStore
from bot.process.preset import load_preset, preset_names
from bot.service.wiring import database_url, open_mailbox
from bot.store.db import make_engine
from tests.factories import EXAMPLE, ROOT, build_config, config_document


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_document(document, "cfg.toml")
    return caught.value.problems


def test_the_example_config_loads_and_needs_no_secret() -> None:
    config = load_config(EXAMPLE)
    assert config.preset.name == "oldham"
    assert config.settings.mailbox.backend == "maildir"
    assert missing_secrets(config.settings, environ={}) == []
    assert config.warnings == ()


def test_every_key_in_the_example_has_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#") and not stripped.startswith("["):
            above = lines[number - 1].strip()
            assert above.startswith("#"), f"line {number + 1} has no comment: {stripped}"


def test_all_five_presets_ship_and_carry_the_common_milestones() -> None:
    assert preset_names() == ["bolton", "bradford", "doncaster", "oldham", "warrington"]
    common = {
        "acknowledge", "partner_decision", "notify_national_panel", "decision_feedback",
        "agency_requests", "agency_returns_due", "collation", "rr_meeting", "draft_report",
        "partner_signoff", "submit_national_panel",
    }
    for name in preset_names():
        keys = {milestone.key for milestone in load_preset(name).milestones}
        assert common <= keys, name


def test_quorum_rules_follow_the_documents() -> None:
    assert load_preset("oldham").quorum.signoff == 2
    assert load_preset("warrington").quorum.decision == "all"
    assert load_preset("warrington").agency_requests.meeting_invite is True


def test_changing_one_number_of_a_preset() -> None:
    # Given the example config with Oldham's returns moved from Day 7 to Day 8,
    document = config_document()
    document["process"]["milestones"] = [{"key": "agency_returns_due", "day": 8}]
    config = config_from_document(document)
    # then that milestone moves and its label and every other milestone stay.
    returns = config.preset.milestone("agency_returns_due")
    assert returns.day == 8
    assert returns.label == load_preset("oldham").milestone("agency_returns_due").label
    assert len(config.preset.milestones) == len(load_preset("oldham").milestones)


def test_replacing_an_offset_drops_the_old_one() -> None:
    # Given Oldham's Day-based returns changed to "five working days after the requests",
    document = config_document()
    document["process"]["milestones"] = [
        {"key": "agency_returns_due", "after": "agency_requests", "working_days": 5}
    ]
    returns = config_from_document(document).preset.milestone("agency_returns_due")
    assert (returns.day, returns.after, returns.working_days) == (None, "agency_requests", 5)


def test_a_whole_preset_copied_into_the_config_works_without_naming_one() -> None:
    preset_file = ROOT / "bot" / "process" / "presets" / "warrington.toml"
    document = config_document()
    document["process"] = tomllib.loads(preset_file.read_text(encoding="utf-8"))
    assert config_from_document(document).preset.name == "warrington"


def test_bradford_day_20_is_a_warning_not_an_error() -> None:
    document = config_document()
    document["process"] = {"preset": "bradford"}
    config = config_from_document(document, "cfg.toml")
    assert config.warnings == (
        "cfg.toml: process.milestones[submit_national_panel]: submits on Day 20, later than"
        " the 15 working days the National Panel expects",
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # An unknown key.
        (lambda d: d["partnership"].update(colour="blue"),
         "cfg.toml: partnership.colour: unknown key"),
        # A wrong type.
        (lambda d: d["mailbox"].update(poll_seconds="60"),
         "cfg.toml: mailbox.poll_seconds: Input should be a valid integer (got '60')"),
        # A value out of range.
        (lambda d: d["mailbox"].update(poll_seconds=1),
         "cfg.toml: mailbox.poll_seconds: Input should be greater than or equal to 5"),
        # A missing table.
        (lambda d: d.pop("business_manager"), "cfg.toml: business_manager: required key is"
         " missing"),
        # A malformed address deep in a list.
        (lambda d: d["agencies"][1]["contacts"][0].update(email="robin at hospital"),
         "cfg.toml: agencies[1].contacts[0].email: String should match pattern"),
        # A backend chosen without its settings.
        (lambda d: (d["mailbox"].update(backend="graph"), d["mailbox"].pop("graph")),
         "cfg.toml: mailbox: backend 'graph' needs a [mailbox.graph] table"),
        # An unknown preset.
        (lambda d: d["process"].update(preset="york"),
         "cfg.toml: process.preset: no preset named 'york'"),
        # An impossible offset: a negative day.
        (lambda d: d["process"].update(milestones=[{"key": "rr_meeting", "day": -2}]),
         "cfg.toml: process.milestones[rr_meeting].day: Input should be greater than or equal"
         " to 0"),
        # An impossible offset: two offsets at once.
        (lambda d: d["process"].update(milestones=[{"key": "collation", "day": 9}]) or
         d["process"]["milestones"][0].update(hours=4),
         "cfg.toml: process.milestones[collation]: milestone 'collation' needs exactly one of"),
        # An impossible offset: counted from a milestone that does not exist.
        (lambda d: d["process"].update(milestones=[
            {"key": "collation", "after": "tea_break", "working_days": 1}]),
         "is after 'tea_break', which does not exist"),
        # An impossible offset: a circle.
        (lambda d: d["process"].update(milestones=[
            {"key": "agency_requests", "after": "agency_returns_due", "working_days": 1},
            {"key": "agency_returns_due", "after": "agency_requests", "working_days": 5}]),
         "milestones depend on each other in a circle"),
        # An impossible offset: signing off after the report has gone.
        (lambda d: d["process"].update(milestones=[{"key": "partner_signoff", "day": 16}]),
         "cfg.toml: process.milestones[partner_signoff]: falls after submit_national_panel"),
        # A cut-off hour that is not a time.
        (lambda d: d["process"].update(milestones=[{"key": "partner_signoff", "day": 14,
                                                    "at": "4pm"}]),
         "cfg.toml: process.milestones[partner_signoff].at: '4pm' is not a time of day"),
        # A quorum of four.
        (lambda d: d["process"]["quorum"].update(signoff=4),
         "cfg.toml: process.quorum.signoff: a quorum is 1, 2 or 3 partner organisations"),
        # EWS with OAuth, which only Exchange Online (reached through Graph) uses.
        (lambda d: d["mailbox"]["ews"].update(auth_type="OAuth 2.0"),
         "cfg.toml: mailbox.ews.auth_type: OAuth 2.0 is for Exchange Online"),
    ],
)
def test_each_broken_config_gives_one_clear_line_naming_the_key(change: Any, expected: str) -> None:
    document = config_document()
    change(document)
    problems = problems_of(document)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected) or expected in problems[0], problems[0]


def test_missing_secrets_are_named_for_the_active_backends_only() -> None:
    document = config_document()
    document["mailbox"]["backend"] = "imap"
    document["chat"]["backend"] = "slack"
    config = config_from_document(document)
    assert missing_secrets(config.settings, environ={}) == [
        "mailbox.imap.password_env: the environment variable RRBOT_IMAP_PASSWORD is not set",
        "chat.slack.bot_token_env: the environment variable RRBOT_SLACK_BOT_TOKEN is not set",
        "chat.slack.signing_secret_env: the environment variable RRBOT_SLACK_SIGNING_SECRET is"
        " not set",
        "chat.slack.app_token_env: the environment variable RRBOT_SLACK_APP_TOKEN is not set",
    ]


def imap_config(smtp: dict[str, str], imap: dict[str, str] | None = None) -> Config:
    """Return the example configuration on the IMAP backend, with these SMTP and IMAP keys."""
    return build_config(label="cfg.toml",
                        mailbox={"backend": "imap", "imap": imap or {}, "smtp": smtp})


class RecordingEnviron(Mapping[str, str]):
    """An environment in which every variable is set, that remembers which ones were read."""

    def __init__(self) -> None:
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return f"value of {key}"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_missing_secrets_without_separate_smtp_credentials_asks_only_for_imaps() -> None:
    # Given the example's SMTP section, which names no account or secret of its own,
    settings = imap_config({}).settings
    # then only the IMAP password is asked for, and with it set nothing is missing,
    assert missing_secrets(settings, environ={}) == [
        "mailbox.imap.password_env: the environment variable RRBOT_IMAP_PASSWORD is not set",
    ]
    assert missing_secrets(settings, environ={"RRBOT_IMAP_PASSWORD": "x"}) == []
    # and an SMTP username alone (the same password, another login name) asks for no more.
    named = imap_config({"username": "relay@exampleshire.example"}).settings
    assert missing_secrets(named, environ={"RRBOT_IMAP_PASSWORD": "x"}) == []


def test_missing_secrets_with_separate_smtp_credentials_asks_for_smtps_too() -> None:
    # Given a relay account with a password of its own,
    password = imap_config({"username": "relay@exampleshire.example",
                            "password_env": "RRBOT_RELAY_PASSWORD"})
    assert missing_secrets(password.settings, environ={"RRBOT_IMAP_PASSWORD": "x"}) == [
        "mailbox.smtp.password_env: the environment variable RRBOT_RELAY_PASSWORD is not set",
    ]
    # or one that signs in with an XOAUTH2 token while IMAP uses a token too,
    token = imap_config(
        {"username": "relay@exampleshire.example", "oauth2_token_env": "RRBOT_RELAY_TOKEN"},
        imap={"oauth2_token_env": "RRBOT_IMAP_TOKEN"},
    )
    # then each login's own variable is named, the token rather than the password,
    assert missing_secrets(token.settings, environ={}) == [
        "mailbox.imap.oauth2_token_env: the environment variable RRBOT_IMAP_TOKEN is not set",
        "mailbox.smtp.oauth2_token_env: the environment variable RRBOT_RELAY_TOKEN is not set",
    ]
    # and the mailbox built from each configuration reads the SMTP variable named.
    for config, variable in ((password, "RRBOT_RELAY_PASSWORD"), (token, "RRBOT_RELAY_TOKEN")):
        environ = RecordingEnviron()
        open_mailbox(config, MemoryCursorStore(), environ).close()
        assert variable in environ.read


@pytest.mark.parametrize(
    ("smtp", "imap"),
    [
        ({}, {}),
        ({"username": "relay@exampleshire.example"}, {}),
        ({"username": "relay@exampleshire.example", "password_env": "RRBOT_RELAY_PASSWORD"}, {}),
        ({"oauth2_token_env": "RRBOT_RELAY_TOKEN"}, {}),
        ({"password_env": "RRBOT_RELAY_PASSWORD"}, {"oauth2_token_env": "RRBOT_IMAP_TOKEN"}),
    ],
    ids=["imap-account", "smtp-username", "smtp-password", "smtp-token", "imap-token"],
)
def test_missing_secrets_names_exactly_the_variables_the_mailbox_reads(
    smtp: dict[str, str], imap: dict[str, str]
) -> None:
    # Given an IMAP mailbox whose SMTP section has (or lacks) an account of its own,
    config = imap_config(smtp, imap)
    # when it is built from an environment that remembers what is read,
    environ = RecordingEnviron()
    mailbox = open_mailbox(config, MemoryCursorStore(), environ)
    mailbox.close()
    # then missing_secrets asks for those variables, and no others.
    asked = {
        match.group(1)
        for line in missing_secrets(config.settings, environ={})
        if (match := re.search(r"the environment variable (\S+) is not set", line))
    }
    assert asked == environ.read


def test_unreadable_files_give_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[partnership\nkey = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{broken}: not valid TOML")
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_a_database_password_from_the_environment_is_used_to_connect(
    postgres_url: str,
) -> None:
    # Given a PostgreSQL URL without a password and [database] password_env naming one with
    # characters a URL must escape,
    document = config_document()
    document["database"] = {"url": postgres_url, "password_env": "RRBOT_TEST_DB_PASSWORD"}
    config = config_from_document(document)
    environ = {"RRBOT_TEST_DB_PASSWORD": "p@ss:w/rd%"}
    # then the URL the bot connects with carries that password, escaped,
    url = database_url(config, environ)
    assert make_url(url).password == "p@ss:w/rd%"
    # and that URL reaches the server (whose test cluster trusts local connections).
    database = make_engine(url)
    with database.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    database.dispose()
    # Without the variable set, the URL is used as written.
    assert database_url(config, {}) == postgres_url
