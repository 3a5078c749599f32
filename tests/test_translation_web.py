"""The page's search box translates a prompt in another script, and
shows the English it searched as beside the results."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from tests.test_web import WebHelper
from tests.translation_fixtures import RUSSIAN, session_model

SHOWN = re.compile(
    r'<p id="translated"[^>]*>searched for “<span lang="en">(.*?)</span>” \(translated from “(.*?)”\)</p>'
)


@pytest.fixture(scope="session")
def marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Marian model in the layout a hub snapshot has."""
    return session_model(tmp_path_factory, "opus-mt-ru-en")


class TestTranslatedSearch(WebHelper):
    @pytest.fixture(autouse=True)
    def _translating(self, _web: None, marian: Path, tmp_path: Path) -> None:
        self.marian = tmp_path / "opus-mt-ru-en"
        shutil.copytree(marian, self.marian)
        self.config["audiofeatures"]["clap"]["translate"] = str(self.marian)
        self.embedded()

    def test_the_page_shows_the_english_beside_the_results(self):
        client = self.client()
        page = client.get("/", query_string={"q": RUSSIAN})
        shown = SHOWN.search(page.get_data(as_text=True))
        assert shown is not None
        english, typed = html.unescape(shown[1]), html.unescape(shown[2])
        assert typed == RUSSIAN
        assert english
        answer = client.get("/api/search", query_string={"q": RUSSIAN}).json
        assert answer["english"] == english
        assert answer["results"]

    def test_an_english_prompt_shows_no_translation(self):
        client = self.client()
        page = client.get("/", query_string={"q": "calm piano"})
        assert 'id="translated"' not in page.get_data(as_text=True)
        answer = client.get("/api/search", query_string={"q": "calm piano"})
        assert answer.json["english"] is None

    def test_a_prompt_asked_for_as_typed_is_searched_untranslated(self):
        client = self.client()
        page = client.get("/", query_string={"q": RUSSIAN})
        link = re.search(
            r'<a id="as-typed" href="([^"]+)"', page.get_data(as_text=True)
        )
        assert link is not None
        as_typed = client.get(html.unescape(link[1])).get_data(as_text=True)
        assert 'id="translated"' not in as_typed
        asked = {"q": RUSSIAN, "as_typed": "1"}
        answer = client.get("/api/search", query_string=asked).json
        assert answer["english"] is None
        self.config["audiofeatures"]["clap"]["translate"] = False
        untranslated = self.client().get(
            "/api/search", query_string={"q": RUSSIAN}
        )
        assert answer["results"] == untranslated.json["results"]
