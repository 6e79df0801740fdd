"""`make bench --markdown`: the README's block (Detect vs echo, the floor's summary) and the per-detector table
beside it, from the benchmark's own results."""

from __future__ import annotations

from benchmarks import bench, floor


def _result(name: str, reference: bool, onnx_1: float, native_n: float) -> floor.Result:
    return floor.Result(name, floor.Floor(10_000 if reference else 0, 1 if reference else 0, reference),
                        onnx_1=onnx_1, identity_1=5e-6, matmul_1=25e-6 if reference else float("nan"),
                        native_1=100e-6, native_n=native_n, onnx_n=4e-3, rel_error=1e-15, rows_timed=10_000)


def test_the_block_holds_the_echo_table_and_the_summary_and_floor_md_every_line(tmp_path):
    summary = floor.Summary([_result("hbos", False, 6e-6, 4e-3), _result("knn", True, 80e-6, 40e-3)],
                            failed=["cblof: ValueError"])
    lines = [floor.HEADER, *(floor.line(r) for r in summary.results)]
    echo = ["| rows | echo p50 | Detect p50 | ratio | echo p99 | Detect p99 | ratio |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            "| 1 | 497.0 µs | 649.0 µs | 1.31× | 900.0 µs | 1.10 ms | 1.22× |"]
    bench.write_markdown(tmp_path / "bench.md", summary, lines, echo, 3000)
    block = (tmp_path / "bench.md").read_text()
    assert block.startswith("\n".join(echo) + "\n\nDetect over gRPC against a bare echo RPC (same request, same "
                            "server), 3,000 calls each (1,000 rows: 300), interleaved; ")
    assert block.endswith(
        "Per detector ([floor.md](floor.md)): 1 row within 2× of the floor: 1 of 2 (identity floor 1 of 1, "
        "reference-set floor 0 of 1); misses: knn 3.2×; 10,000 rows at least 2× faster than native: 1 of 2; "
        "misses: hbos 1.00×; not measured (1): cblof: ValueError.\n")
    table = (tmp_path / "floor.md").read_text()
    assert table.startswith("# `make bench`: each detector's ONNX graph against its floor and against native\n")
    assert "```text\n" + "\n".join(lines) + "\n" + "\n".join(summary.lines()) + "\n```\n" in table
