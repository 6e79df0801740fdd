"""The README stays a readable document: each section once, a sane size, and every `make` target it names exists."""

import re

import pytest

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


def test_the_performance_figures_are_the_benchmarks_output(capsys, tmp_path):
    """Each results block of the README holds its benchmark's file as written (make perf-readme); an edited figure
    is named, and a block whose file is missing says which benchmark to run."""
    from benchmarks import readme_results

    text = (REPO / "README.md").read_text()
    assert {"peers", "memory", "workers", "bench"} <= {name for name, _ in readme_results.blocks(text)}
    assert readme_results.main(["--check"]) == 0
    name, content = readme_results.blocks(text)[0]
    edited = tmp_path / "README.md"
    edited.write_text(text.replace(content, content.replace("|", "| 1 ", 1), 1))
    assert readme_results.main(["--check", "--readme", str(edited)]) == 1
    assert capsys.readouterr().err == (f"README.md: the {name!r} block differs from benchmarks/results/{name}.md "
                                       "(make perf-readme)\n")
    block = "<!-- results: nothing-here (written by `make x`; edit the benchmark, not this) -->\n<!-- /results: " \
            "nothing-here -->"
    with pytest.raises(FileNotFoundError, match=r"nothing-here.md is missing: run the benchmark the README names"):
        readme_results.rewrite(block)
