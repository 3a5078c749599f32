"""The page's address as a new user types it."""

from __future__ import annotations

import pytest

from tests.test_web import WebHelper


class TestThePagesCount(WebHelper):
    """``n`` in the page's address is ``-n``: a count of 1 or more."""

    @pytest.mark.parametrize("asked", ["0", "-3"])
    def test_zero_or_less_is_refused_as_on_the_command_line(self, asked: str):
        self.embedded()
        client = self.client()
        for address in (
            f"/api/search?q=rain&n={asked}",
            f"/api/radio/1?n={asked}",
        ):
            answer = client.get(address)
            assert answer.status_code == 400, address
            assert answer.get_json() == {
                "error": f"n must be 1 or more, not {asked}"
            }

    def test_a_count_is_still_the_number_of_results(self):
        self.embedded()
        answer = self.client().get("/api/search?q=rain&n=2")
        assert len(answer.get_json()["results"]) == 2
