"""Reading the dashboard's HTML the way a browser test would: events, spans, form controls."""

from __future__ import annotations

import re
from html.parser import HTMLParser

EVENT = re.compile(
    r'<li class="event[^"]*" id="[^"]*" data-input-id="([^"]+)">(.*?)</li>\s*'
    r'(?=<li class="event|</ol>)',
    re.S,
)


def events(page: str) -> list[tuple[str, str]]:
    """``(input_id, its HTML)`` of every event in the page, in page order."""
    return [(m.group(1), m.group(2)) for m in EVENT.finditer(page)]


def event_ids(page: str) -> list[str]:
    return [input_id for input_id, _ in events(page)]


class _Spans(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.spans: list[dict[str, str | None]] = []
        self._in_text = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "p" and "data-attention" in attributes:
            self._in_text += 1
        elif tag == "span" and self._in_text and attributes.get("class") == "w":
            self.spans.append(attributes)

    def handle_endtag(self, tag):
        if tag == "p" and self._in_text:
            self._in_text -= 1


def shaded_spans(fragment: str) -> list[dict[str, str | None]]:
    """The attributes of every shaded word span in the message text of ``fragment``."""
    parser = _Spans()
    parser.feed(fragment)
    return parser.spans


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.labelled: set[str] = set()
        self.html_lang: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.html_lang = attributes.get("lang")
        if tag == "label" and attributes.get("for"):
            self.labelled.add(str(attributes["for"]))
        if tag in ("input", "select", "textarea") and attributes.get("type") != "hidden":
            self.controls.append({"tag": tag, **attributes})


def unlabelled_controls(page: str) -> list[dict[str, str | None]]:
    """Form controls with neither a ``<label for>`` nor an ``aria-label``."""
    parser = _Controls()
    parser.feed(page)
    return [
        c for c in parser.controls if c.get("id") not in parser.labelled and not c.get("aria-label")
    ]


def html_lang(page: str) -> str | None:
    parser = _Controls()
    parser.feed(page)
    return parser.html_lang
