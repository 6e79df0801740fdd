"""Every .proto file declares the options other languages' generators need (go_package, java_package, …), one set
per proto package, so clients generate stubs with plain `protoc`/`buf generate` and no per-file flags."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from proto_files import PROTOS, compile_protos

# Per proto package: the import path / namespace each language gets (docs/clients.md names them).
EXPECTED = {
    "pynomaly.v1": {
        "go_package": "github.com/pynomaly/pynomaly/gen/go/pynomaly/v1;pynomalyv1",
        "java_package": "io.github.pynomaly.v1", "csharp_namespace": "Pynomaly.V1", "php_namespace": "Pynomaly\\V1",
        "ruby_package": "Pynomaly::V1", "objc_class_prefix": "PYN",
    },
    "inference": {
        "go_package": "github.com/pynomaly/pynomaly/gen/go/pynomaly/oip/v2;oipv2",
        "java_package": "io.github.pynomaly.oip.v2", "csharp_namespace": "Pynomaly.Oip.V2",
        "php_namespace": "Pynomaly\\Oip\\V2", "ruby_package": "Pynomaly::Oip::V2", "objc_class_prefix": "OIP",
    },
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return compile_protos(tmp_path_factory.mktemp("protos"))


def test_every_proto_file_is_checked(files):
    assert len(PROTOS) == 6 and {f.package for f in files} == set(EXPECTED)


@pytest.mark.parametrize("index", range(len(PROTOS)), ids=PROTOS)
def test_language_options(files, index):
    f = files[index]
    for option, value in EXPECTED[f.package].items():
        assert getattr(f.options, option) == value, f"{f.name}: option {option}"
    assert f.options.java_multiple_files
    # The Java outer class: the file's name in PascalCase + "Proto", clashing with no message, enum or service.
    stem = f.name.rsplit("/", 1)[-1].removesuffix(".proto")
    assert f.options.java_outer_classname == "".join(w.title() for w in stem.split("_")) + "Proto"
    types = {t.name for t in (*f.message_type, *f.enum_type, *f.service)}
    assert f.options.java_outer_classname not in types


def test_go_import_path_follows_the_file_path(files):
    """protoc-gen-go's rule: the files of one Go package share a directory, so one proto package, one go_package;
    the import path ends in the proto file's directory."""
    by_package = defaultdict(set)
    for f in files:
        by_package[f.package].add(f.options.go_package)
        path, _, name = f.options.go_package.partition(";")
        assert path.endswith("/gen/go/" + f.name.rsplit("/", 1)[0]) and re.fullmatch(r"[a-z][a-z0-9]*", name)
    assert all(len(v) == 1 for v in by_package.values())


def test_java_outer_classnames_are_unique(files):
    classes = [(f.options.java_package, f.options.java_outer_classname) for f in files]
    assert len(set(classes)) == len(classes)
