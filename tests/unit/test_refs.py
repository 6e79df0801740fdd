import pytest

from pynomaly.errors import InvalidArgument
from pynomaly.refs import ModelRef, check_alias, parse_ref


@pytest.mark.parametrize(
    "text, ref",
    [
        ("cardio", ModelRef("cardio")),
        ("cardio@3", ModelRef("cardio", version=3)),
        ("cardio:production", ModelRef("cardio", alias="production")),
        ("cardio:latest", ModelRef("cardio")),
        ("a.b-c_9@12", ModelRef("a.b-c_9", version=12)),
    ],
)
def test_parse_ref(text, ref):
    assert parse_ref(text) == ref
    assert str(ref) == text.replace(":latest", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "model is required"),
        ("cardio@", "positive integer"),
        ("cardio@0", "positive integer"),
        ("cardio@x", "positive integer"),
        ("-bad", "is invalid"),
        ("a/b", "is invalid"),
        ("x" * 65, "is invalid"),
        ("cardio:bad alias", "alias 'bad alias' is invalid"),
        ("cardio\n", "model 'cardio\\\\n' is invalid"),  # re.match with $ matched before the newline
        ("cardio:prod\n", "alias 'prod\\\\n' is invalid"),
        ("cardio@1\n", "positive integer"),
        ("cardio@²", "positive integer"),  # str.isdigit accepts it, int refuses it
        ("cardio@١", "positive integer"),  # int reads it as 1
        ("cardio@" + "9" * 19, "at most 18"),
    ],
)
def test_parse_ref_rejects(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_ref(text)


@pytest.mark.parametrize("alias, message", [("123", "all digits"), ("latest", "reserved"), ("a b", "invalid"),
                                            ("prod\n", "invalid"), ("١٢", "invalid")])
def test_check_alias_rejects(alias, message):
    with pytest.raises(InvalidArgument, match=message):
        check_alias(alias)
