"""For the benchmark scripts: replace one `## ` section of docs/benchmarks.md, leaving the others alone."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` (up to the next `## `) by `text` where it stands;
    append it when the file has no such section."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(heading)
    if start == -1:
        path.write_text(old.rstrip() + "\n\n" + text.rstrip() + "\n")
        return
    end = old.find("\n## ", start + len(heading))
    rest = old[end + 1 :] if end != -1 else ""
    path.write_text(old[:start] + text.rstrip() + "\n" + ("\n" + rest if rest else ""))
