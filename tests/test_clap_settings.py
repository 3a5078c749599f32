"""Every ``audiofeatures.clap`` setting, malformed, on a real library.

Loading the plugin never fails on a bad value: ``beet ls`` goes on
working. The command that uses the setting stops with one line naming
the setting, the value and what is allowed (exit status 1), before it
does anything; commands that do not use it are not affected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import beets.plugins
import pytest

from tests.helpers import ClapHelper

FILE = "<a file>"  # replaced by the path of a file that exists

#: setting, bad value, the command that uses it, its one line.
BAD_SETTINGS: list[tuple[str, Any, list[str], str]] = [
    ("model", "", ["clap"],
     ("audiofeatures.clap.model is '': use a hub id, a model folder or a "
      ".pt file")),
    ("model", ["a", "b"], ["clapquery", "jazz"],
     ("audiofeatures.clap.model is ['a', 'b']: use a hub id, a model folder "
      "or a .pt file")),
    ("tokenizer", 5, ["clap"],
     "audiofeatures.clap.tokenizer is 5: use a hub id or a tokenizer folder"),
    ("amodel", "HTSAT-huge", ["clap"],
     ("audiofeatures.clap.amodel is 'HTSAT-huge': use one of auto, "
      "HTSAT-tiny, HTSAT-base, HTSAT-large")),
    ("fusion", "maybe", ["clap"],
     ("audiofeatures.clap.fusion is 'maybe': use yes, no or nothing (as the "
      "checkpoint says)")),
    ("trust_checkpoint", "perhaps", ["clap"],
     "audiofeatures.clap.trust_checkpoint is 'perhaps': use yes or no"),
    ("device", "tpu", ["clap"],
     "audiofeatures.clap.device is 'tpu': use one of auto, cpu, cuda, mps"),
    ("device", "gpu", ["clapquery", "jazz"],
     "audiofeatures.clap.device is 'gpu': use one of auto, cpu, cuda, mps"),
    ("threads", "many", ["clap"],
     ("audiofeatures.clap.threads is 'many': use a whole number, "
      "0 (one per core) or more")),
    ("threads", -1, ["clap"],
     "audiofeatures.clap.threads is -1: use 0 (one per core) or more"),
    ("interop_threads", 0, ["clap"],
     "audiofeatures.clap.interop_threads is 0: use 1 or more"),
    ("windows", 0, ["clap"], "audiofeatures.clap.windows is 0: use 1 or more"),
    ("windows", 2.5, ["clap", "--stats"],
     "audiofeatures.clap.windows is 2.5: use a whole number, 1 or more"),
    ("windows", "3", ["clapquery", "jazz"],
     "audiofeatures.clap.windows is '3': use a whole number, 1 or more"),
    ("batch_size", 0, ["clap"],
     "audiofeatures.clap.batch_size is 0: use 1 or more"),
    ("jobs", 0, ["clap"], "audiofeatures.clap.jobs is 0: use 1 or more"),
    ("jobs", True, ["clap", "-p"],
     "audiofeatures.clap.jobs is True: use a whole number, 1 or more"),
    ("cache_dir", ["a", "b"], ["clap"],
     ("audiofeatures.clap.cache_dir is ['a', 'b']: use the path of a folder "
      "(nothing for the default)")),
    ("cache_dir", FILE, ["clap", "--stats"],
     (f"audiofeatures.clap.cache_dir is '{FILE}': use a folder ({FILE} is a "
      "file)")),
    ("force", "sometimes", ["clap"],
     "audiofeatures.clap.force is 'sometimes': use yes or no"),
    ("limit", 0, ["clapquery", "jazz"],
     "audiofeatures.clap.limit is 0: use 1 or more"),
    ("limit", "all", ["clapquery", "jazz"],
     "audiofeatures.clap.limit is 'all': use a whole number, 1 or more"),
    ("tags", "mood", ["clap", "--tags"],
     ("audiofeatures.clap.tags is 'mood': use a mapping of name: "
      "[label, ...] or name: {label: prompt, ...}")),
    ("tags", {"mood": "happy"}, ["clap", "--tags"],
     ("audiofeatures.clap.tags.mood is 'happy': use a list of labels or a "
      "mapping of label: prompt")),
    ("tags", {"mood": ["happy"]}, ["clap", "--tags"],
     "audiofeatures.clap.tags.mood needs at least two labels"),
    ("tags", {"mood": ["happy", ["sad"]]}, ["clap", "--tags"],
     "audiofeatures.clap.tags.mood has the label ['sad']: use words"),
    ("tags", {"voice": {"vocals": "", "none": "no voice"}}, ["clap", "--tags"],
     ("audiofeatures.clap.tags.voice.vocals is '': use a sentence that "
      "describes the label")),
    ("tags", {"voice": {"vocals": None, "none": "x"}}, ["clap", "--tags"],
     ("audiofeatures.clap.tags.voice.vocals is None: use a sentence that "
      "describes the label")),
    ("tag_prompt", "music", ["clap", "--tags"],
     ("audiofeatures.clap.tag_prompt is 'music': use a sentence with {} "
      "once, where the label goes, such as '{} music'")),
    ("tag_prompt", "{} and {}", ["clap", "--tags"],
     ("audiofeatures.clap.tag_prompt is '{} and {}': use a sentence with {} "
      "once, where the label goes, such as '{} music'")),
    ("tag_prompt", "{label} music", ["clap", "--tags"],
     ("audiofeatures.clap.tag_prompt is '{label} music': use a sentence "
      "with {} once, where the label goes, such as '{} music'")),
    ("tag_prompt", "{ music", ["clap", "--tags"],
     ("audiofeatures.clap.tag_prompt is '{ music': use a sentence with {} "
      "once, where the label goes, such as '{} music'")),
    ("auto", "sometimes", ["import", "-A", "-q", "<incoming>"],
     "audiofeatures.clap.auto is 'sometimes': use yes or no"),
]  # fmt: skip

#: Label sets for the rows that are about something else.
GOOD_TAGS = {"mood": ["happy", "sad"]}

#: setting, bad value, commands that do not use it and must work.
UNUSED: list[tuple[str, Any, list[list[str]]]] = [
    ("tags", "mood",
     [["clap"], ["clap", "--stats"], ["clap", "--prune"],
      ["clapquery", "jazz"]]),
    ("tag_prompt", "music", [["clap"], ["clapquery", "jazz"]]),
    ("limit", 0, [["clap"], ["clap", "--stats"], ["clapquery", "jazz",
                                                  "-n", "1"]]),
    ("jobs", 0, [["clapquery", "jazz"], ["clap", "--stats"]]),
    ("batch_size", 0, [["clapquery", "jazz"], ["clap", "--stats"]]),
    ("force", "sometimes", [["clapquery", "jazz"], ["clap", "--stats"]]),
    ("device", "tpu", [["clap", "--stats"], ["clap", "--prune"]]),
    ("threads", "many", [["clap", "--stats"]]),
    ("tokenizer", 5, [["clap", "--stats"]]),
    ("auto", "sometimes", [["clap"], ["clapquery", "jazz"]]),
]  # fmt: skip


def row_id(row: tuple[Any, ...]) -> str:
    return f"{row[0]}={row[1]!r}"


class TestMalformedSettings(ClapHelper):
    @pytest.fixture(autouse=True)
    def _track(self, _clap: None) -> None:
        self.add_track(self.audio.a120_flac, title="the-only-track")

    def reload(self, setting: str, value: Any) -> None:
        """Load the plugin as beets does at start-up, with this value."""
        clap = self.config["audiofeatures"]["clap"]
        if setting == "tag_prompt":
            clap["tags"] = GOOD_TAGS
        clap[setting] = value
        self.unload_plugins()
        self.caplog.clear()
        self.load_plugins()
        assert "error loading plugin" not in self.caplog.text
        assert [p.name for p in beets.plugins._instances] == ["audiofeatures"]

    def ls_still_works(self) -> None:
        assert "the-only-track" in self.run_with_output("ls")

    @pytest.mark.parametrize(
        ("setting", "value", "command", "message"),
        BAD_SETTINGS,
        ids=[row_id(row) for row in BAD_SETTINGS],
    )
    def test_the_command_that_uses_it_says_so_in_one_line(
        self,
        setting: str,
        value: Any,
        command: list[str],
        message: str,
        tmp_path: Path,
    ) -> None:
        if value == FILE:
            value = str(tmp_path / "a-file")
            Path(value).write_text("not a folder")
            message = message.replace(FILE, value)
        incoming = tmp_path / "incoming"
        incoming.mkdir()
        (incoming / "new.flac").write_bytes(self.audio.a120_flac.read_bytes())
        command = [str(incoming) if a == "<incoming>" else a for a in command]

        self.reload(setting, value)
        self.ls_still_works()
        assert self.fails(*command) == message
        # it stopped before doing anything
        assert not self.cache.exists() or not any(self.cache.iterdir())
        assert "clap_model" not in self.lib.items()[0]
        self.ls_still_works()

    @pytest.mark.parametrize(
        ("setting", "value", "commands"),
        UNUSED,
        ids=[row_id(row) for row in UNUSED],
    )
    def test_commands_that_do_not_use_it_work(
        self, setting: str, value: Any, commands: list[list[str]]
    ) -> None:
        self.clap()
        self.reload(setting, value)
        for command in commands:
            self.io.getoutput()
            self.run_command(*command)
        self.ls_still_works()

    @pytest.mark.parametrize(
        ("command", "message"),
        [
            (["clapquery", "jazz", "-n", "0"],
             "-n/--limit must be 1 or more, not 0"),
            (["clapquery", "jazz", "--limit", "-3"],
             "-n/--limit must be 1 or more, not -3"),
            (["clap", "-j", "0"], "-j/--jobs must be 1 or more, not 0"),
        ],
    )  # fmt: skip
    def test_a_bad_option_is_named_as_typed(
        self, command: list[str], message: str
    ) -> None:
        assert self.fails(*command) == message

    def test_an_option_overrides_its_bad_setting(self) -> None:
        self.clap()
        self.reload("limit", 0)
        out = self.query("jazz", "-n", "1")
        assert len(out.splitlines()) == 1
        self.reload("jobs", 0)
        self.clap("-f", "-j", "1")  # the command line decides

    def test_removing_a_track_never_stops_on_a_bad_cache_dir(self) -> None:
        # ``beet rm`` must not stop between the database and the file;
        # the vectors left behind are orphans that --prune removes.
        self.reload("cache_dir", ["a", "b"])
        self.run_command("rm", "-f", "title:the-only-track")
        assert list(self.lib.items()) == []
