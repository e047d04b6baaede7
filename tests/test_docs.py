"""The README's metric tables and the family table say the same thing; links resolve."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.exposition.families import FAMILIES, PROCESS_PREFIX

README = Path(__file__).parent.parent / "README.md"
PER_SERVER = ("account", "region", "server_id")


def metrics_section() -> str:
    return README.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]


def metric_rows() -> dict[str, tuple[set[str], bool]]:
    """metric -> (labels named in its row, whether the table lists extra labels only)."""
    section = metrics_section()
    rows: dict[str, tuple[set[str], bool]] = {}
    extra_only = False
    for line in section.splitlines():
        if line.startswith("| metric |"):
            extra_only = "extra labels" in line
        match = re.match(r"\| `([a-z0-9_]+)` \|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = (set(re.findall(r"`([a-z_]+)`", match.group(2))), extra_only)
    return rows


def test_every_family_is_documented_with_its_labels() -> None:
    rows = metric_rows()
    assert set(rows) == {f.name for f in FAMILIES}
    for family in FAMILIES:
        labels, extra_only = rows[family.name]
        expected = set(family.labels) - set(PER_SERVER) if extra_only else set(family.labels)
        assert labels == expected, family.name


def test_the_process_families_have_one_row_of_their_own() -> None:
    """``process_*`` is documented once, and no family of ours uses its prefix."""
    rows = re.findall(r"^\| `([a-z_]+)\*` \|", metrics_section(), re.MULTILINE)
    assert rows == [PROCESS_PREFIX]
    assert not [f.name for f in FAMILIES if f.name.startswith(PROCESS_PREFIX)]


DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (code blocks left out)."""
    found, fence = set(), False
    for line in path.read_text().splitlines():
        fence ^= line.startswith("```")
        heading = re.match(r"#{1,6} (.*)", line)
        if heading and not fence:
            found.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return found


def test_links_between_the_documents_resolve() -> None:
    """Every relative link of the README and docs/ names a file that exists, and a heading
    of it when it has an anchor (sections moved between them must not leave links behind)."""
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, anchor = target.partition("#")
            dest = (path.parent / name).resolve() if name else path
            missing = anchor and dest.suffix == ".md" and anchor not in anchors(dest)
            if not dest.exists() or missing:
                broken.append(f"{path.name}: {target}")
    assert broken == []
