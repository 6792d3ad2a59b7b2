"""The command line as a business manager runs it: timeline and check-config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from tests.factories import EMBEDDED_DATABASE, EXAMPLE, write_config
from tests.servers import free_port

RUNNER = CliRunner()


def test_timeline_json_has_the_documented_shape() -> None:
    result = RUNNER.invoke(
        app, ["timeline", "--preset", "oldham", "--start", "2026-12-18T10:00", "--json"]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["preset"] == "oldham"
    assert plan["day0"] == "2026-12-18"
    by_key = {milestone["key"]: milestone for milestone in plan["milestones"]}
    assert by_key["submit_national_panel"] == {
        "key": "submit_national_panel",
        "label": "Report submitted to the National Panel",
        "day": 15,
        "due": "2027-01-13T16:00:00+00:00",
    }
    assert by_key["agency_returns_due"]["due"] == "2026-12-31T17:00:00+00:00"


def test_timeline_start_with_an_offset_and_in_summer_time() -> None:
    result = RUNNER.invoke(
        app, ["timeline", "--preset", "warrington", "--start", "2027-06-30T23:30:00+00:00",
              "--json"]
    )
    plan = json.loads(result.stdout)
    # 23:30 UTC on 30 June is 00:30 BST on 1 July: Day 0 is the London date.
    assert plan["day0"] == "2027-07-01"
    due = {m["key"]: m["due"] for m in plan["milestones"]}
    assert due["submit_national_panel"] == "2027-07-22T17:00:00+01:00"


def test_timeline_table_and_config_process() -> None:
    result = RUNNER.invoke(
        app, ["timeline", "--config", str(EXAMPLE),
              "--start", "2026-12-18T10:00"]
    )
    assert result.exit_code == 0, result.output
    # The example config closes 29-31 December, so Day 15 moves to Monday 18 January.
    assert "Mon 18 Jan 2027 16:00" in result.stdout
    assert "submit_national_panel" in result.stdout


def test_timeline_bad_input_is_one_line_and_status_2() -> None:
    result = RUNNER.invoke(app, ["timeline", "--preset", "york", "--start", "2026-12-18"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("--preset: no preset named 'york'")
    result = RUNNER.invoke(app, ["timeline", "--start", "Friday"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "--start: 'Friday' is not an ISO 8601 date or date-time"


def test_check_config_passes_the_example_and_fails_a_broken_copy(tmp_path: Path) -> None:
    result = RUNNER.invoke(app, ["check-config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    broken = write_config(tmp_path, name="broken.toml", database_url=EMBEDDED_DATABASE,
                          chat={"backend": "slack"})
    result = RUNNER.invoke(app, ["check-config", str(broken)], env={})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert any(
        line == f"{broken}: chat.slack.bot_token_env: the environment variable"
        " RRBOT_SLACK_BOT_TOKEN is not set" for line in lines
    ), lines


def test_the_installed_console_script_runs() -> None:
    # The rrbot script sits beside the interpreter running the tests.
    script = Path(sys.executable).with_name("rrbot")
    env = {**os.environ, "COLUMNS": "120"}
    completed = subprocess.run(
        [str(script), "timeline", "--preset", "bolton", "--start", "2026-12-18T10:00"],
        capture_output=True, text=True, check=False, env=env, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Wed 13 Jan 2027 17:00" in completed.stdout


def _config_with_database(folder: Path, url: str) -> Path:
    return write_config(folder, database_url=url)


def _rrbot(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("rrbot")
    return subprocess.run([str(script), *args], capture_output=True, text=True, check=False,
                          cwd=folder, env={**os.environ, "COLUMNS": "120"}, timeout=120)


@pytest.mark.parametrize("command", [
    ["tick"], ["cases"], ["db", "upgrade"], ["request", "list", "RR-2026-001"],
    ["report", "hold", "RR-2026-001", "--until", "2027-01-13T10:00"],
    ["reopen-ballot", "RR-2026-001", "--ballot", "decision"],
])
def test_an_unreachable_postgresql_server_is_one_line_without_the_password(
    tmp_path: Path, command: list[str]
) -> None:
    # Given a config whose PostgreSQL server is not listening (its password in the URL),
    port = free_port()
    config = _config_with_database(
        tmp_path, f"postgresql+psycopg://rrbot:hunter2@127.0.0.1:{port}/rrbot")
    # when a command needs the database,
    completed = _rrbot(tmp_path, *command, "--config", str(config))
    # then it exits 2 with one line naming the database, never its password.
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(
        f"database postgresql+psycopg://rrbot:***@127.0.0.1:{port}/rrbot: "), lines
    assert "Connection refused" in lines[0]
    assert "hunter2" not in completed.stderr


@pytest.mark.parametrize("command", [["tick"], ["cases"], ["db", "upgrade"]])
def test_a_sqlite_folder_that_cannot_be_made_is_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    # Given a SQLite file whose folder would have to be made inside a plain file
    # (as with a read-only /etc, whoever runs the test),
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    config = _config_with_database(tmp_path, "sqlite:///not-a-folder/db/rrbot.sqlite3")
    # when a command needs the database,
    completed = _rrbot(tmp_path, *command, "--config", str(config))
    # then it exits 2 with one line naming the database file and the folder.
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert lines == [
        f"database sqlite:///{tmp_path}/not-a-folder/db/rrbot.sqlite3: cannot create the folder"
        f" {tmp_path}/not-a-folder/db: Not a directory; set [database] url to a folder the bot"
        " may write"
    ], completed.stderr


@pytest.mark.parametrize("command", [
    ["tick", "--now", "2027-06-01T10:00"], ["cases"], ["db", "upgrade"], ["audit", "verify"],
    ["request", "list", "RR-2026-001"], ["report", "submit", "RR-2026-001"],
    ["reopen-ballot", "RR-2026-001", "--ballot", "decision"], ["run"],
])
def test_a_sqlite_file_that_is_not_a_database_is_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    # Given a config whose SQLite file holds something else (a damaged copy, say),
    (tmp_path / "rrbot.sqlite3").write_bytes(b"this is not a database\n" * 200)
    config = _config_with_database(tmp_path, "sqlite:///rrbot.sqlite3")
    # when a command opens the database,
    result = RUNNER.invoke(app, [*command, "--config", str(config)])
    # then it exits 2 with one line naming the file and what to do, not a traceback.
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [
        f"database sqlite:///{tmp_path}/rrbot.sqlite3: file is not a database; restore the"
        " file from a backup, or set [database] url to the bot's database"]


def test_cases_and_milestone_done_show_names_and_london_time_in_words(tmp_path: Path) -> None:
    # Given a case opened on Thursday 14 January 2027,
    config = str(_config_with_database(tmp_path, "sqlite:///rrbot.sqlite3"))
    opened = RUNNER.invoke(app, ["case", "open", "--config", config,
                                 "--start", "2027-01-14T10:00", "--now", "2027-01-14T10:01"])
    assert opened.exit_code == 0, opened.output
    # when the business manager lists the cases and records a milestone done in summer time,
    listing = RUNNER.invoke(app, ["cases", "--config", config, "--now", "2027-01-14T11:00"])
    done = RUNNER.invoke(app, ["milestone-done", "--config", config, "RR-2027-001",
                               "acknowledge", "--at", "2027-06-01T10:00"])
    # then each shows the milestone's name and the time in London, in words, never ISO or keys.
    assert listing.exit_code == 0, listing.output
    assert "Acknowledge the referral to the referrer" in listing.output
    assert "17:00 on Friday 15 January 2027" in listing.output
    assert "Awaiting decision" in listing.output
    assert "+00:00" not in listing.output and "awaiting_decision" not in listing.output
    assert done.output.strip() == (
        "RR-2027-001: Acknowledge the referral to the referrer done at 10:00 on Tuesday 1 June"
        " 2027")
