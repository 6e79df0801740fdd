"""`make perf-readme`: the README's Performance figures, copied from what the benchmarks wrote.

Each benchmark that the README quotes writes its table with `--markdown benchmarks/results/NAME.md` (the make
targets below do), and the README holds each such file between two markers:

    <!-- results: NAME (written by `make TARGET`; edit the benchmark, not this) -->
    ...the file, as written...
    <!-- /results: NAME -->

This rewrites the blocks from the files; `--check` only says which differ (tests/unit/test_readme.py runs it), so
the README's figures are a benchmark's output, never typed by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- results: ([a-z0-9-]+) \(.*?\) -->\n)(.*?)(<!-- /results: \2 -->)", re.S)


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, content) of each results block, in order."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def rewrite(text: str, results: Path = RESULTS) -> str:
    """The text with every block's content replaced by its file's; FileNotFoundError names a missing one."""
    def fill(m: re.Match[str]) -> str:
        path = results / f"{m.group(2)}.md"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the benchmark the README names for {m.group(2)!r}")
        return m.group(1) + path.read_text().rstrip("\n") + "\n" + m.group(4)

    return BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report the blocks that differ from their files")
    parser.add_argument("--readme", default=str(ROOT / "README.md"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    text = readme.read_text()
    try:
        new = rewrite(text)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    stale = [name for (name, old), (_, fresh) in zip(blocks(text), blocks(new), strict=True) if old != fresh]
    if args.check:
        for name in stale:
            print(f"README.md: the {name!r} block differs from benchmarks/results/{name}.md (make perf-readme)",
                  file=sys.stderr)
        return 1 if stale else 0
    readme.write_text(new)
    print(f"README.md: {len(blocks(text))} results blocks, {len(stale)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
