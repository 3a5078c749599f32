"""What a user installs: the sdist and wheel built from this tree, and the
wheel installed (not editable) into fresh environments outside the tree,
one per set of extras a user would pick, each running its commands
against a small on-disk library.

Marked ``release`` and left out of a plain ``pytest`` (it builds and
installs for a minute or two); ``make test`` runs it as a step of its own.
The environments are made with uv from the wheel, always with
``-c constraints.txt``, sharing uv's cache, never the development
environment's packages.
"""

from __future__ import annotations

import email.parser
import html.parser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from beets_audiofeatures.version import __version__
from tests import clap_fixtures, synth
from tests.essentia_models import write_models

pytestmark = pytest.mark.release

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
PACKAGE_FOLDERS = ("beets_audiofeatures", "beetsplug/audiofeatures")
TITLE = "Night Drive"


def run(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def succeeds(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    done = run(*args, cwd=cwd, env=env)
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# --- the build ---------------------------------------------------------


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path  # built from the sdist, as `python -m build` does
    wheel_from_tree: Path
    source: Path  # the tree it was built from (a copy)


def copy_of_the_tree(target: Path) -> Path:
    """The files git would commit (tracked, or new and not ignored): a
    clean checkout, so the build cannot pick up caches or the build
    litter of the working tree, and leaves none there."""
    listed = succeeds(
        "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
        cwd=ROOT,
    )  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("build")
    source = copy_of_the_tree(root / "source")
    succeeds(sys.executable, "-m", "build", "--outdir", root / "dist", source)
    succeeds(
        sys.executable, "-m", "build", "--wheel", "--outdir", root / "direct",
        source,
    )  # fmt: skip
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (wheel,) = (root / "dist").glob("*.whl")
    (direct,) = (root / "direct").glob("*.whl")
    return Built(sdist, wheel, direct, source)


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA")
        )
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_twine_finds_nothing_to_fix_in_the_sdist_and_the_wheel(built: Built):
    output = succeeds(
        sys.executable, "-m", "twine", "check", "--strict", built.sdist,
        built.wheel,
    )  # fmt: skip
    assert output.count("PASSED") == 2, output


def test_the_wheel_holds_every_file_of_the_packages_and_nothing_else(
    built: Built,
):
    # Templates, static files, py.typed: whatever lies in the package
    # folders is read at run time; tests, benchmarks and caches are not.
    in_tree = {
        path.relative_to(built.source).as_posix()
        for folder in PACKAGE_FOLDERS
        for path in (built.source / folder).rglob("*")
        if path.is_file()
    }
    assert "beetsplug/audiofeatures/web/static/page.js" in in_tree
    assert wheel_files(built.wheel) == in_tree


def test_the_sdist_builds_the_same_wheel_as_the_tree(built: Built):
    assert wheel_files(built.wheel) == wheel_files(built.wheel_from_tree)
    assert str(wheel_metadata(built.wheel)) == str(
        wheel_metadata(built.wheel_from_tree)
    )


def test_the_sdist_holds_the_docs_and_tests_but_not_the_benchmarks(
    built: Built,
):
    with tarfile.open(built.sdist) as archive:
        names = {n.split("/", 1)[-1] for n in archive.getnames()}
    for needed in ("CHANGELOG.md", "constraints.txt", "docs/install.rst",
                   "tests/conftest.py", "examples/config.yaml", "setup.cfg"):  # fmt: skip
        assert needed in names
    assert not any(n.startswith("benchmarks/") for n in names)
    assert not any("__pycache__" in n for n in names)


def test_the_metadata_names_the_version_and_what_it_runs_on(built: Built):
    # What makes pip refuse an unsupported beets or Python at install
    # time, with its own message, rather than at the first command.
    metadata = wheel_metadata(built.wheel)
    assert metadata["Version"] == __version__
    assert (
        built.wheel.name
        == f"beets_audiofeatures-{__version__}-py3-none-any.whl"
    )
    assert metadata["Requires-Python"] == ">=3.11"
    requires = metadata.get_all("Requires-Dist") or []
    assert "beets<3,>=2.14" in requires
    assert set(metadata.get_all("Provides-Extra") or []) >= {
        "essentia", "clap", "web", "dask", "onnx", "tensorflow",
    }  # fmt: skip


# --- installed environments --------------------------------------------


def pip_sources() -> list[str]:
    """pip's configured package sources (a mirror, a folder of local
    wheels, a site-wide constraints file), as uv options: uv reads no
    pip configuration, and the environments must get what pip would."""
    listed = succeeds(sys.executable, "-m", "pip", "config", "list")
    options: list[str] = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        flag = {
            "index-url": "--index-url",
            "extra-index-url": "--extra-index-url",
            "find-links": "--find-links",
            "constraint": "--constraint",
        }.get(name)
        if flag is None:
            continue
        for each in value.strip("'\"").split():
            if each not in options:  # pip lists a setting per source
                options += [flag, each]
    if "--extra-index-url" in options:
        options += ["--index-strategy", "unsafe-best-match"]
    return options


def uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


class Installed:
    """A fresh environment holding the wheel with ``extras``."""

    def __init__(self, root: Path, wheel: Path, extras: str):
        self.root = root
        base_python = getattr(sys, "_base_executable", sys.executable)
        succeeds(uv(), "venv", "--quiet", "--python", base_python, root)
        succeeds(
            uv(), "pip", "install", "--quiet", "--python", root / "bin" / "python",
            "-c", CONSTRAINTS, *pip_sources(), f"{wheel}[{extras}]",
            cwd=root,
        )  # fmt: skip

    def environment(self, config: Path) -> dict[str, str]:
        """The shell a user runs ``beet`` from: this environment, no
        source tree on the path, offline (the models are local)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
        }
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["BEETSDIR"] = str(config)
        env["HF_HUB_OFFLINE"] = "1"
        return env


@pytest.fixture(scope="module")
def installed(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Installed]:
    """The environments, each made when a test first asks for it."""

    class Environments(dict[str, Installed]):
        def __missing__(self, extras: str) -> Installed:
            root = tmp_path_factory.mktemp("venv-" + extras.replace(",", "-"))
            self[extras] = Installed(root, built.wheel, extras)
            return self[extras]

    return Environments()


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("track")
    return synth.make_track(root / "night-drive.flac", 120, "Am", 10)


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real CLAP model saved to a folder, as a user's own model."""
    root = tmp_path_factory.mktemp("clap")
    tokenizer = clap_fixtures.make_tokenizer(root / "tokenizer")
    return clap_fixtures.make_model(root / "tiny-clap", tokenizer)


class Library:
    """A beets library under ``root`` holding one imported track, used
    through ``environment``'s own ``beet`` from outside the source tree."""

    def __init__(
        self, root: Path, environment: Installed, track: Path, plugin: str
    ):
        self.root = root
        config = root / "config"
        config.mkdir()
        (config / "config.yaml").write_text(
            f"directory: {root / 'music'}\nlibrary: {root / 'library.db'}\n"
            "plugins: audiofeatures\nimport: {copy: yes, write: no}\n"
            "create_backup_before_migrations: no\n"
            f"audiofeatures: {plugin}\n"
        )
        self.env = environment.environment(config)
        self.beet_program = environment.root / "bin" / "beet"
        incoming = root / "incoming"
        incoming.mkdir()
        shutil.copy(track, incoming / f"01 {TITLE}.flac")
        self.beet("import", "-q", "-A", "--set", f"title={TITLE}", incoming)

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(self.beet_program, *args, cwd=self.root, env=self.env)

    def beet(self, *args: str | Path) -> str:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    def fails(self, *args: str | Path) -> str:
        done = self.run(*args)
        assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr
        return done.stderr

    def field(self, template: str) -> str:
        return self.beet("ls", "-f", template).strip()


def library(
    tmp_path: Path, installed: dict[str, Installed], extras: str, track: Path,
    plugin: str = "{essentia: {jobs: 1}}",
) -> Library:  # fmt: skip
    return Library(tmp_path, installed[extras], track, plugin)


def test_the_plugin_is_imported_from_the_environment_not_the_tree(
    installed: dict[str, Installed], tmp_path: Path
):
    environment = installed["essentia"]
    where = succeeds(
        environment.root / "bin" / "python", "-c",
        "import beetsplug.audiofeatures as a, beets_audiofeatures as c;"
        "print(a.__file__); print(c.__file__)",
        cwd=tmp_path, env=environment.environment(tmp_path),
    )  # fmt: skip
    for path in where.split():
        assert Path(path).is_relative_to(environment.root)


@pytest.mark.parametrize(
    ("refused", "because"),
    [
        (["beets==2.13.1"], "depends on beets>=2.14,<3"),
        (["--python-version", "3.10"], "Python>=3.11"),
    ],
    ids=["old-beets", "python-3.10"],
)
def test_an_unsupported_beets_or_python_is_refused_at_install_time(
    installed: dict[str, Installed], built: Built, refused: list[str],
    because: str,
):  # fmt: skip
    # without the constraints: the package's own metadata refuses them
    environment = installed["essentia"]
    done = run(
        uv(), "pip", "install", "--dry-run", "--python",
        environment.root / "bin" / "python", *pip_sources(),
        f"{built.wheel}[essentia]", *refused,
    )  # fmt: skip
    assert done.returncode != 0
    assert because in done.stderr


def test_beet_essentia_stores_a_tempo(
    installed: dict[str, Installed], tmp_path: Path, track: Path
):
    lib = library(tmp_path, installed, "essentia", track)
    lib.beet("essentia")
    assert 115 < float(lib.field("$essentia_bpm")) < 125
    assert lib.field("$essentia_key") == "Am"


@pytest.mark.parametrize(
    ("extras", "command", "needed"),
    [
        ("essentia", ["clap"], "clap"),
        ("essentia", ["clapweb"], "web"),
        ("essentia", ["clapmap", "-o", "map.html"], "web"),
        ("essentia", ["essentia", "--cluster", "local:2"], "dask"),
        ("essentia,clap", ["clapweb"], "web"),
        ("onnx", ["clap"], "clap"),
    ],
)
def test_a_command_whose_extra_is_missing_names_the_pip_install(
    installed: dict[str, Installed], tmp_path: Path, track: Path,
    extras: str, command: list[str], needed: str,
):  # fmt: skip
    lib = library(tmp_path, installed, extras, track)
    (line,) = [
        line for line in lib.fails(*command).splitlines() if "pip" in line
    ]
    assert line.startswith("error: ")
    assert line.endswith(f"pip install 'beets-audiofeatures[{needed}]'")


def clap_config(model: Path, cache: Path) -> str:
    return f"{{clap: {{model: '{model}', cache_dir: '{cache}', windows: 1}}}}"


def test_beet_clap_embeds_and_clapquery_finds_the_track(
    installed: dict[str, Installed], tmp_path: Path, track: Path,
    tiny_clap: Path,
):  # fmt: skip
    plugin = clap_config(tiny_clap, tmp_path / "cache")
    lib = library(tmp_path, installed, "essentia,clap", track, plugin)
    lib.beet("clap")
    assert TITLE in lib.beet("clapquery", "dusty jazz piano at night")


class PageLinks(html.parser.HTMLParser):
    """The files a page loads: its scripts and stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        named = dict(attrs)
        link = named.get("src") if tag == "script" else named.get("href")
        if tag in {"script", "link"} and link and link.startswith("/"):
            self.links.append(link)


#: A script the page's own scripts load when needed (plotly.js, by the map)
LOADED_BY_SCRIPT = re.compile(r"\.src = \"(/[^\"]+)\"")


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_beet_clapweb_serves_the_page_and_every_file_it_loads(
    installed: dict[str, Installed], tmp_path: Path, track: Path,
    tiny_clap: Path,
):  # fmt: skip
    plugin = clap_config(tiny_clap, tmp_path / "cache")
    lib = library(tmp_path, installed, "essentia,clap,web", track, plugin)
    lib.beet("clap")
    port = free_port()
    server = subprocess.Popen(
        [lib.beet_program, "clapweb", "--port", str(port)], cwd=lib.root,
        env=lib.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, page = fetch(base + "/")
                break
            except OSError:
                assert server.poll() is None, "beet clapweb stopped"
                assert time.monotonic() < deadline, "beet clapweb never served"
                time.sleep(0.3)
        assert status == 200
        links = PageLinks()
        links.feed(page.decode())
        loaded = []
        for link in links.links:
            status, body = fetch(base + link)
            assert (status, bool(body)) == (200, True), link
            loaded += LOADED_BY_SCRIPT.findall(body.decode())
        for link in loaded:
            status, body = fetch(base + link)
            assert (status, bool(body)) == (200, True), link
        assert {Path(link).name for link in links.links + loaded} >= {
            "page.js", "page.css", "map.js", "plotly.min.js",
        }  # fmt: skip
        status, body = fetch(base + "/api/search?q=dusty+jazz")
        assert status == 200
        assert TITLE in body.decode()
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    lib.beet("clapmap", "-o", tmp_path / "map.html")
    assert "Plotly" in (tmp_path / "map.html").read_text()


def test_cluster_local_2_stores_a_tempo(
    installed: dict[str, Installed], tmp_path: Path, track: Path
):
    lib = library(tmp_path, installed, "essentia,dask", track)
    lib.beet("essentia", "--cluster", "local:2")
    assert 115 < float(lib.field("$essentia_bpm")) < 125


def test_the_classifiers_run_through_onnxruntime(
    installed: dict[str, Installed], tmp_path: Path, track: Path
):
    head = "mood_happy-discogs-effnet-1"
    models = write_models(tmp_path / "models", [head])
    plugin = (
        f"{{essentia: {{jobs: 1, profile: rhythm, models_dir: '{models}',"
        f" model_route: onnx, models: [{head}]}}}}"
    )
    lib = library(tmp_path, installed, "onnx", track, plugin)
    lib.beet("essentia")
    assert lib.field("$essentia_mood_happy") in {"happy", "non_happy"}
    assert lib.field("$essentia_classifiers") == f"onnx: {head}"
