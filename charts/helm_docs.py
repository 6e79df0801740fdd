"""A chart's README from its values.yaml, in helm-docs' format (no helm-docs binary needed).

    python -m charts.helm_docs charts/pynomaly            write charts/pynomaly/README.md
    python -m charts.helm_docs --check charts/pynomaly    exit 1 when README.md is stale or a value is undocumented

The README is the chart's `README.header.md` (free text, kept by hand), then the table
`| Key | Type | Default | Description |` with one row per documented value. A value is documented by a comment
block starting `# --` right above its key (later `#` lines continue it). A documented map is one row (its whole
default shown); an undocumented map is descended into; an undocumented leaf is an error, so every value is covered.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+|\"[^\"]+\"):(?:\s|$)")
HEADER = "README.header.md"


def comments(values_text: str) -> dict[tuple[str, ...], str]:
    """Description of each commented key of a values.yaml, by key path."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the mappings enclosing the current line
    block: list[str] | None = None  # the `# --` comment being read
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            block = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if block is not None:
                block.append(stripped[1:].strip())
            continue
        match = KEY.match(line)
        if not match:  # a blank line, a list item or a continuation: ends any comment
            block = None if not stripped or stripped.startswith("-") else block
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match["key"].strip('"')
        path = (*(k for _, k in stack), key)
        if block is not None:
            found[path] = " ".join(part for part in block if part)
            block = None
        stack.append((indent, key))
    return found


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def rows(values: dict[str, Any], described: dict[tuple[str, ...], str]) -> tuple[list[tuple[str, ...]], list[str]]:
    """Table rows (key, type, default, description) in file order, and the dotted keys that lack a comment."""
    table: list[tuple[str, ...]] = []
    missing: list[str] = []

    def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = (*prefix, str(key))
            dotted = ".".join(path)
            if path in described:
                default = json.dumps(value, separators=(",", ":"))
                table.append((dotted, _type(value), f"`{default}`", described[path]))
            elif isinstance(value, dict) and value:
                walk(value, path)
            else:
                missing.append(dotted)

    walk(values, ())
    return table, missing


def readme(chart: Path) -> tuple[str, list[str]]:
    """The README text for a chart directory, and the values without a `# --` comment."""
    text = (chart / "values.yaml").read_text()
    table, missing = rows(yaml.safe_load(text) or {}, comments(text))
    header = (chart / HEADER).read_text().rstrip() if (chart / HEADER).exists() else f"# {chart.name}"
    lines = [header, "", "## Values", "", "| Key | Type | Default | Description |",
             "|-----|------|---------|-------------|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table]
    command = f"python -m charts.helm_docs charts/{chart.name}"
    lines += ["", f"<!-- Generated from values.yaml by `{command}`; do not edit. -->", ""]
    return "\n".join(lines), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m charts.helm_docs", description=__doc__.splitlines()[0])
    parser.add_argument("charts", nargs="+", type=Path, help="chart directories")
    parser.add_argument("--check", action="store_true", help="exit 1 if a README is stale; write nothing")
    args = parser.parse_args(argv)
    status = 0
    for chart in args.charts:
        text, missing = readme(chart)
        if missing:
            print(f"{chart}/values.yaml: no `# --` comment on {', '.join(missing)}", file=sys.stderr)
            status = 1
        target = chart / "README.md"
        if args.check:
            if not target.exists() or target.read_text() != text:
                print(f"{target} is stale: run `make chart-docs` and commit it", file=sys.stderr)
                status = 1
        elif not missing:
            target.write_text(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
