"""An independent reading of a report's HTML (the standard library's parser), for the offline and no-code checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

URL_ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "video": "src",
             "audio": "src", "embed": "src", "object": "data"}


@dataclass
class Page:
    classes: set[str] = field(default_factory=set)
    urls: list[tuple[str, str]] = field(default_factory=list)  # (tag, url) of every resource the page loads
    img_srcs: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # <a href>
    text: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__()
        self.page = page

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.page.classes.update((a.get("class") or "").split())
        if tag in URL_ATTRS and a.get(URL_ATTRS[tag]):
            self.page.urls.append((tag, a[URL_ATTRS[tag]]))
        if tag == "img":
            self.page.img_srcs.append(a.get("src") or "")
        if tag == "a" and a.get("href"):
            self.page.links.append(a["href"])

    def handle_data(self, data):
        self.page.text.append(data)


def read_page(path: Path) -> Page:
    page = Page()
    _Reader(page).feed(path.read_text(encoding="utf-8"))
    return page


def offline_problems(page: Page) -> list[str]:
    """Resources a page would fetch from the network, and images that are not embedded."""
    bad = [f"{tag} loads {url}" for tag, url in page.urls if url.lower().startswith(("http:", "https:", "//"))]
    bad += [f"img not embedded: {src[:60]}" for src in page.img_srcs if not src.startswith("data:image/")]
    return bad


def code_classes(page: Page) -> set[str]:
    """Classes that only appear when code inputs are rendered."""
    return page.classes & {"jp-InputArea-editor", "jp-CodeMirrorEditor", "highlight", "jp-InputPrompt"}
