"""The README stays a readable document: each section once, a sane size, and every `make` target it names exists."""

import re

from conftest import REPO


def test_each_section_once_and_a_sane_size():
    text = (REPO / "README.md").read_text()
    assert len(text) < 64_000, f"README.md is {len(text):,} characters"
    headings = [line for line in text.splitlines() if re.match(r"#{1,3} \S", line) and not line.startswith("# →")]
    assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)


def test_make_targets_named_in_the_readme_exist():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][a-z-]*)", (REPO / "README.md").read_text()))
    assert named and named <= targets, named - targets
