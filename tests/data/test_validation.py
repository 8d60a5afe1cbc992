import pytest

from hilovit.data.validation import MAPPING, each, interval, one_of


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        (interval(1, integer=True), 0, "n must be an integer >= 1, got 0"),
        (interval(1, integer=True), True, "n must be an integer >= 1, got True"),
        (interval(0, 1, high_open=True), 1, r"n must be in \[0, 1\), got 1"),
        (interval(0, low_open=True), float("nan"), "n must be > 0, got nan"),
        (interval(), "1", "n must be a number, got '1'"),
        (one_of(("a", "b")), "c", "n must be one of 'a', 'b', got 'c'"),
        (each(interval(1, integer=True), length=3), [1, 2], "n must be a list of 3 items, each an integer >= 1"),
        (MAPPING, [1], r"n must be a mapping, got \[1\]"),
    ],
)
def test_rules_name_the_value_and_what_was_expected(rule, value, message):
    assert not rule.accepts(value)
    with pytest.raises(ValueError, match=message):
        rule.check("n", value)


def test_rules_accept_valid_values():
    assert interval(0, 1).accepts(0) and interval(0, 1).accepts(1.0)
    assert each(interval(1, integer=True)).accepts((1, 2)) and one_of(("a",)).accepts("a") and MAPPING.accepts({})
