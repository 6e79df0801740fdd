"""Benchmarks and the parity runner: tools run from the repository root (`make bench`, `make bench-ray`,
`make parity`), not part of the installed package."""
