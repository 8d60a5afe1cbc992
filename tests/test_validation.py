import numpy as np
import pytest

from hilovit.attention.checks import check_number
from hilovit.validation import FRACTION, MAPPING, POSITIVE, PROBABILITY, each, interval, one_of


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


def test_numpy_scalars_are_numbers():
    assert interval(1, integer=True).accepts(np.int64(3)) and not interval(integer=True).accepts(np.float32(3))
    assert PROBABILITY.accepts(np.float32(0.5)) and not PROBABILITY.accepts(np.float64("nan"))


def test_check_number_tells_a_wrong_kind_from_a_value_out_of_range():
    with pytest.raises(TypeError, match=r"alpha must be a number in \[0, 1\], got '0.5' \(str\)"):
        check_number("alpha", "0.5", PROBABILITY)
    with pytest.raises(ValueError, match=r"drop must be in \[0, 1\), got 1"):
        check_number("drop", 1, FRACTION)
    check_number("ratio", np.float32(4.0), POSITIVE)
