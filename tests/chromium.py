"""Headless Chromium for tests of what a person sees in a page (``budgetctl report``).

``make browser`` installs the Debian package ``chromium`` if it is missing, and ``make test``
runs it first, so CI has it. Outside CI a machine without Chromium skips these tests with a
message; in CI (``CI=true``) a missing browser fails them: they must never pass unseen.

The page is opened from a ``file://`` URL with every host name unresolvable, so a page that
needed the network would show it. ``dump_dom`` returns the DOM after the page is laid out
(scripts, if any, have run); ``Page`` finds elements in it by id, class and tag.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def chromium() -> str:
    """The browser's path (``CHROMIUM`` overrides); skip, or fail in CI, without one."""
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI: headless Chromium is required for the browser tests (`make browser` installs it)")
    pytest.skip("headless Chromium not found: `make browser` installs it (Debian: apt-get install chromium)")


def _run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host name resolves
        f"--user-data-dir={profile}",
        *extra,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def dump_dom(page: Path, profile: Path) -> str:
    """The page's DOM as the browser built it."""
    return _run(page, profile, "--dump-dom").stdout


def screenshot(page: Path, profile: Path, target: Path, size: str = "1280,1800") -> Path:
    _run(page, profile, f"--screenshot={target}", f"--window-size={size}", "--hide-scrollbars")
    return target


def print_to_pdf(page: Path, profile: Path, target: Path) -> Path:
    """The page as the browser prints it (the page's print styles, A4 landscape)."""
    _run(page, profile, f"--print-to-pdf={target}", "--no-pdf-header-footer")
    return target


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find(self, tag: str | None = None, *, id_prefix: str = "", cls: str = "") -> list[Element]:
        found = []
        for child in self.children:
            if (
                (tag is None or child.tag == tag)
                and child.attrs.get("id", "").startswith(id_prefix)
                and (not id_prefix or "id" in child.attrs)
                and (not cls or cls in child.classes)
            ):
                found.append(child)
            found.extend(child.find(tag, id_prefix=id_prefix, cls=cls))
        return found

    def by_id(self, element_id: str) -> Element:
        matches = [e for e in self.find() if e.attrs.get("id") == element_id]
        assert len(matches) == 1, f"{len(matches)} elements with id {element_id!r}"
        return matches[0]

    @property
    def words(self) -> str:
        """The text a reader sees, whitespace collapsed."""
        return " ".join(self.text.split())


class Page(HTMLParser):
    """The DOM Chromium dumped, as a tree of ``Element`` (text includes descendants' text)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data
