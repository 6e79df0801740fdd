"""The detector catalogue as Markdown (docs/detectors.md): every registered algorithm, how it is served and why.

    python -m pynomaly.algorithms.catalog > docs/detectors.md      (make detectors-doc)

Written from the registry, so it cannot drift: tests/unit/test_algorithms.py compares the file with `markdown()`.
"""

from __future__ import annotations

from pynomaly import algorithms

_SERVING = {"exact": "served exactly", "frozen": "served frozen", "refused": "**refused**"}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown() -> str:
    rows = sorted(algorithms.ALGORITHMS.values(), key=lambda a: (a.serving == "refused", a.name))
    counts = {s: sum(a.serving == s for a in rows) for s in _SERVING}
    pyod = sum(a.implementation.startswith("pyod.") for a in rows if a.serving != "refused")
    lines = [
        "# Detectors",
        "",
        "Generated from the algorithm registry by `make detectors-doc`; `pynomaly algorithms` (ListAlgorithms) says",
        "the same, with each hyperparameter. **Served exactly**: a row's served score equals the library's own, in any",
        "batch. **Served frozen**: the library scores new rows relative to the batch they come in; the graph freezes",
        "what the training data defines, and a row scores as the library scores it alone (the export check compares",
        "with exactly that). **Refused**: training fails with `FAILED_PRECONDITION` (`NOT_EXPORTABLE`), for the reason",
        "given. *Labels*: learns from them (`--label-column`, `labels`); training without them is `LABELS_REQUIRED`.",
        "*Max rows*: training refuses more (`TOO_MANY_ROWS`).",
        "",
        f"{counts['exact']} served exactly, {counts['frozen']} served frozen, {counts['refused']} refused; "
        f"{pyod} of the served are PyOD's.",
        "",
        "| algorithm | implementation | status | labels | max rows | how it is served, or why not |",
        "|---|---|---|---|---|---|",
    ]
    for a in rows:
        labels = "yes" if a.needs_labels else ""
        lines.append(f"| `{a.name}` | `{a.implementation}` | {_SERVING[a.serving]} | {labels} | "
                     f"{a.max_training_rows or ''} | {_cell(a.export_note)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
