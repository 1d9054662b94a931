"""The deadline rule of tests/polling.py that the tests' wait helpers share."""

from __future__ import annotations

import pytest

from tests.polling import polls


def test_the_first_try_is_at_once_even_with_no_time() -> None:
    tries = polls(0.0, "never")
    assert next(tries) is None


def test_tries_continue_until_the_deadline_then_fail() -> None:
    tries = 0
    with pytest.raises(AssertionError, match="gave up"):
        for _ in polls(0.05, "gave up"):
            tries += 1
    assert tries > 1
