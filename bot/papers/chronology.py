"""The combined multi-agency chronology: one timeline, duplicates together, gaps flagged."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from bot.papers.contents import UNREADABLE, ReturnContents
from bot.papers.dates import DAY
from bot.papers.rows import ChronologyRow

# Two events from different agencies on the same day this alike are one event seen twice.
DUPLICATE_LIKENESS = 0.5
# Two events this alike on different days are the same event dated differently.
CONTRADICTION_LIKENESS = 0.7
# Words that say nothing about which event it was.
COMMON_WORDS = frozenset(
    "the and was were with for from that this his her their they them has had have not but "
    "are who she him its our into onto of to in on at by as an a or is it be been seen "
    "saw child mother father mum dad family".split())
# A word shared by more rows than this tells nothing about which rows are the same event.
COMMON_AFTER = 40


@dataclass
class Entry:
    """One row of the combined chronology, with its duplicate group and flags."""

    row: ChronologyRow
    number: int = 0
    group: int = 0
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gap:
    """A stretch with nothing recorded by any agency."""

    after: date
    before: date

    @property
    def days(self) -> int:
        """Return how many days pass between the two entries."""
        return (self.before - self.after).days


@dataclass
class Chronology:
    """Every readable return's rows in time order, and what the reader should look at."""

    entries: list[Entry]
    undated: list[ChronologyRow]
    gaps: list[Gap]
    contradictions: list[tuple[Entry, Entry]]
    agencies: list[str]
    unreadable: list[ReturnContents]
    problems: list[ReturnContents]

    @property
    def duplicate_groups(self) -> int:
        """Return how many events more than one agency recorded."""
        return len({entry.group for entry in self.entries if entry.group})


def combine(returns: Iterable[ReturnContents], gap_days: int = 90) -> Chronology:
    """Build the combined chronology from every return read (unreadable ones only named)."""
    returns = list(returns)
    rows = [row for contents in returns for row in contents.rows]
    entries = [Entry(row) for row in rows if row.when is not None]
    undated = [row for row in rows if row.when is None]
    words = [_words(entry.row.event) for entry in entries]
    _group_duplicates(entries, words)
    contradictions = _contradictions(entries, words)
    entries = _in_order(entries)
    for number, entry in enumerate(entries, start=1):
        entry.number = number
    numbers = {id(entry): entry.number for entry in entries}
    for first, second in contradictions:
        first.flags.append(f"the same event as row {numbers[id(second)]} on another date?")
        second.flags.append(f"the same event as row {numbers[id(first)]} on another date?")
    by_group: dict[int, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.group:
            by_group[entry.group].append(entry)
    for members in by_group.values():
        for entry in members:
            others = ", ".join(str(other.number) for other in members if other is not entry)
            entry.flags.append(f"also recorded by another agency (row {others})")
    agencies = list(dict.fromkeys(contents.agency for contents in returns
                                  if contents.status != UNREADABLE))
    return Chronology(
        entries=entries, undated=undated, gaps=_gaps(entries, gap_days),
        contradictions=contradictions, agencies=agencies,
        unreadable=[contents for contents in returns if contents.status == UNREADABLE],
        problems=[contents for contents in returns
                  if contents.status != UNREADABLE and contents.problems])


def _words(event: str) -> frozenset[str]:
    return frozenset(word for word in re.findall(r"[a-z0-9]+", event.lower())
                     if len(word) > 2 and word not in COMMON_WORDS)


def _likeness(first: frozenset[str], second: frozenset[str]) -> float:
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def _group_duplicates(entries: list[Entry], words: list[frozenset[str]]) -> None:
    # Only rows that can mean the same day are compared: a day's rows are few.
    by_day: dict[date, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        if entry.row.when is not None and entry.row.when.precision == DAY:
            by_day[entry.row.when.start].append(index)
    next_group = 1
    for indexes in by_day.values():
        for position, first in enumerate(indexes):
            for second in indexes[position + 1:]:
                one, two = entries[first], entries[second]
                if one.row.agency == two.row.agency:
                    continue
                if _likeness(words[first], words[second]) >= DUPLICATE_LIKENESS:
                    group = one.group or two.group or next_group
                    next_group += group == next_group
                    one.group = two.group = group


def _contradictions(
    entries: list[Entry], words: list[frozenset[str]]
) -> list[tuple[Entry, Entry]]:
    # Rows are compared only with rows that share an uncommon word, so the work stays small.
    index: dict[str, list[int]] = defaultdict(list)
    for position, found in enumerate(words):
        for word in found:
            index[word].append(position)
    found_pairs: list[tuple[Entry, Entry]] = []
    seen: set[tuple[int, int]] = set()
    for position, entry in enumerate(entries):
        candidates = {other for word in words[position] if len(index[word]) <= COMMON_AFTER
                      for other in index[word] if other > position}
        for other in sorted(candidates):
            second = entries[other]
            first_when, second_when = entry.row.when, second.row.when
            if (entry.row.agency == second.row.agency or first_when is None
                    or second_when is None or first_when.precision != DAY
                    or second_when.precision != DAY or first_when.overlaps(second_when)):
                continue
            if (_likeness(words[position], words[other]) >= CONTRADICTION_LIKENESS
                    and (position, other) not in seen):
                seen.add((position, other))
                found_pairs.append((entry, second))
    return found_pairs


def _in_order(entries: list[Entry]) -> list[Entry]:
    # Duplicates stand together, at the place of the group's earliest row.
    first_of_group: dict[int, tuple[str, str, str]] = {}
    for entry in entries:
        if entry.group:
            key = entry.row.sort_key
            first_of_group[entry.group] = min(first_of_group.get(entry.group, key), key)

    def order(entry: Entry) -> tuple[tuple[str, str, str], int, tuple[str, str, str]]:
        own = entry.row.sort_key
        return (first_of_group.get(entry.group, own), entry.group, own)

    return sorted(entries, key=order)


def _gaps(entries: list[Entry], gap_days: int) -> list[Gap]:
    gaps = []
    dated = sorted(entry.row.when.start for entry in entries if entry.row.when is not None)
    for earlier, later in zip(dated, dated[1:], strict=False):
        if (later - earlier).days > gap_days:
            gaps.append(Gap(earlier, later))
    return gaps
