"""Fonts for the charts: Noto Sans CJK from the install, a stale matplotlib font cache repaired, and the characters
that no font could draw (so that a chart is never silently full of boxes)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from .i18n import t, to_html

#: The family charts ask for first: Noto Sans CJK SC draws Chinese and Latin alike; then the CJK fonts a system may
#: have, then matplotlib's own DejaVu Sans (Latin only).
FONT_STACK = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei",
              "PingFang SC", "DejaVu Sans"]
#: The font a reader is told to install when characters cannot be drawn, and the pip package that carries it.
NEEDED_FONT, FONT_PACKAGE = "Noto Sans CJK SC", "noto-cjk-sans-otc"

_GLYPH_WARNING = re.compile(r"Glyph \d+ \((.*)\) missing from font\(s\) (.+?)\.?$", re.S)


@dataclass(frozen=True)
class ChartFonts:
    """What the charts draw Chinese with on this machine (recorded in the run's manifest)."""

    family: str | None  #: the first family of :data:`FONT_STACK` that matplotlib found (None: none of them)
    path: str | None  #: its file
    bundled: str | None  #: the file of the Noto Sans CJK installed with funnel_lab (None: the package is missing)
    cache_repaired: int  #: system font files matplotlib's cached font list did not know, added to it (0: it was current)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def prepare_fonts() -> ChartFonts:
    """Make the CJK fonts known to matplotlib, once per process.

    The cached font list is repaired first (:func:`repair_font_cache`), so that it is written without the bundled
    font, whose file lives in the environment rather than on the system; then the bundled Noto Sans CJK is
    registered for this process (no cache, no root).
    """
    from matplotlib import font_manager as fm

    repaired = repair_font_cache()
    bundled = bundled_font()
    if bundled and bundled not in {f.fname for f in fm.fontManager.ttflist}:
        fm.fontManager.addfont(bundled)
    family, path = _first_family()
    return ChartFonts(family=family, path=path, bundled=bundled, cache_repaired=repaired)


def bundled_font() -> str | None:
    """The Noto Sans CJK collection that pip installs with funnel_lab (package ``noto-cjk-sans-otc``)."""
    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return None
    return str(FONT_PATH) if Path(str(FONT_PATH)).is_file() else None


def repair_font_cache(manager=None, cache_file: Path | None = None) -> int:
    """Add the system fonts that matplotlib's cached font list misses, and write the list again.

    matplotlib scans the system's fonts once and caches the list; a font installed after that (e.g. Debian's
    ``fonts-noto-cjk``) stays unknown until the cache is deleted, and Chinese labels are drawn as boxes.

    Parameters
    ----------
    manager : matplotlib.font_manager.FontManager, optional
        matplotlib's own (``font_manager.fontManager``) by default.
    cache_file : path, optional
        Where the list is written; matplotlib's cache file by default.

    Returns
    -------
    int
        Font files added (0 when the list knew every system font; nothing is written then).
    """
    import matplotlib
    from matplotlib import font_manager as fm

    manager = manager or fm.fontManager
    known = {f.fname for f in manager.ttflist}
    added = 0
    for path in fm.findSystemFonts():
        if path in known:
            continue
        try:
            manager.addfont(path)
            added += 1
        except (OSError, RuntimeError, ValueError):
            pass  # a file FreeType cannot read: matplotlib's own scan leaves it out too
    if added:
        cache_file = cache_file or Path(matplotlib.get_cachedir()) / f"fontlist-v{fm.FontManager.__version__}.json"
        fm.json_dump(manager, str(cache_file))
    return added


def _first_family() -> tuple[str | None, str | None]:
    from matplotlib import font_manager as fm

    for family in FONT_STACK[:-1]:
        try:
            return family, str(fm.findfont(fm.FontProperties(family=family), fallback_to_default=False))
        except ValueError:
            continue
    return None, None


def glyph_notice(chars: str, lang: str, *, html_id: str = "") -> str:
    """The red box that says which characters the charts could not draw, and how to get the font that draws them."""
    text = to_html(t("fonts.missing", lang, n=len(chars), chars=" ".join(chars), font=NEEDED_FONT,
                     package=FONT_PACKAGE))
    return f'<div class="fl-banner fl-banner-error"{f" id={html_id!r}" if html_id else ""}>{text}</div>'


def missing_glyphs(caught) -> list[str]:
    """The characters that matplotlib warned it could not draw, from recorded warnings, in order, once each."""
    chars: dict[str, None] = {}
    for w in caught:
        m = _GLYPH_WARNING.match(str(w.message))
        if m:
            chars[_character(m.group(1))] = None
    return list(chars)


def is_glyph_warning(w) -> bool:
    return bool(_GLYPH_WARNING.match(str(w.message)))


def _character(text: str) -> str:
    # matplotlib writes the character itself or its name as \N{...}
    if text.startswith("\\N{"):
        import unicodedata

        try:
            return unicodedata.lookup(text[3:-1])
        except KeyError:
            return text
    return text
