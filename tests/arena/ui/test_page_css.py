"""The page's own CSS: the font files it points at exist in the installed Gradio and are whole."""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from arena.ui.common import PAGE_CSS


def test_semibold_comes_from_complete_bold_files() -> None:
    frontend = Path(gr.__file__).parent / "templates" / "frontend"
    urls = re.findall(r'url\("([^"]+)"\)', PAGE_CSS)
    assert len(urls) == 2 and PAGE_CSS.count("font-weight: 600") == 2
    for url in urls:
        font = frontend / url
        # a complete Latin face is tens of KB; the semibold files Gradio ships are ~5 KB subsets
        assert font.is_file() and font.stat().st_size > 30_000, font
