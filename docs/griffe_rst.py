"""A griffe extension for the API reference: the library's reST-flavoured docstrings as Markdown.

The docstrings are written to read well in ``help()`` and to run as doctests: Sphinx roles
(``:class:`Alert```), ``>>>`` examples and ``::`` literal blocks. Markdown would render the
examples as nested block quotes, so at load time this extension rewrites each docstring:

- a role becomes inline code (``:class:`~a.b.C``` becomes ```C```);
- a run of ``>>>`` lines and their output becomes a fenced ``pycon`` block;
- a paragraph ending in ``::`` introduces a fenced block of the indented lines after it.

Only the rendered reference changes; the source docstrings stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const|ref):`~?([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    # ~a.b.C shows C; a plain a.b.C shows in full.
    shown = target.rsplit(".", 1)[-1] if "`~" in match.group(0) else target
    return f"`{shown}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _fence_doctests(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            pad = " " * _indent(line)
            out.append(f"{pad}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{pad}```")
            continue
        out.append(line)
        i += 1
    return out


def _fence_literals(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and not line.strip().startswith((">>>", "...")):
            base = _indent(line)
            stripped = line.rstrip()[:-2].rstrip()
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _indent(lines[j]) > base:
                out.append(stripped + ":" if stripped.strip() else "")
                out.append("")
                pad = " " * base
                out.append(f"{pad}```text")
                inner = _indent(lines[j])
                k = j
                while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > base):
                    out.append(pad + lines[k][inner:] if lines[k].strip() else "")
                    k += 1
                while out and not out[-1].strip():
                    out.pop()
                out.append(f"{pad}```")
                out.append("")
                i = k
                continue
        out.append(line)
        i += 1
    return out


def markdown_docstring(text: str) -> str:
    """The docstring ``text`` rewritten as Markdown (see the module docstring)."""
    text = _ROLE.sub(_role, text)
    lines = _fence_literals(text.split("\n"))
    return "\n".join(_fence_doctests(lines))


class RestToMarkdown(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`markdown_docstring`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
