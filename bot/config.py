"""The deployment's configuration: loading, validation and one-line error messages."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.process.preset import (
    STATUTORY_SUBMISSION_DAYS,
    SUBMISSION_KEY,
    Preset,
    merge_process,
    preset_document,
)
from bot.process.timeline import plan
from bot.process.working_days import WorkingCalendar, WorkingHours
from bot.settings import Settings


class ConfigError(Exception):
    """A configuration that cannot be used; each line of `problems` names one key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """A validated configuration with its process resolved and its calendar built."""

    settings: Settings
    preset: Preset
    calendar: WorkingCalendar
    source: Path | None = None
    warnings: tuple[str, ...] = ()


def load_config(path: Path | str) -> Config:
    """Read and validate a configuration file, raising ConfigError with one line per problem."""
    path = Path(path)
    label = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{label}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{label}: cannot be read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{label}: not valid TOML: {exc}"]) from None
    return config_from_document(document, label, source=path)


def config_from_document(
    document: Mapping[str, Any], label: str = "config", source: Path | None = None
) -> Config:
    """Validate an already-parsed configuration document."""
    try:
        settings = Settings.model_validate(dict(document))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, label, "")) from None
    preset = resolve_process(settings.process, label)
    calendar = WorkingCalendar.build(
        settings.partnership.closure_dates,
        WorkingHours(settings.partnership.working_hours_start,
                     settings.partnership.working_hours_end),
    )
    _check_order(preset, calendar, label)
    return Config(settings, preset, calendar, source, tuple(process_warnings(preset, label)))


def resolve_process(process: Mapping[str, Any], label: str) -> Preset:
    """Build the case process from a named preset and the config's overrides."""
    overrides = dict(process)
    name = overrides.pop("preset", None)
    if name is not None and not isinstance(name, str):
        raise ConfigError([f"{label}: process.preset: must be a preset name in quotes"])
    try:
        base = preset_document(name) if name else {}
    except KeyError as exc:
        raise ConfigError([f"{label}: process.preset: {exc.args[0]}"]) from None
    merged = merge_process(base, overrides)
    try:
        return Preset.model_validate(merged)
    except ValidationError as exc:
        keys = [m.get("key", "?") if isinstance(m, dict) else "?"
                for m in merged.get("milestones", [])]
        raise ConfigError(_describe(exc, label, "process.", keys)) from None


def _check_order(preset: Preset, calendar: WorkingCalendar, label: str) -> None:
    # A sample case shows offsets that cannot work: signing off after the report has gone.
    sample = plan(preset, calendar, datetime(2026, 1, 5, 10, tzinfo=UTC))
    if "partner_signoff" in {m.key for m in sample.milestones}:
        if sample.due("partner_signoff") > sample.due(SUBMISSION_KEY):
            raise ConfigError([
                f"{label}: process.milestones[partner_signoff]: falls after"
                f" {SUBMISSION_KEY}; the partners must sign off before the report is sent"
            ])


def process_warnings(preset: Preset, label: str) -> list[str]:
    """Point out a process that is legal to run but later than the National Panel expects."""
    submission = preset.milestone(SUBMISSION_KEY)
    if submission.day is not None and submission.day > STATUTORY_SUBMISSION_DAYS:
        return [
            f"{label}: process.milestones[{SUBMISSION_KEY}]: submits on Day {submission.day},"
            f" later than the {STATUTORY_SUBMISSION_DAYS} working days the National Panel"
            " expects"
        ]
    return []


def missing_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Name each environment variable the active backends need and that is not set."""
    environ = os.environ if environ is None else environ
    needed: list[tuple[str, str | None]] = []
    mailbox = settings.mailbox
    if mailbox.backend == "imap" and mailbox.imap and mailbox.smtp:
        needed += _login_secret("mailbox.imap", mailbox.imap.password_env,
                                mailbox.imap.oauth2_token_env)
        # SMTP reads a secret of its own only when it names one; otherwise it uses IMAP's.
        if mailbox.smtp.has_own_secret():
            needed += _login_secret("mailbox.smtp", mailbox.smtp.password_env,
                                    mailbox.smtp.oauth2_token_env)
    if mailbox.backend == "graph" and mailbox.graph:
        needed.append(("mailbox.graph.client_secret_env", mailbox.graph.client_secret_env))
    if mailbox.backend == "ews" and mailbox.ews:
        needed.append(("mailbox.ews.password_env", mailbox.ews.password_env))
    if settings.chat.backend == "slack" and settings.chat.slack:
        slack = settings.chat.slack
        needed.append(("chat.slack.bot_token_env", slack.bot_token_env))
        needed.append(("chat.slack.signing_secret_env", slack.signing_secret_env))
        if slack.mode == "socket":
            needed.append(("chat.slack.app_token_env", slack.app_token_env))
    if settings.web.port and settings.web.oidc is not None:
        needed.append(("web.oidc.client_secret_env", settings.web.oidc.client_secret_env))
    if settings.database.password_env:
        needed.append(("database.password_env", settings.database.password_env))
    return [
        f"{key}: the environment variable {variable} is not set"
        for key, variable in needed if variable and not environ.get(variable)
    ]


def _login_secret(
    section: str, password_env: str | None, token_env: str | None
) -> list[tuple[str, str | None]]:
    if token_env:
        return [(f"{section}.oauth2_token_env", token_env)]
    return [(f"{section}.password_env", password_env)]


def _describe(
    error: ValidationError, label: str, prefix: str, milestone_keys: list[str] | None = None
) -> list[str]:
    lines = []
    for problem in error.errors():
        location = _location(problem["loc"], milestone_keys)
        message = _message(problem)
        where = f"{prefix}{location}" if location else prefix.rstrip(".") or "(top level)"
        lines.append(f"{label}: {where}: {message}")
    return lines


def _location(loc: tuple[Any, ...], milestone_keys: list[str] | None) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            name = None
            if milestone_keys and index > 0 and loc[index - 1] == "milestones":
                name = milestone_keys[part] if part < len(milestone_keys) else None
            parts[-1] += f"[{name or part}]"
        elif part.startswith("function-") or part in {"int", "float", "str", "literal['all']"}:
            continue
        else:
            parts.append(str(part))
    return ".".join(parts)


def _message(problem: Mapping[str, Any]) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind in {"literal_error", "string_pattern_mismatch"}:
        return f"{message} (got {problem.get('input')!r})"
    return message
