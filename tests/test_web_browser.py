"""``beet clapweb``'s page in a real browser: headless Chromium driven
by Selenium types a prompt, plays a result, opens the map, selects on it
and saves a playlist (the tiny random model serves; semantics are not
judged)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium_paths, headless_chromium, served
from tests.test_web import WebHelper

pytest.importorskip("selenium", reason="the test extra is not installed")

if chromium_paths() is None:
    if os.environ.get("CI"):
        pytest.fail(
            "chromium and chromedriver are missing: scripts/system-deps.sh"
        )
    pytest.skip(
        "chromium and chromedriver are missing", allow_module_level=True
    )

WAIT = 30


class TestInTheBrowser(WebHelper):
    @pytest.fixture
    def browser(self) -> Any:
        with headless_chromium() as driver:
            yield driver

    def wait(self, driver: Any, script: str) -> Any:
        """Until the script returns something true; that value."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(driver, WAIT).until(
            lambda d: d.execute_script(script)
        )

    def test_search_listen_map_select_and_save(self, browser: Any) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        ids = self.embedded()
        with served(self.client().application) as address:
            browser.get(address + "/")
            prompt = browser.find_element(By.ID, "prompt")
            prompt.send_keys("rainy night jazz piano", Keys.ENTER)
            rows = self.wait(
                browser,
                "const r = document.querySelectorAll('#results tbody tr');"
                "return r.length ? r.length : 0",
            )
            assert rows == len(ids)
            assert "q=rainy+night+jazz+piano" in browser.current_url

            # playback: the first result's player gets its audio
            state = self.wait(
                browser,
                "const a = document.querySelector('#results audio');"
                "if (a.paused && a.readyState < 2) a.play();"
                "return a.readyState >= 2 ? a.readyState : 0",
            )
            assert state >= 2

            # the map: every track drawn, the results highlighted
            browser.find_element(By.ID, "show-map").click()
            points = self.wait(
                browser, "return document.getElementById('map').dataset.points"
            )
            assert int(points) == len(ids)
            drawn = browser.execute_script(
                "const d = document.getElementById('map')._fullData;"
                "return d.filter(t => t.name !== 'results')"
                ".reduce((n, t) => n + t._length, 0)"
            )
            assert drawn == len(ids)

            # a box around the whole map selects every track
            browser.execute_script(
                "Plotly.relayout('map', {dragmode: 'select'})"
            )
            area = browser.find_element(By.CSS_SELECTOR, "#map .nsewdrag")
            width, height = area.size["width"], area.size["height"]
            ActionChains(browser).move_to_element_with_offset(
                area, -width // 2 + 2, -height // 2 + 2
            ).click_and_hold().move_by_offset(
                width // 2, height // 2
            ).move_by_offset(
                width // 2 - 4, height // 2 - 4
            ).release().perform()
            heading = self.wait(
                browser,
                "const h = document.getElementById('heading').textContent;"
                "return h.includes('selected on the map') ? h : ''",
            )
            assert heading == f"{len(ids)} tracks selected on the map"

            # ... and is saved as a playlist
            name = browser.find_element(By.ID, "playlist-name")
            name.send_keys("From the map")
            browser.find_element(By.CSS_SELECTOR, "#save button").click()
            status = self.wait(
                browser,
                "const s = document.getElementById('save-status').textContent;"
                "return s.startsWith('saved') ? s : ''",
            )
            assert status == f"saved {len(ids)} tracks to From the map.m3u8"
        saved = (self.playlists / "From the map.m3u8").read_text()
        paths = {os.fsdecode(self.item(n).path) for n in ids.values()}
        assert set(saved.splitlines()[2::2]) == paths
        console = [
            entry["message"]
            for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE"
        ]
        assert console == []

    def test_a_title_with_markup_stays_text_in_the_browser(
        self, browser: Any, tmp_path: Path
    ) -> None:
        from selenium.webdriver.common.by import By

        ids = self.embedded()
        item = self.item(ids["a-ogg"])
        item.title = "<img src=x onerror=\"document.title='owned'\">"
        item.store()
        with served(self.client().application) as address:
            browser.get(address + "/?q=jazz")
            titles = [
                cell.text
                for cell in browser.find_elements(By.CSS_SELECTOR, "td.title")
            ]
            assert item.title in titles
            assert browser.title != "owned"
            assert not browser.find_elements(By.CSS_SELECTOR, "td img")
            # the same through the map's selection list (built by script)
            browser.execute_script(f"clapweb.selectIds([{ids['a-ogg']}])")
            self.wait(
                browser,
                "return document.getElementById('heading').textContent"
                ".startsWith('1 tracks')",
            )
            assert (
                browser.find_element(By.CSS_SELECTOR, "td.title").text
                == item.title
            )
            assert browser.title != "owned"
