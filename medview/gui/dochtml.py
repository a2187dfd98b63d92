"""numpydoc docstrings as the small HTML a QTextBrowser shows (no docutils needed).

Steps are documented once, in numpydoc (their docstring is the spec's ``doc``); the chain
panel shows that text as help. Raw, it reads "Parameters ----------" and
"``skimage.filters.gabor``". This renders the subset numpydoc docstrings use: paragraphs,
section headings underlined with dashes, parameter lists (``name : type`` then an indented
description), ``- `` bullet lists, indented literal blocks and ``>>>`` examples, and the
inline roles: ````literal````, ``:func:`x``` (and ``:class:``, ``:meth:``, ``:mod:``…,
``~`` keeping the last part), ```x``` and ``*x*`` (italic), ``**x**`` (bold).
"""

from __future__ import annotations

import html
import re
import textwrap

__all__ = ["docstring_html", "docstring_summary"]

#: sections whose entries are "name : type" + indented description
_LIST_SECTIONS = {"parameters", "returns", "yields", "raises", "warns", "other parameters",
                  "attributes", "receives", "signals", "events"}
_ROLE = re.compile(r":(?:py:)?[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EMPH = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_CITE = re.compile(r"(?<![\w`])`(?!`)([^`]+)`(?!`)")


def _inline(text: str) -> str:
    """HTML of one run of text with the inline markup rendered (the text is escaped)."""
    codes: list[str] = []

    def keep_code(match: re.Match) -> str:
        codes.append(match.group(1))
        return f"\x00{len(codes) - 1}\x00"

    def role(match: re.Match) -> str:
        target = match.group(1)
        # :func:`~a.b.c` shows "c"; :func:`text <target>` shows "text"
        if "<" in target and target.endswith(">"):
            target = target.split("<", 1)[0].strip()
        elif match.group(0).split("`", 1)[1].startswith("~"):
            target = target.rsplit(".", 1)[-1]
        codes.append(target)
        return f"\x00{len(codes) - 1}\x00"

    text = _LITERAL.sub(keep_code, text)
    text = _ROLE.sub(role, text)
    text = html.escape(text, quote=False)
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _EMPH.sub(r"<i>\1</i>", text)
    text = _CITE.sub(r"<i>\1</i>", text)
    return re.sub("\x00(\\d+)\x00",
                  lambda m: f"<code>{html.escape(codes[int(m.group(1))], quote=False)}</code>",
                  text)


def _blocks(lines: list[str]) -> list[list[str]]:
    """Lines split at blank lines."""
    out: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [b for b in out if b]


def _prose(lines: list[str]) -> str:
    """Paragraphs, bullet lists and literal blocks of free text."""
    parts = []
    for block in _blocks(lines):
        if block[0].lstrip().startswith(">>>"):
            parts.append("<pre>" + html.escape("\n".join(textwrap.dedent(
                "\n".join(block)).splitlines()), quote=False) + "</pre>")
        elif block[0].lstrip().startswith(("- ", "* ")):
            items: list[str] = []
            for line in block:
                stripped = line.strip()
                if stripped.startswith(("- ", "* ")):
                    items.append(stripped[2:])
                elif items:
                    items[-1] += " " + stripped
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
        elif block[0].startswith((" ", "\t")):
            parts.append("<pre>" + html.escape(textwrap.dedent("\n".join(block)),
                                               quote=False) + "</pre>")
        else:
            parts.append(f"<p>{_inline(' '.join(s.strip() for s in block))}</p>")
    return "".join(parts)


def _entries(lines: list[str]) -> str:
    """A numpydoc list section: each unindented line names an entry, the indented lines
    under it describe it."""
    entries: list[tuple[str, list[str]]] = []
    for line in lines:
        if not line.strip():
            if entries:
                entries[-1][1].append("")
            continue
        if not line.startswith((" ", "\t")):
            entries.append((line.strip(), []))
        elif entries:
            entries[-1][1].append(line)
        else:
            entries.append(("", [line]))
    out = []
    for head, body in entries:
        name, sep, kind = head.partition(" : ")
        title = f"<b>{_inline(name)}</b>" + (f" : <i>{_inline(kind)}</i>" if sep else "")
        out.append(f"<dt>{title}</dt><dd>{_prose(textwrap.dedent(chr(10).join(body)).splitlines())}</dd>")
    return "<dl>" + "".join(out) + "</dl>"


def _sections(doc: str) -> list[tuple[str, list[str]]]:
    """``[(heading or "", lines)]``: the text before the first heading, then each section."""
    lines = textwrap.dedent(doc.expandtabs()).strip("\n").splitlines()
    if lines:  # the summary line of a docstring is not indented like the rest
        rest = textwrap.dedent("\n".join(lines[1:])).splitlines()
        lines = [lines[0].strip(), *rest]
    sections: list[tuple[str, list[str]]] = [("", [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if (line.strip() and nxt and set(nxt) <= {"-"} and len(nxt) >= 3
                and not line.startswith(" ")):
            sections.append((line.strip(), []))
            i += 2
            continue
        sections[-1][1].append(line)
        i += 1
    return [(h, body) for h, body in sections if h or any(s.strip() for s in body)]


def docstring_html(doc: str, *, title: str = "") -> str:
    """``doc`` (numpydoc) as HTML for a QTextBrowser, under an optional ``title`` line."""
    parts = [f"<p><b>{html.escape(title, quote=False)}</b></p>"] if title else []
    for heading, body in _sections(doc or ""):
        if heading:
            parts.append(f"<h4>{html.escape(heading, quote=False)}</h4>")
        if heading.lower() in _LIST_SECTIONS:
            parts.append(_entries(body))
        else:
            parts.append(_prose(body))
    return "".join(parts)


def docstring_summary(doc: str) -> str:
    """The first paragraph of ``doc`` as plain text (markup removed), for a tooltip."""
    sections = _sections(doc or "")
    if not sections or sections[0][0]:
        return ""
    blocks = _blocks(sections[0][1])
    if not blocks:
        return ""
    text = " ".join(s.strip() for s in blocks[0])
    text = _LITERAL.sub(r"\1", text)
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if "~" in m.group(0)
                     else m.group(1), text)
    text = _BOLD.sub(r"\1", text)
    return _CITE.sub(r"\1", text)
