"""The documentation stays a guide: README.md fits in 20,000 characters, every relative link
in README.md and docs/*.md reaches a file (and, with ``#anchor``, a heading of it), and the
conf comments say what a parameter is, never what it scored (figures go to docs/results.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README_MAX_CHARS = 20_000
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline code and links keep their text, then lower
    case, every character that is not a letter, digit, ``_``, ``-`` or space dropped, and
    each space turned into ``-`` (so ``a · b`` gives ``a--b``)."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated slug gets ``-1``, ``-2``, ..."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    """The link targets of a page that are not URLs (outside code blocks and inline code)."""
    targets = []
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                targets.append(target)
    return targets


def test_readme_is_short():
    chars = len((REPO / "README.md").read_text(encoding="utf-8"))
    assert chars <= README_MAX_CHARS, (
        f"README.md has {chars} characters, more than {README_MAX_CHARS}: move detail to a "
        "docs/ page and measured figures to docs/results.md"
    )


def test_github_slug_rules():
    assert github_slug("Stage 0: `gt_labeling` (the seed's `gt_label.py`)") == (
        "stage-0-gt_labeling-the-seeds-gt_labelpy"
    )
    assert github_slug("2026-12-06 · Same command, same bytes") == (
        "2026-12-06--same-command-same-bytes"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{page.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


# A figure of merit in a conf comment: a metric name (AUC, Spearman, a success rate, the
# "AWBC+" shorthand), a percentage, points ("4.0 points above"), two or more decimals
# compared ("0.51 vs 0.69", "0.56 / 0.14"), a duration ("12 s", "4 min", "(18.8 s)"), or
# the words of a verdict ("measured", "no gain", "too few"). What a parameter is passes:
# units in words ("seconds per frame", "pixels"), one example value ("e.g. 0.99"), ranges
# ("(0, 100]"), choices ("a | b"), identifiers such as success_rate, and "2.5 ms" in a
# unit's definition.
FIGURE_OF_MERIT = re.compile(
    r"\bAUC\b|\bSpearman\b|\bsuccess rate|AWBC\+"
    r"|\d\s*%|\d\s*points?\b"
    r"|\d\.\d+\s*(?:/|vs\.?|against)\s*\d*\.\d+"
    r"|\b\d+(?:\.\d+)?\s?(?:s|sec|min|h)\b(?!-)"
    r"|\bmeasured\b|\bno gain\b|\btoo few\b",
    re.IGNORECASE,
)


def conf_comments() -> list[tuple[str, int, str]]:
    """(file, line, comment text) of every YAML comment under conf/: a ``#`` that starts the
    line or follows a space (YAML's rule; ``#`` inside a value such as a URL is not one)."""
    out = []
    for path in sorted((REPO / "conf").rglob("*.yml")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = re.search(r"(?:^|\s)#(.*)$", line)
            if match:
                out.append((str(path.relative_to(REPO)), i, match.group(1)))
    return out


def test_figure_of_merit_pattern():
    for scored in [
        "(split 0 held-out AUC: 0.789 at 1.0)",
        "quantile lowered the demo's success: 0.51 vs 0.69 at 5000 steps",
        "positive / negative / BC / guided: 0.56 / 0.14 / 0.41 / 0.58",
        "AWBC+ 0.09 at 48 px",
        "KAI0, 1200 steps: about 4 min",
        "the whole run (18.8 s)",
        "55.4% of frames positive",
        "augmentation: no gain on the demo",
        "negative 4.0 points above unconditional on average",
        "48 is too few for AWBC to pull ahead of plain BC",
    ]:
        assert FIGURE_OF_MERIT.search(scored), scored
    for described in [
        "percent of frames (per group) labelled positive, (0, 100]",
        "rollout time limit in seconds per frame",
        "e.g. 0.99: a moving average of the weights",
        "Meta-World's control rate (5 substeps of 2.5 ms)",
        "the closed-loop table's column summarised: success_rate | mean_final_progress",
        "of the actions: quantile (q01/q99 -> [-1, 1], as openpi's pi0.5) | mean_std",
        "(min, max) steps of a takeover",
        "32 spatial-softmax keypoints of the last map",
        "rollouts per condition (>= 50 for the report)",
    ]:
        assert not FIGURE_OF_MERIT.search(described), described


def test_conf_comments_hold_no_figures_of_merit():
    """No comment under conf/ matches FIGURE_OF_MERIT (the comment above it says what it
    catches and what it lets through; test_figure_of_merit_pattern pins both)."""
    found = [
        f"{path}:{line}: {text.strip()}"
        for path, line, text in conf_comments()
        if FIGURE_OF_MERIT.search(text)
    ]
    assert not found, (
        "conf comments say what a parameter is and its choices, not what it scored; move "
        "these figures to docs/results.md (date, commit, command):\n" + "\n".join(found)
    )
