"""Prompt templates: Jinja2 in a sandbox, so a template or a dataset cannot run code, nor run away.

A template sees `input`, `choices`, `metadata` and `examples` (the few-shot items, each with
`input` and `reference`). Without a template the prompt is the input itself.

Each template is compiled once (compiling costs a hundred times a render). One prompt may take
at most `MAX_STEPS` loop iterations and calls, and neither it nor a string or list it repeats
may pass `MAX_CHARS`: a template such as `range(10**9)` or nested loops ends in an error naming
the item, not in a hang or an out-of-memory kill.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from llmselect.errors import LLMSelectError
from llmselect.evaluation.datasets import Item

MAX_STEPS = 1_000_000
"""Loop iterations and calls one prompt may take."""
MAX_CHARS = 10_000_000
"""Characters (or list entries) one prompt, or one repetition in it, may reach."""
MAX_POWER_BITS = 100_000
"""Bits an integer power may reach (`2 ** 10 ** 9` would compute for minutes)."""
_COUNTED = "_llmselect_counted"
HINT = "the template sees input, choices, metadata and examples"


class _Limit(Exception):
    """A prompt went past one of the bounds above."""


_steps: ContextVar[list[int]] = ContextVar("template_steps")


def _tick() -> None:
    steps = _steps.get(None)
    if steps is not None:
        steps[0] += 1
        if steps[0] > MAX_STEPS:
            raise _Limit(f"more than {MAX_STEPS:,} loop iterations and calls")


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    for value in iterable:
        _tick()
        yield value


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, which blocks unsafe attributes and ranges over 100,000, with loops,
    calls, repetition and powers bounded too (Jinja documents `intercepted_binops` for this)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every loop iterates through a counter, so loops without calls are bounded too.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _COUNTED, [], [], None, None, lineno=loop.lineno)
        return tree

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(times, int) and size * times > MAX_CHARS:
                    raise _Limit(f"a repetition of {size:,} x {times:,} is over {MAX_CHARS:,}")
        elif operator_ == "**":
            ints = isinstance(left, int) and isinstance(right, int)
            if ints and abs(left) > 1 and right > 0 and left.bit_length() * right > MAX_POWER_BITS:
                raise _Limit(f"the power {left} ** {right} is too large")
        elif operator_ == "+":
            a, b = _size(left), _size(right)
            if a is not None and b is not None and a + b > MAX_CHARS:
                raise _Limit(f"a sum of {a + b:,} entries is over {MAX_CHARS:,}")
        return super().call_binop(context, operator_, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters[_COUNTED] = _counted


@functools.lru_cache(maxsize=32)
def compile_template(template: str) -> Template:
    """The template compiled once, however many items it renders."""
    try:
        return _ENV.from_string(template)
    except TemplateSyntaxError as exc:
        raise LLMSelectError(
            f"prompt template: {exc.message} (line {exc.lineno} of the template)",
            field="task.template",
            hint=HINT,
        ) from exc


def render(
    template: str | None, item: Item, examples: list[Item] | None = None, file: str | None = None
) -> str:
    """The item's prompt; `file`, the dataset's, is for errors (a folder's item knows its own)."""
    if not template:
        return item.input
    compiled = compile_template(template)
    context: dict[str, Any] = {
        "input": item.input,
        "choices": item.choices or [],
        "metadata": item.metadata,
        "examples": [{"input": e.input, "reference": e.reference} for e in examples or []],
    }
    token = _steps.set([0])
    try:
        parts: list[str] = []
        size = 0
        for part in compiled.generate(**context):
            size += len(part)
            if size > MAX_CHARS:
                raise _Limit(f"the prompt is longer than {MAX_CHARS:,} characters")
            parts.append(part)
        return "".join(parts)
    except _Limit as exc:
        why = f"it runs past the sandbox's bounds ({exc})"
    except Exception as exc:
        # Whatever fails inside a template is the template's; OverflowError is the sandbox
        # refusing a range of over 100,000 entries.
        why = f"{type(exc).__name__}: {exc}"
    finally:
        _steps.reset(token)
    raise LLMSelectError(
        f"prompt template failed on item {item.id!r}: {why}",
        file=item.file or file,
        line=item.line,
        field="task.template",
        hint=HINT,
    )
