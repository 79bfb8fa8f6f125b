"""A date named in a question ("on October 13, 2023", "13 October 2023", "in June",
"in July 2023"), as the period a message's time can fall in.

Recall ranks the messages written in that period higher (memory/hybrid.py): on LoCoMo a
question such as "When did Melanie go camping in June?" is answered by what was said in June.
Only absolute dates are read; relative ones ("yesterday", "last week") and a year alone are
too vague to rank by. "May" counts as a month only with a day or a year, or after "in".
Times are compared in UTC, with 14 hours of slack on each side of a named day, so a message
written that day in any time zone is inside it.
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass

_MONTHS = tuple(name.lower() for name in calendar.month_name[1:])
_MONTH = "|".join(_MONTHS)
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)? (?:of )?({_MONTH}),? (\d{{4}})\b")
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH}) (\d{{1,2}})(?:st|nd|rd|th)?,? (\d{{4}})\b")
_MONTH_YEAR = re.compile(rf"\b({_MONTH}),? (\d{{4}})\b")
_IN_MONTH = re.compile(rf"\b(?:in|during|since|last|this) ({_MONTH})\b")
_BARE_MONTH = re.compile(rf"\b({_MONTH})\b")
_DAY_SLACK_SECONDS = 14 * 3600


@dataclass(frozen=True)
class Period:
    """A named day (`day` set), or a month of one year, or a month of any year."""

    month: int
    year: int | None = None
    day: int | None = None

    def contains(self, timestamp: float) -> bool:
        if self.day is not None and self.year is not None:
            start = datetime.datetime(self.year, self.month, self.day, tzinfo=datetime.UTC)
            begin = start.timestamp() - _DAY_SLACK_SECONDS
            return begin <= timestamp < begin + 86400 + 2 * _DAY_SLACK_SECONDS
        moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        return moment.month == self.month and self.year in (None, moment.year)


def named_period(text: str) -> Period | None:
    """The first absolute date `text` names, most precise form first; None if it names none."""
    lowered = " ".join(text.lower().split())
    if match := _DAY_MONTH_YEAR.search(lowered):
        day, month, year = int(match[1]), _month(match[2]), int(match[3])
        return _checked(Period(month, year, day))
    if match := _MONTH_DAY_YEAR.search(lowered):
        month, day, year = _month(match[1]), int(match[2]), int(match[3])
        return _checked(Period(month, year, day))
    if match := _MONTH_YEAR.search(lowered):
        return Period(_month(match[1]), int(match[2]))
    if match := _IN_MONTH.search(lowered):
        return Period(_month(match[1]))
    for match in _BARE_MONTH.finditer(lowered):
        if match[1] != "may":
            return Period(_month(match[1]))
    return None


def _month(name: str) -> int:
    return _MONTHS.index(name) + 1


def _checked(period: Period) -> Period | None:
    """None for a day that does not exist ("31 February 2023")."""
    try:
        datetime.date(period.year or 2000, period.month, period.day or 1)
    except ValueError:
        return None
    return period
