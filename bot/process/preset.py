"""A partnership's Rapid Review process as data: milestones, offsets, reminders and quorum."""

from __future__ import annotations

import tomllib
from datetime import time
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The milestone every process must have: the report reaching the National Panel.
SUBMISSION_KEY = "submit_national_panel"
# The local authority's notification to the National Panel, where some presets start the clock.
NOTIFICATION_KEY = "notify_national_panel"
# The statutory limit the National Panel's guidance sets for the submission.
STATUTORY_SUBMISSION_DAYS = 15

MilestoneKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def parse_clock(value: Any) -> Any:
    """Accept "HH:MM" strings (and TOML local times) for wall-clock fields."""
    if isinstance(value, str):
        try:
            return time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time of day like \"16:00\"") from exc
    return value


class Strict(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Reminder(Strict):
    """When to remind before a due instant: N working days before (at a time), or N hours."""

    working_days_before: int | None = Field(default=None, ge=0, le=30)
    hours_before: float | None = Field(default=None, gt=0, le=24 * 30)
    at: time | None = None

    _clock = field_validator("at", mode="before")(parse_clock)

    @model_validator(mode="after")
    def _one_offset(self) -> Reminder:
        if (self.working_days_before is None) == (self.hours_before is None):
            raise ValueError("give exactly one of working_days_before or hours_before")
        if self.hours_before is not None and self.at is not None:
            raise ValueError("'at' goes with working_days_before, not hours_before")
        return self


class Milestone(Strict):
    """One step of the process, with its deadline as an offset.

    The offset is one of: `day` (the Nth working day after Day 0); `working_days` after
    another milestone (`after`) or before one (`before`, e.g. a report due seven working days
    before publication); `hours` after another milestone or, without `after`, after the clock
    started; `months` after another milestone or the clock start. `at` is the cut-off hour for
    day-based offsets (default: the end of the working day).

    After the offset: `dated_by_hand` means a person sets the real date (`rrbot case set-date`)
    and the offset is only provisional until then; `ask_agencies` means that once the report
    has gone, every agency that returned is asked for this step, chased like its return.
    """

    key: MilestoneKey
    label: str = Field(min_length=1, max_length=200)
    day: int | None = Field(default=None, ge=0, le=60)
    after: MilestoneKey | None = None
    before: MilestoneKey | None = None
    working_days: int | None = Field(default=None, ge=0, le=60)
    hours: float | None = Field(default=None, ge=0, le=24 * 60)
    months: int | None = Field(default=None, ge=1, le=24)
    at: time | None = None
    statutory: bool = False
    applies: Literal["always", "local_review"] = "always"
    dated_by_hand: bool = False
    ask_agencies: bool = False
    remind: list[Reminder] = Field(default_factory=list)
    note: str = ""

    _clock = field_validator("at", mode="before")(parse_clock)

    @model_validator(mode="after")
    def _one_offset(self) -> Milestone:
        given = [
            name for name in ("day", "working_days", "hours", "months")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"milestone {self.key!r} needs exactly one of day, working_days, hours or"
                f" months (has {', '.join(given) or 'none'})"
            )
        if self.day is not None and self.after is not None:
            raise ValueError(f"milestone {self.key!r}: 'day' counts from Day 0; drop 'after'")
        if self.before is not None and (self.after is not None or self.working_days is None):
            raise ValueError(f"milestone {self.key!r}: 'before' takes working_days and no"
                             " 'after'")
        if self.working_days is not None and self.after is None and self.before is None:
            raise ValueError(
                f"milestone {self.key!r}: working_days needs 'after' or 'before' (use 'day' to"
                " count from Day 0)"
            )
        if self.hours is not None and self.at is not None:
            raise ValueError(f"milestone {self.key!r}: 'at' cannot go with clock hours")
        return self


QuorumRule = int | Literal["all"]


class Quorum(Strict):
    """How many of the three statutory partner organisations must vote for a ballot to pass."""

    decision: QuorumRule = 2
    signoff: QuorumRule = 2
    # Partners who have not voted are reminded this many working hours before a ballot closes.
    remind_working_hours_before: list[float] = Field(default_factory=lambda: [4.0, 1.0])
    # The business manager is warned this many working hours before a ballot closes without
    # quorum.
    at_risk_working_hours_before: float = Field(default=2.0, ge=0, le=40)

    @field_validator("decision", "signoff")
    @classmethod
    def _within_three(cls, value: QuorumRule) -> QuorumRule:
        if isinstance(value, int) and not 1 <= value <= 3:
            raise ValueError("a quorum is 1, 2 or 3 partner organisations, or \"all\"")
        return value


def partners_needed(rule: QuorumRule, partner_count: int = 3) -> int:
    """Turn a quorum rule into a number of partner organisations."""
    return partner_count if rule == "all" else min(int(rule), partner_count)


class AgencyRequestRules(Strict):
    """How information requests to agencies are chased and escalated."""

    reminders: list[Reminder] = Field(
        default_factory=lambda: [
            Reminder(working_days_before=2),
            Reminder(working_days_before=1),
            Reminder(working_days_before=0, at=time(9, 30)),
        ]
    )
    escalate_after_working_days: int = Field(default=1, ge=0, le=10)
    late_agency_deadline: Literal["from_request", "case_deadline"] = "case_deadline"
    meeting_invite: bool = False


class SubmissionRules(Strict):
    """When the business manager and partners are warned that the submission is at risk."""

    # Before the cut-off with no report version yet (default: noon the working day before).
    no_report_warning: Reminder = Field(
        default_factory=lambda: Reminder(working_days_before=1, at=time(12, 0)))
    # On the day, not yet sent (default: noon).
    not_sent_warning: Reminder = Field(
        default_factory=lambda: Reminder(working_days_before=0, at=time(12, 0)))
    # Shortly before the cut-off, not yet confirmed in Sent (default: half an hour before).
    unconfirmed_warning: Reminder = Field(default_factory=lambda: Reminder(hours_before=0.5))
    # Whether the agencies asked, and the referrer, are told once the report has gone.
    notify_agencies: bool = False
    notify_referrer: bool = True


class Preset(Strict):
    """A partnership's whole Rapid Review timeline."""

    name: MilestoneKey
    label: str
    source: str = ""
    clock_starts: Literal["referral_received", "national_panel_notified"] = "referral_received"
    quorum: Quorum = Field(default_factory=Quorum)
    agency_requests: AgencyRequestRules = Field(default_factory=AgencyRequestRules)
    submission: SubmissionRules = Field(default_factory=SubmissionRules)
    milestones: list[Milestone] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> Preset:
        keys = [milestone.key for milestone in self.milestones]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"milestone keys appear twice: {', '.join(duplicates)}")
        if SUBMISSION_KEY not in keys:
            raise ValueError(f"the process has no {SUBMISSION_KEY!r} milestone")
        if self.clock_starts == "national_panel_notified" and NOTIFICATION_KEY not in keys:
            raise ValueError(f"the clock starts at the notification, but the process has no"
                             f" {NOTIFICATION_KEY!r} milestone to mark it")
        by_key = {milestone.key: milestone for milestone in self.milestones}
        for milestone in self.milestones:
            for word, other in (("after", milestone.after), ("before", milestone.before)):
                if other is not None and other not in by_key:
                    raise ValueError(
                        f"milestone {milestone.key!r} is {word} {other!r}, which does not exist"
                    )
        for milestone in self.milestones:
            _check_no_cycle(milestone.key, by_key)
        return self

    def milestone(self, key: str) -> Milestone:
        """Return the milestone with that key."""
        for milestone in self.milestones:
            if milestone.key == key:
                return milestone
        raise KeyError(key)


