"""The consoles every renderer prints through.

Every string that comes from a model card is wrapped in `Text`, never parsed as Rich markup:
a card cannot style, hide or fake output. Every piece of text printed, whatever its source,
goes through `printable` on its way out: a control character in a card, a config, a dataset or
a model's output is shown as its escape, never sent to the terminal to obey.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

if TYPE_CHECKING:
    # Types only: a catalog command must not pay for importing every stage.
    pass


_CONTROL_CHARS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
"""C0 and C1 controls but tab and newline, and the bidi overrides (which turn text around)."""
_CONTROLS = re.compile(f"[{_CONTROL_CHARS}]")
_CONTROLS_AND_NEWLINE = re.compile(f"[{_CONTROL_CHARS}\n]")


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` with each control character written as its escape (`\\x1b`, `\\x9b`, `\\u202e`):
    ESC sequences can clear the screen, retitle the window or hide a line. Tab stays, and a
    newline where the field may hold several lines."""
    pattern = _CONTROLS if multiline else _CONTROLS_AND_NEWLINE
    return pattern.sub(lambda m: ascii(m.group())[1:-1], text)


def printable_json(text: str) -> str:
    """JSON text with the controls `json` leaves as they are (DEL, C1, bidi) as `\\uXXXX`: the
    same data, safe on a terminal. They can only be inside strings, where the escape is valid."""
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _printable_text(text: Text) -> Text:
    """A `Text` through `printable`, keeping its styles (each escape takes its character's)."""
    if not _CONTROLS.search(text.plain):
        return text
    cuts = sorted({i for m in _CONTROLS.finditer(text.plain) for i in (m.start(), m.end())})
    out = text.blank_copy()
    for piece in text.divide(cuts):
        if _CONTROLS.fullmatch(piece.plain):
            escaped = Text(printable(piece.plain), style=piece.style)
            for span in piece.spans:
                escaped.stylize(span.style)
            piece = escaped
        out.append_text(piece)
    return out


class _PrintableConsole(Console):
    """A Rich console that passes all text through `printable`: strings and `Text` before they
    are laid out (so an escape wraps like any text), and every text segment on its way out, in
    case a renderable drew text of its own (Rich's cursor and screen controls are segments of
    another kind, and pass)."""

    def render_str(self, *args: Any, **kwargs: Any) -> Text:
        return _printable_text(super().render_str(*args, **kwargs))

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = _printable_text(renderable)
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROLS.search(segment.text):
                yield Segment(printable(segment.text, multiline=True), segment.style)
            else:
                yield segment


def console() -> Console:
    """A console for stdout, made per call so it sees the current terminal and COLUMNS."""
    return _PrintableConsole()


def err_console() -> Console:
    return _PrintableConsole(stderr=True)
