"""Renders email and chat templates: missing variables fail, HTML is escaped."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.process.working_days import london_time

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    """An email's subject, plain-text part and HTML part."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def environment(folder: Path = TEMPLATES) -> Environment:
    """Build the template environment: StrictUndefined, autoescape for .html.j2."""
    env = Environment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        keep_trailing_newline=True,
    )
    env.filters["london"] = london_time
    # The cockpit's public address, which notify passes when [web] base_url is set.
    env.globals["cockpit"] = ""
    return env


def render_email(purpose: str, **values: Any) -> RenderedEmail:
    """Render templates/email/<purpose>.{subject,txt,html}.j2 with the given values."""
    env = environment()
    subject = env.get_template(f"email/{purpose}.subject.j2").render(**values)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=env.get_template(f"email/{purpose}.txt.j2").render(**values),
        html=env.get_template(f"email/{purpose}.html.j2").render(**values),
    )
