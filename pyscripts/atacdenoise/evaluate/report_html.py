"""HTML pieces of the report: the page and its tables (jinja2 templates), model cards (the ``markdown`` package).

Every value that reaches the page is escaped (jinja2's autoescape, ``Markup.format``);
only the pieces built here are marked safe. The page refers to nothing outside
itself: figures are inline PNGs and links in a model card become plain text.
"""

from __future__ import annotations

import base64
import io
import re
import time
from dataclasses import dataclass
from xml.etree import ElementTree

import jinja2
import markdown
from markupsafe import Markup

_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("atacdenoise.evaluate", "templates"),
                                autoescape=True, trim_blocks=True, lstrip_blocks=True,
                                undefined=jinja2.StrictUndefined)
_NUMBER = re.compile(r"-?[\d.,]+(e[-+]?\d+)?( %)?")


@dataclass
class Section:
    anchor: str
    title: str
    body: Markup


def page(title: str, sections: list[Section], note: str | None = None,
         nav: list[tuple[str, str]] | None = None) -> str:
    """The whole page; ``nav`` defaults to one link per section."""
    from atacdenoise import __version__

    nav = nav if nav is not None else [(s.anchor, s.title) for s in sections]
    return _TEMPLATES.get_template("report.html.j2").render(
        title=title, note=note, nav=nav, sections=sections, version=__version__,
        made=time.strftime("%Y-%m-%d %H:%M"))


def table(rows, header: list[str] | None = None) -> Markup:
    """A table; without ``header`` a key-value table whose first column heads each row (no empty header row)."""
    cells = [[{"text": str(value), "num": _is_number(str(value))} for value in row] for row in rows]
    return Markup(_TEMPLATES.get_template("table.html.j2").render(header=header, rows=cells))


def _is_number(text: str) -> bool:
    return text in ("undefined", "-") or _NUMBER.fullmatch(text) is not None


def paragraph(text: str, strong: bool = False) -> Markup:
    return Markup("<p><strong>{}</strong></p>\n" if strong else "<p>{}</p>\n").format(text)


def heading(text: str) -> Markup:
    return Markup("<h3>{}</h3>\n").format(text)


def png(fig, alt: str) -> Markup:
    """A matplotlib figure as an inline PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return png_bytes(buffer.getvalue(), alt)


def png_bytes(data: bytes, alt: str) -> Markup:
    return Markup('<img alt="{}" src="data:image/png;base64,{}">').format(alt, base64.b64encode(data).decode())


# ---------------------------------------------------------------- model cards

def markdown_to_html(text: str) -> str:
    """A model card (markdown) as HTML to sit under one of the report's h2 headings.

    Raw HTML in the card is shown as text, never run; headings move down two
    levels (``#`` -> h3); links and images become their text with the address
    in brackets, so the page still refers to nothing outside itself.
    """
    return markdown.markdown(text, extensions=["tables", "fenced_code", _CardExtension()])


class _CardExtension(markdown.Extension):
    def extendMarkdown(self, md):  # noqa: N802 (the markdown package's name)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.preprocessors.register(_ListAfterParagraph(md), "atacdenoise_lists", 5)
        md.treeprocessors.register(_CardTree(md), "atacdenoise_card", 1)  # after 'inline' (20) made the links


class _ListAfterParagraph(markdown.preprocessors.Preprocessor):
    """A blank line before a list that follows a paragraph line directly.

    The cards are written for GitHub, where such a list starts a list; Python-Markdown
    would print its items as '- ' lines of the paragraph.
    """

    ITEM = re.compile(r" {0,3}([-*+]|\d+\.) ")

    def run(self, lines: list[str]) -> list[str]:
        out, in_list, in_code = [], False, False
        for line in lines:
            if line.lstrip().startswith(("```", "~~~")):
                in_code = not in_code
            item = not in_code and self.ITEM.match(line) is not None
            if item and not in_list and out and out[-1].strip():
                out.append("")
            in_list = (in_list or item) and bool(line.strip())
            out.append(line)
        return out


class _CardTree(markdown.treeprocessors.Treeprocessor):
    def run(self, root: ElementTree.Element) -> None:
        for element in root.iter():
            if re.fullmatch(r"h[1-6]", element.tag):
                element.tag = f"h{min(int(element.tag[1]) + 2, 6)}"
        for parent in list(root.iter()):
            for child in [c for c in parent if c.tag in ("a", "img")]:
                _unwrap(parent, child)


def _unwrap(parent: ElementTree.Element, child: ElementTree.Element) -> None:
    """Replace ``<a href=u>text</a>`` or ``<img alt=text src=u>`` by ``text (u)``, keeping the child's own markup."""
    address = child.get("href") or child.get("src") or ""
    label = "".join(child.itertext()) if child.tag == "a" else child.get("alt", "")
    if child.tag == "a" and len(child):  # formatted link text (e.g. **bold**): keep its elements, drop the link
        child.tag, child.attrib = "span", {}
        child.tail = f" ({address})" + (child.tail or "")
        return
    text = f"{label} ({address})" if label and label != address else address
    index = list(parent).index(child)
    text += child.tail or ""
    if index == 0:
        parent.text = (parent.text or "") + text
    else:
        previous = parent[index - 1]
        previous.tail = (previous.tail or "") + text
    parent.remove(child)
