"""Model names, aliases and references: "name", "name@3", "name:alias".

Every check is a full match over ASCII classes: `re.match(...$)` would accept a trailing newline, and `str.isdigit`
/ `\\d` accept digits `int` refuses ("²") or reads as ASCII ones ("١" is 1). Names reach the store's paths."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pynomaly.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGITS = re.compile(r"[0-9]+")
MAX_VERSION_DIGITS = 18  # versions are int64 on the wire


def is_digits(text: str) -> bool:
    """True for a non-empty string of ASCII digits only."""
    return _DIGITS.fullmatch(text) is not None


def check_name(name: str, field: str = "model_name") -> str:
    if not name:
        raise InvalidArgument(f"{field} is required", reason="INVALID_REFERENCE", field=field)
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"{field} {name!r} is invalid: use 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit",
            reason="INVALID_REFERENCE", field=field)
    return name


def check_alias(alias: str) -> str:
    check_name(alias, "alias")
    if is_digits(alias):
        raise InvalidArgument(f"alias {alias!r} is invalid: an alias cannot be all digits", reason="INVALID_REFERENCE",
                              field="alias")
    if alias == "latest":
        raise InvalidArgument("alias 'latest' is reserved: a plain model name already means the latest version",
                              reason="INVALID_REFERENCE", field="alias")
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference. At most one of `version` and `alias` is set; neither means the latest version."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias is not None:
            return f"{self.name}:{self.alias}"
        return self.name


def parse_ref(ref: str, field: str = "model") -> ModelRef:
    if not ref:
        raise InvalidArgument(f"{field} is required (a model reference: 'name', 'name@3' or 'name:alias')",
                              reason="INVALID_REFERENCE", field=field)
    if "@" in ref:
        name, _, version = ref.partition("@")
        check_name(name, field)
        if not is_digits(version) or len(version) > MAX_VERSION_DIGITS or int(version) < 1:
            raise InvalidArgument(f"{field} {ref!r}: the version after '@' must be a positive integer "
                                  f"(ASCII digits, at most {MAX_VERSION_DIGITS})",
                                  reason="INVALID_REFERENCE", field=field)
        return ModelRef(name, version=int(version))
    if ":" in ref:
        name, _, alias = ref.partition(":")
        check_name(name, field)
        if alias == "latest":
            return ModelRef(name)
        check_name(alias, f"{field} alias")
        return ModelRef(name, alias=alias)
    return ModelRef(check_name(ref, field))
