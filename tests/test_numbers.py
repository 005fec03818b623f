import math

from introspect.analysis.numbers import MISSING, format_number, summarise


def test_format_number_shows_missing_values_as_a_dash():
    assert format_number(None) == MISSING and format_number(math.nan) == MISSING
    assert format_number(1.234) == "1.23" and format_number(0.5, "+.1f") == "+0.5"


def test_summarise_matches_a_hand_computed_t_interval():
    s = summarise([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2) = 4.302652729911275
    assert s.n == 3 and s.mean == 2.0 and s.std == 1.0
    assert math.isclose(s.half_width, 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)


def test_summarise_of_one_value_has_no_spread():
    s = summarise([5.0])
    assert s.mean == 5.0 and math.isnan(s.std) and math.isnan(s.low)
    assert summarise([]).n == 0
