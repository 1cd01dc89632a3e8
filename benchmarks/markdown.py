"""Writing one benchmark's section of BENCHMARKS.md, leaving every other section as it is."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(path: Path, start: str, end: str, heading: str, body: str) -> None:
    """Replace the text between the ``start`` / ``end`` markers; add heading and markers where absent."""
    block = f"{start}\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
    path.write_text(text)
