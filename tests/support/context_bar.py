"""Reads the sidebar's context bar (an `st.html` element) the way a browser would: its segments
(`data-part`, `data-role`, `data-tokens`, hover text), its legend and its accessible name."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Html

from chatbot.context_chart import BAR_CLASS


@dataclass(frozen=True)
class Segment:
    part: str
    role: str
    tokens: int
    hover: str  # the `title`, unescaped


@dataclass
class ContextBar(HTMLParser):
    """The parsed bar: its segments in order, its legend's labels, its accessible name, and
    every tag and attribute name seen (to tell markup from text)."""

    segments: list[Segment] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)
    name: str = ""
    bars: int = 0  # elements named as images: the bar
    tags: list[str] = field(default_factory=list)
    attributes: set[str] = field(default_factory=set)
    _in_item: bool = False

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        self.tags.append(tag)
        self.attributes |= set(values)
        if "cb-seg" in values.get("class", "").split():
            self.segments.append(
                Segment(
                    values["data-part"],
                    values["data-role"],
                    int(values["data-tokens"]),
                    values["title"],
                )
            )
        if values.get("role") == "img":
            self.name = values["aria-label"]
            self.bars += 1
        if tag == "li":
            self._in_item = True
            self.legend.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in_item = False

    def handle_data(self, data: str) -> None:
        if self._in_item:
            self.legend[-1] += data


def read_bar(body: str) -> ContextBar:
    bar = ContextBar()
    bar.feed(body)
    bar.close()
    return bar


def context_bar(app: AppTest) -> ContextBar:
    """The one context bar on the page."""
    bodies = [e.proto.body for e in app.get("html") if isinstance(e, Html)]
    (body,) = [body for body in bodies if f'class="{BAR_CLASS}"' in body]
    return read_bar(body)


def parts_of(bar: ContextBar) -> dict[str, int]:
    """Each part's tokens, in the bar's order."""
    tokens: dict[str, int] = {}
    for segment in bar.segments:
        tokens[segment.part] = tokens.get(segment.part, 0) + segment.tokens
    return tokens