def _check_no_cycle(start: str, by_key: dict[str, Milestone]) -> None:
    seen = [start]
    current = counted_from(by_key[start])
    while current is not None:
        if current in seen:
            chain = " -> ".join([*seen, current])
            raise ValueError(f"milestones depend on each other in a circle: {chain}")
        seen.append(current)
        current = counted_from(by_key[current])


def counted_from(milestone: Milestone) -> str | None:
    """Return the milestone another is counted from (after or before it), if any."""
    return milestone.after or milestone.before


def preset_names() -> list[str]:
    """List the presets that ship with the bot."""
    folder = resources.files("bot.process") / "presets"
    return sorted(
        entry.name.removesuffix(".toml") for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def preset_document(name: str) -> dict[str, Any]:
    """Read a shipped preset's TOML as a plain dictionary (for merging with overrides)."""
    if name not in preset_names():
        raise KeyError(f"no preset named {name!r}; choose one of {', '.join(preset_names())}")
    text = (resources.files("bot.process") / "presets" / f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_preset(name: str) -> Preset:
    """Load and validate a shipped preset by name."""
    return Preset.model_validate(preset_document(name))


# The fields that together say when a milestone falls; an override replaces all of them.
OFFSET_FIELDS = ("day", "after", "before", "working_days", "hours", "months", "at")


def merge_process(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply a config's process overrides to a preset document.

    Top-level tables merge key by key; milestones merge by their `key`, a milestone's offset
    being replaced as a whole when the override gives any offset field; new keys append.
    """
    merged: dict[str, Any] = {key: value for key, value in base.items() if key != "milestones"}
    for key, value in overrides.items():
        if key == "milestones":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    milestones = [dict(milestone) for milestone in base.get("milestones", [])]
    index = {milestone.get("key"): position for position, milestone in enumerate(milestones)}
    for override in overrides.get("milestones", []):
        override_key = override.get("key") if isinstance(override, dict) else None
        if override_key in index:
            current = milestones[index[override_key]]
            if any(name in override for name in OFFSET_FIELDS):
                current = {name: v for name, v in current.items() if name not in OFFSET_FIELDS}
            milestones[index[override_key]] = {**current, **override}
        else:
            milestones.append(override)
    merged["milestones"] = milestones
    return merged
