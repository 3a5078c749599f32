"""The OpenSubsonic API of the real ``beet clapweb`` (waitress), on
127.0.0.1, asked by two Subsonic client libraries from PyPI (py-sonic
and py-opensonic) and by hand in XML and JSON, on a small real library
whose tracks the tiny CLAP model embedded."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import synth
from tests.conftest import Audio, ClapAssets
from tests.test_web_command import first_answer, free_port

pytest.importorskip("flask", reason="the [web] extra is not installed")
pytest.importorskip("waitress", reason="the [web] extra is not installed")
libsonic = pytest.importorskip("libsonic", reason="py-sonic is not installed")
libopensonic = pytest.importorskip(
    "libopensonic", reason="py-opensonic is not installed"
)

# Both client libraries leave their sockets (py-sonic's urllib answers)
# and event loops (py-opensonic's) to the garbage collector: their leak,
# not the server's.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore::pytest.PytestUnraisableExceptionWarning"
    ),
]

USER, PASSWORD = "ana", "sésame & <co>"
API_KEY = "an-api-key-of-more-than-16-characters"
TOKEN = "a-page-token-of-more-than-16-characters"
XMLNS = "{http://subsonic.org/restapi}"

#: The library: (folder, file, tags, source).
TRACKS = [
    ("Alpha Band/First Light", "01.flac",
     {"artist": "Alpha Band", "album_artist": "Alpha Band",
      "album": "First Light", "title": "Morning", "genre": "Jazz",
      "date": "2001", "track": "1"}, "a120_wav"),
    ("Alpha Band/First Light", "02.flac",
     {"artist": "Alpha Band", "album_artist": "Alpha Band",
      "album": "First Light", "title": "Noon", "genre": "Jazz",
      "date": "2001", "track": "2"}, "c90_mp3"),
    ("Beta & Co/Second", "01.mp3",
     {"artist": "Beta & Co", "album_artist": "Beta & Co",
      "album": "Second", "title": "Evening <live>", "genre": "Rock",
      "date": "2010", "track": "1"}, "a120_wav"),
    ("Beta & Co/Second", "02.ogg",
     {"artist": "Beta & Co", "album_artist": "Beta & Co",
      "album": "Second", "title": "Night", "genre": "Rock",
      "date": "2010", "track": "2"}, "c90_mp3"),
    ("Beta & Co/Second", "03.mp3",
     {"artist": "Beta & Co", "album_artist": "Beta & Co",
      "album": "Second", "title": "Lone", "genre": "Rock",
      "date": "2010", "track": "3"}, "c90_mp3"),
]  # fmt: skip
#: The track ``beet clap`` leaves without a vector.
UNEMBEDDED = "Lone"


@dataclass
class Server:
    base: str
    port: int
    db: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    playlists: Path

    def url(self, method: str, **params: Any) -> str:
        query = {"v": "1.16.1", "c": "tests", **params}
        return f"{self.base}/rest/{method}?{urllib.parse.urlencode(query)}"

    def get(self, method: str, auth: bool = True, **params: Any) -> bytes:
        if auth:
            params = {"u": USER, "p": PASSWORD, **params}
        with urllib.request.urlopen(
            self.url(method, **params), timeout=60
        ) as r:
            assert r.status == 200
            body: bytes = r.read()
            return body

    def json(self, method: str, **params: Any) -> dict[str, Any]:
        answer = json.loads(self.get(method, f="json", **params))
        document: dict[str, Any] = answer["subsonic-response"]
        return document

    def xml(self, method: str, **params: Any) -> ElementTree.Element:
        return ElementTree.fromstring(self.get(method, **params))

    def ids(self) -> dict[str, str]:
        """Each track's API id, by title."""
        songs = self.json("search3", query="")["searchResult3"]["song"]
        return {song["title"]: song["id"] for song in songs}


def tagged(source: Path, target: Path, tags: dict[str, str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    metadata = [
        arg for k, v in tags.items() for arg in ("-metadata", f"{k}={v}")
    ]
    codec = synth.ENCODERS.get(target.suffix, [])
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
         "-t", "8", *metadata, *codec, str(target)],
        check=True, capture_output=True,
    )  # fmt: skip


def cover(target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "color=red:s=64x48", "-frames:v", "1", str(target)],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, audio: Audio, clap: ClapAssets
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("subsonic")
    incoming = root / "incoming"
    for folder, name, tags, source in TRACKS:
        tagged(getattr(audio, source), incoming / folder / name, tags)
    users = root / "users.yaml"
    users.write_text(
        json.dumps({USER: {"password": PASSWORD, "api_key": API_KEY}})
    )
    config = (
        f"{{clap: {{model: {clap.model_dir}, cache_dir: {root / 'cache'}, "
        # The tiny model's vectors are all close (cosines near 0.99): a
        # second version of a recording is one closer than this.
        f"windows: 1, duplicate_threshold: 0.9999, max_per_album: 0, "
        "playlists: {jazzy: {prompt: dusty jazz piano, query: 'genres:Jazz', "
        f"limit: 5}}}}}}, web: {{users: {users}, token: {TOKEN}, "
        f"playlist_dir: {root / 'playlists'}}}}}"
    )
    (root / "playlists").mkdir()
    env, db = synth.import_library(root, incoming, f"audiofeatures: {config}\n")
    env["HF_HUB_OFFLINE"] = "1"
    art = cover(root / "cover.jpg")
    with sqlite3.connect(db) as database:
        database.execute(
            "UPDATE albums SET artpath = ? WHERE album = 'First Light'",
            (str(art).encode(),),
        )
    subprocess.run(
        [synth.BEET, "clap", f"^title:{UNEMBEDDED}"], env=env, check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [synth.BEET, "clapweb", "--port", str(port)], env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    running = Server(
        f"http://127.0.0.1:{port}", port, db, process, env, root / "playlists"
    )
    try:
        status, _ = first_answer(process, running.url("ping"))
        assert status == 200
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
        # The clients' leaked sockets and loops go now, quietly, not in
        # whichever test the garbage collector next runs in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def sonic(server: Server, **kwargs: Any) -> Any:
    return libsonic.Connection(
        "http://127.0.0.1", USER, PASSWORD, port=server.port, **kwargs
    )


def opensonic(server: Server, **kwargs: Any) -> Any:
    if "api_key" not in kwargs:
        kwargs |= {"username": USER, "password": PASSWORD}
    return libopensonic.Connection(
        "http://127.0.0.1", port=server.port, **kwargs
    )


@pytest.fixture(scope="module")
def open_client(server: Server) -> Iterator[Any]:
    client = opensonic(server)
    yield client
    client.cleanup()
    client._thread.join(10)
    client._loop.close()


# -- the envelope and authentication ---------------------------------------


def test_ping_answers_the_opensubsonic_envelope_in_xml_by_default(
    server: Server,
) -> None:
    root = server.xml("ping")
    assert root.tag == XMLNS + "subsonic-response"
    assert root.attrib == {
        "status": "ok", "version": "1.16.1", "type": "beets-audiofeatures",
        "serverVersion": root.attrib["serverVersion"], "openSubsonic": "true",
    }  # fmt: skip


def test_ping_answers_json_with_f_json(server: Server) -> None:
    document = server.json("ping")
    assert document["status"] == "ok"
    assert document["openSubsonic"] is True
    assert document["version"] == "1.16.1"


def error_of(
    server: Server, method: str, form: str = "json", **params: Any
) -> tuple[int, str]:
    """The error code and message of a failed call (HTTP 200, as
    Subsonic answers errors), in JSON or in XML."""
    body = server.get(method, auth=False, f=form, **params)
    if form == "json":
        document = json.loads(body)["subsonic-response"]
        assert document["status"] == "failed"
        return document["error"]["code"], document["error"]["message"]
    root = ElementTree.fromstring(body)
    assert root.attrib["status"] == "failed"
    error = root.find(XMLNS + "error")
    assert error is not None
    return int(error.attrib["code"]), error.attrib["message"]


CREDENTIALS = {"u": USER, "p": PASSWORD}


@pytest.mark.parametrize("form", ["json", "xml"])
def test_a_wrong_password_is_error_40(server: Server, form: str) -> None:
    code, message = error_of(server, "ping", form, u=USER, p="sesame")
    assert code == 40
    assert "sesame" not in message


def test_a_hex_encoded_password_is_accepted(server: Server) -> None:
    encoded = "enc:" + PASSWORD.encode().hex()
    assert server.json("ping", u=USER, p=encoded)["status"] == "ok"


def test_a_token_is_md5_of_the_password_and_the_salt(server: Server) -> None:
    token = hashlib.md5((PASSWORD + "c19b2d").encode()).hexdigest()
    assert (
        server.json("ping", auth=False, u=USER, t=token, s="c19b2d")["status"]
        == "ok"
    )


def test_a_token_of_another_salt_is_error_40(server: Server) -> None:
    token = hashlib.md5((PASSWORD + "c19b2d").encode()).hexdigest()
    assert error_of(server, "ping", u=USER, t=token, s="other1")[0] == 40


def test_an_unknown_user_is_error_40(server: Server) -> None:
    assert error_of(server, "ping", u="bob", p=PASSWORD)[0] == 40


def test_an_api_key_alone_authenticates(server: Server) -> None:
    assert server.json("ping", auth=False, apiKey=API_KEY)["status"] == "ok"


def test_a_wrong_api_key_is_error_44(server: Server) -> None:
    assert error_of(server, "ping", apiKey="x" * 40)[0] == 44


def test_an_api_key_with_a_user_is_error_43(server: Server) -> None:
    assert error_of(server, "ping", apiKey=API_KEY, u=USER)[0] == 43


def test_a_password_with_a_token_is_error_43(server: Server) -> None:
    assert (
        error_of(server, "ping", u=USER, p=PASSWORD, t="0" * 32, s="abcdef")[0]
        == 43
    )


def test_no_credentials_is_a_missing_parameter(server: Server) -> None:
    assert error_of(server, "ping")[0] == 10


def test_the_page_token_is_not_asked_of_the_api_and_the_page_keeps_it(
    server: Server,
) -> None:
    assert server.json("ping")["status"] == "ok"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server.base + "/api/search?q=jazz", timeout=30)
    assert refused.value.code == 401


def test_an_unknown_method_is_a_404_with_a_subsonic_error(
    server: Server,
) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.get("getNothing", f="json")
    assert refused.value.code == 404
    document = json.loads(refused.value.read())["subsonic-response"]
    assert document["status"] == "failed"


def test_a_form_post_is_answered_as_a_get(server: Server) -> None:
    form = urllib.parse.urlencode(
        {"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "t", "f": "json"}
    ).encode()
    with urllib.request.urlopen(
        server.base + "/rest/ping.view", form, timeout=30
    ) as r:
        assert json.loads(r.read())["subsonic-response"]["status"] == "ok"


def test_jsonp_wraps_the_json_in_the_callback(server: Server) -> None:
    body = server.get("ping", f="jsonp", callback="answer").decode()
    assert body.startswith("answer({")
    assert body.endswith(");")


# -- browsing, with both client libraries ----------------------------------


def test_extensions_include_sonic_similarity_and_api_keys(
    open_client: Any,
) -> None:
    names = {
        e.name: e.versions for e in open_client.get_open_subsonic_extensions()
    }
    assert names["sonicSimilarity"] == [1]
    assert names["apiKeyAuthentication"] == [1]
    assert names["formPost"] == [1]


def test_license_is_valid(server: Server) -> None:
    assert sonic(server).getLicense()["license"]["valid"] is True


def test_one_music_folder(server: Server) -> None:
    # (py-opensonic 10.4 reads musicFolders as a list, against the spec)
    folders = sonic(server).getMusicFolders()["musicFolders"]["musicFolder"]
    assert [f["id"] for f in folders] == [1]


def test_artists_are_the_album_artists_indexed_by_letter(
    open_client: Any,
) -> None:
    artists = open_client.get_artists()
    names = {
        index.name: [a.name for a in index.artist] for index in artists.index
    }
    assert names == {"A": ["Alpha Band"], "B": ["Beta & Co"]}


def test_an_artist_lists_their_albums(server: Server, open_client: Any) -> None:
    (alpha,) = [
        a for i in open_client.get_artists().index for a in i.artist
        if a.name == "Alpha Band"
    ]  # fmt: skip
    found = open_client.get_artist(alpha.id)
    assert [album.name for album in found.album] == ["First Light"]
    assert found.album[0].song_count == 2


def test_an_album_lists_its_songs_in_track_order(server: Server) -> None:
    client = sonic(server)
    (album,) = client.search3("First Light", artistCount=0, songCount=0)[
        "searchResult3"
    ]["album"]
    songs = client.getAlbum(album["id"])["album"]["song"]
    assert [s["title"] for s in songs] == ["Morning", "Noon"]
    assert all(s["albumId"] == album["id"] for s in songs)


def test_a_song_is_described_without_its_path(server: Server) -> None:
    ids = server.ids()
    song = sonic(server).getSong(ids["Evening <live>"])["song"]
    assert song["title"] == "Evening <live>"
    assert song["artist"] == "Beta & Co"
    assert song["suffix"] == "mp3"
    assert song["contentType"] == "audio/mpeg"
    assert song["year"] == 2010
    assert song["genre"] == "Rock"
    assert "path" not in song
    assert str(server.db.parent) not in json.dumps(song)


def test_ids_are_stable_across_calls(server: Server) -> None:
    assert server.ids() == server.ids()


def test_xml_escapes_tag_text(server: Server) -> None:
    ids = server.ids()
    body = server.get("getSong", id=ids["Evening <live>"])
    assert b'title="Evening &lt;live&gt;"' in body
    root = ElementTree.fromstring(body)
    song = root.find(XMLNS + "song")
    assert song is not None
    assert song.attrib["artist"] == "Beta & Co"


def test_an_empty_search3_lists_everything(
    server: Server, open_client: Any
) -> None:
    found = open_client.search3('""', song_count=500)
    assert len(found.song) == len(TRACKS)
    assert {a.name for a in found.album} == {"First Light", "Second"}


def test_search3_finds_a_word_in_titles(server: Server) -> None:
    found = sonic(server).search3("nigh")["searchResult3"]
    assert [s["title"] for s in found["song"]] == ["Night"]


def test_search3_pages_with_offsets(server: Server) -> None:
    client = sonic(server)
    first = client.search3("", songCount=2, songOffset=0)["searchResult3"][
        "song"
    ]
    rest = client.search3("", songCount=2, songOffset=2)["searchResult3"][
        "song"
    ]
    assert len(first) == len(rest) == 2
    assert not {s["id"] for s in first} & {s["id"] for s in rest}


def test_genres_count_songs_and_albums(open_client: Any) -> None:
    genres = {
        g.value: (g.song_count, g.album_count) for g in open_client.get_genres()
    }
    assert genres == {"Jazz": (2, 1), "Rock": (3, 1)}


def test_songs_by_genre(server: Server) -> None:
    songs = sonic(server).getSongsByGenre("Jazz")["songsByGenre"]["song"]
    assert {s["title"] for s in songs} == {"Morning", "Noon"}


def test_random_songs_within_the_years_asked(open_client: Any) -> None:
    songs = open_client.get_random_songs(size=10, from_year=2005, to_year=2020)
    assert {s.title for s in songs} == {"Evening <live>", "Night", "Lone"}


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("alphabeticalByName", {}, ["First Light", "Second"]),
        ("alphabeticalByArtist", {}, ["First Light", "Second"]),
        (
            "byYear",
            {"fromYear": 2020, "toYear": 2000},
            ["Second", "First Light"],
        ),
        ("byGenre", {"genre": "Rock"}, ["Second"]),
        ("highest", {}, []),
    ],
)
def test_album_lists(
    server: Server, kind: str, extra: dict[str, Any], expected: list[str]
) -> None:
    albums = server.json("getAlbumList2", type=kind, **extra)["albumList2"]
    assert [a["name"] for a in albums.get("album", [])] == expected


def test_random_and_newest_album_lists_hold_every_album(
    open_client: Any,
) -> None:
    for kind in ("random", "newest"):
        albums = open_client.get_album_list2(kind, size=10)
        assert {a.name for a in albums} == {"First Light", "Second"}


def test_the_user_is_the_one_who_asks(open_client: Any) -> None:
    user = open_client.get_user(USER)
    assert user.username == USER
    assert user.stream_role is True


def test_indexes_and_directories_browse_artist_album_song(
    server: Server,
) -> None:
    client = sonic(server)
    indexes = client.getIndexes()["indexes"]["index"]
    alpha = indexes[0]["artist"][0]
    albums = client.getMusicDirectory(alpha["id"])["directory"]["child"]
    songs = client.getMusicDirectory(albums[0]["id"])["directory"]["child"]
    assert [s["title"] for s in songs] == ["Morning", "Noon"]


# -- bad input ---------------------------------------------------------------


def test_a_missing_id_is_error_10(server: Server) -> None:
    assert error_of(server, "getSong", **CREDENTIALS)[0] == 10


@pytest.mark.parametrize(
    "sent",
    [
        "tr-999999",
        "tr-99999999999999999999999",
        "12",
        "../../etc/passwd",
        "tr-",
    ],
)
def test_an_unknown_song_is_error_70(server: Server, sent: str) -> None:
    assert error_of(server, "getSong", id=sent, **CREDENTIALS)[0] == 70


def test_an_album_id_given_for_a_song_is_error_70(server: Server) -> None:
    album = server.json("getAlbumList2", type="newest")["albumList2"]["album"][
        0
    ]
    assert error_of(server, "getSong", id=album["id"], **CREDENTIALS)[0] == 70
    assert error_of(server, "stream", id=album["id"], **CREDENTIALS)[0] == 70


def test_a_song_id_given_for_an_album_is_error_70(server: Server) -> None:
    song_id = server.ids()["Night"]
    assert error_of(server, "getAlbum", id=song_id, **CREDENTIALS)[0] == 70
    assert error_of(server, "getArtist", id=song_id, **CREDENTIALS)[0] == 70


def test_a_huge_count_is_the_most_a_list_holds(server: Server) -> None:
    found = server.json("search3", query="", songCount=10**40)["searchResult3"]
    assert len(found["song"]) == len(TRACKS)


@pytest.mark.parametrize("count", ["-1", "ten", "1e9"])
def test_a_count_that_is_no_count_is_an_error(
    server: Server, count: str
) -> None:
    assert error_of(server, "getRandomSongs", size=count, **CREDENTIALS)[0] == 0


# -- similarity ----------------------------------------------------------------


def test_sonic_similar_tracks_are_best_first_without_the_seed_or_its_versions(
    server: Server, open_client: Any
) -> None:
    ids = server.ids()
    matches = open_client.get_sonic_similar_tracks(ids["Morning"])
    titles = [m.entry.title for m in matches]
    assert titles  # Night (Noon is a version of it)
    assert "Morning" not in titles
    assert "Evening <live>" not in titles  # the same recording as an MP3
    scores = [m.similarity for m in matches]
    assert scores == sorted(scores, reverse=True)


def ranked_cosines(server: Server, seed: str) -> dict[str, float]:
    """``beet clapradio --ranked``'s scores (the cosine to the seed) on
    the same library, by title."""
    done = subprocess.run(
        [synth.BEET, "clapradio", "--ranked", f"title:{seed}"],
        env=server.env, capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    return {
        line.split(" - ")[-1]: float(line.split()[0])
        for line in done.stdout.splitlines()
        if " - " in line
    }


def test_the_similarity_is_the_spec_s_scale_of_the_cosine(
    server: Server, open_client: Any
) -> None:
    ids = server.ids()
    cosines = ranked_cosines(server, "Morning")
    matches = open_client.get_sonic_similar_tracks(ids["Morning"], count=3)
    assert {m.entry.title for m in matches} == set(cosines)
    for match in matches:
        assert match.similarity == pytest.approx(
            (1 + cosines[match.entry.title]) / 2, abs=0.001
        )


def test_a_sonic_path_starts_and_ends_with_the_two_songs(
    server: Server, open_client: Any
) -> None:
    ids = server.ids()
    path = open_client.find_sonic_path(ids["Morning"], ids["Night"], count=3)
    assert path[0].entry.id == ids["Morning"]
    assert path[-1].entry.id == ids["Night"]
    assert path[0].similarity == 1.0
    assert all(0 <= m.similarity <= 1 for m in path)


def test_a_sonic_path_in_xml_holds_entries_with_their_similarity(
    server: Server,
) -> None:
    ids = server.ids()
    root = server.xml(
        "findSonicPath", startSongId=ids["Morning"], endSongId=ids["Night"]
    )
    matches = root.findall(XMLNS + "sonicMatch")
    assert float(matches[0].attrib["similarity"]) == 1.0
    entry = matches[-1].find(XMLNS + "entry")
    assert entry is not None
    assert entry.attrib["title"] == "Night"


def test_similar_songs_are_a_radio_without_the_seed(server: Server) -> None:
    ids = server.ids()
    client = sonic(server)
    for answer in (
        client.getSimilarSongs2(ids["Noon"], count=5)["similarSongs2"],
        client.getSimilarSongs(ids["Noon"], count=5)["similarSongs"],
    ):
        titles = [s["title"] for s in answer["song"]]
        assert titles
        assert "Noon" not in titles


def test_similar_songs_of_an_artist_or_an_album_leave_out_their_songs(
    server: Server,
) -> None:
    alpha = server.json("getArtists")["artists"]["index"][0]["artist"][0]
    album = server.json("getArtist", id=alpha["id"])["artist"]["album"][0]
    for sent in (alpha["id"], album["id"]):
        answer = server.json("getSimilarSongs2", id=sent)
        assert answer["status"] == "ok"
        songs = answer["similarSongs2"].get("song", [])
        assert "Alpha Band" not in {s["artist"] for s in songs}


def test_a_song_without_a_vector_is_not_found_for_similarity(
    server: Server,
) -> None:
    lone = server.ids()[UNEMBEDDED]
    code, message = error_of(
        server, "getSonicSimilarTracks", id=lone, **CREDENTIALS
    )
    assert code == 70
    assert "beet clap" in message


def test_a_missing_end_of_a_path_is_error_10(server: Server) -> None:
    ids = server.ids()
    code, _ = error_of(
        server, "findSonicPath", startSongId=ids["Morning"], **CREDENTIALS
    )
    assert code == 10


def test_clap_search_ranks_songs_for_a_sentence_within_a_query(
    server: Server,
) -> None:
    songs = server.json(
        "clapSearch", prompt="dusty jazz piano", query="genre:Jazz"
    )["clapSearch"]["song"]
    assert {s["title"] for s in songs} == {"Morning", "Noon"}


def test_a_user_without_a_password_or_token_is_told_to_send_one(
    server: Server,
) -> None:
    assert error_of(server, "ping", u=USER) == (
        10,
        "required parameter p (or t and s) is missing",
    )


@pytest.mark.parametrize("prompt", ["", "   "])
def test_clap_search_without_a_prompt_or_query_is_an_error(
    server: Server, prompt: str
) -> None:
    code, message = error_of(
        server, "clapSearch", prompt=prompt, query=" ", **CREDENTIALS
    )
    assert (code, message) == (10, "required parameter prompt is missing")


# -- media -------------------------------------------------------------------


def library_file(server: Server, title: str) -> Path:
    with sqlite3.connect(server.db) as database:
        (path,) = database.execute(
            "SELECT path FROM items WHERE title = ?", (title,)
        ).fetchone()
    return server.db.parent / "music" / bytes(path).decode()


def decoded_seconds(source: str) -> float:
    """How long ffmpeg's decoding of ``source`` (a URL) plays."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", source,
         "-f", "s16le", "-ac", "1", "-ar", "8000", "pipe:1"],
        capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    return len(done.stdout) / 16000


def test_ffmpeg_plays_the_stream_url_a_client_builds(server: Server) -> None:
    ids = server.ids()
    # py-sonic's own request (a form POST), as the address a player opens
    request = sonic(server)._getRequest("stream.view", {"id": ids["Morning"]})
    url = f"{request.full_url}?{request.data.decode()}"
    assert decoded_seconds(url) == pytest.approx(8, abs=0.2)


def test_a_stream_is_the_file_itself_with_ranges(server: Server) -> None:
    ids = server.ids()
    url = server.url("stream", id=ids["Night"], u=USER, p=PASSWORD)
    original = library_file(server, "Night").read_bytes()
    with urllib.request.urlopen(url, timeout=30) as whole:
        assert whole.read() == original
    part = urllib.request.Request(url, headers={"Range": "bytes=10-99"})
    with urllib.request.urlopen(part, timeout=30) as answer:
        assert answer.status == 206
        assert answer.read() == original[10:100]


def test_a_range_past_the_end_is_416(server: Server) -> None:
    url = server.url("stream", id=server.ids()["Night"], u=USER, p=PASSWORD)
    past = urllib.request.Request(url, headers={"Range": "bytes=99999999-"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(past, timeout=30)
    assert refused.value.code == 416


def test_a_stream_with_a_format_and_bit_rate_is_transcoded(
    server: Server,
) -> None:
    ids = server.ids()
    url = server.url(
        "stream", id=ids["Morning"], format="mp3", maxBitRate=64, u=USER,
        p=PASSWORD,
    )  # fmt: skip
    with urllib.request.urlopen(url, timeout=60) as answer:
        assert answer.headers["Content-Type"] == "audio/mpeg"
        body = answer.read()
    assert body[:3] == b"ID3" or body[0] == 0xFF
    assert len(body) < 8 * 64_000 / 8 * 1.2  # 64 kbit/s for 8 s
    assert decoded_seconds(url) == pytest.approx(8, abs=0.3)


def test_a_download_is_the_file_as_an_attachment(server: Server) -> None:
    ids = server.ids()
    url = server.url("download", id=ids["Noon"], u=USER, p=PASSWORD)
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.headers["Content-Disposition"].startswith("attachment")
        assert "Alpha Band - Noon.flac" in answer.headers["Content-Disposition"]
        assert answer.read() == library_file(server, "Noon").read_bytes()


def image_size(image: bytes) -> tuple[int, int]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", "-i", "pipe:0"],
        input=image, capture_output=True, check=True,
    )  # fmt: skip
    width, height = done.stdout.decode().strip().split(",")
    return int(width), int(height)


def test_cover_art_is_the_album_s_art_file_scaled_on_request(
    server: Server,
) -> None:
    album = server.json("search3", query="First Light")["searchResult3"][
        "album"
    ][0]
    whole = server.get("getCoverArt", id=album["coverArt"])
    assert image_size(whole) == (64, 48)
    small = server.get("getCoverArt", id=album["coverArt"], size=16)
    assert image_size(small) == (16, 12)


def test_an_album_without_art_has_no_cover(server: Server) -> None:
    album = server.json("search3", query="Second")["searchResult3"]["album"][0]
    assert (
        error_of(server, "getCoverArt", id=album["coverArt"], **CREDENTIALS)[0]
        == 70
    )


# -- scrobbling ----------------------------------------------------------------


def plays(server: Server, title: str) -> tuple[int, float | None]:
    with sqlite3.connect(server.db) as database:
        found = dict(
            database.execute(
                "SELECT key, value FROM item_attributes WHERE entity_id = "
                "(SELECT id FROM items WHERE title = ?)", (title,),
            ).fetchall()
        )  # fmt: skip
    last = found.get("last_played")
    return int(found.get("play_count", 0)), None if last is None else float(
        last
    )


def test_a_scrobble_counts_a_play_and_its_time(server: Server) -> None:
    ids = server.ids()
    sonic(server).scrobble(ids["Lone"], listenTime=1_700_000_000)
    assert plays(server, "Lone") == (1, 1_700_000_000)
    frequent = server.json("getAlbumList2", type="frequent")["albumList2"][
        "album"
    ]
    assert [a["name"] for a in frequent] == ["Second"]


def test_now_playing_is_no_play(server: Server) -> None:
    ids = server.ids()
    sonic(server).scrobble(ids["Noon"], submission=False)
    assert plays(server, "Noon") == (0, None)


# -- playlists -----------------------------------------------------------------


def test_the_saved_playlists_are_listed_and_made_when_asked_for(
    open_client: Any,
) -> None:
    (listed,) = open_client.get_playlists()
    assert listed.name == "jazzy"
    playlist = open_client.get_playlist(listed.id)
    assert {song.title for song in playlist.entry} <= {"Morning", "Noon"}
    assert playlist.entry
    assert playlist.song_count == len(playlist.entry)


def test_an_unknown_playlist_is_error_70(server: Server) -> None:
    assert error_of(server, "getPlaylist", id="pl-0", **CREDENTIALS)[0] == 70


@pytest.fixture
def playlist_files(server: Server) -> Iterator[None]:
    """In the playlist folder: ``Café.m3u8`` (UTF-8: Morning, a file
    that is no track, Night by a relative path), ``old.m3u`` (Latin-1:
    Noon) and ``jazzy.m3u8`` (what ``beet clap --playlists`` writes for
    the configured jazzy)."""
    listed = subprocess.run(
        [synth.BEET, "ls", "-f", "$title\t$path"], env=server.env,
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    path = dict(line.split("\t") for line in listed.splitlines())
    night = os.path.relpath(path["Night"], server.playlists)
    files = {
        "Café.m3u8": (
            f"#EXTM3U\n#EXTINF:8,Alpha Band - Morning ☀\n{path['Morning']}\n"
            f"/nowhere/gone.flac\n{night}\n"
        ).encode(),
        "old.m3u": f"#EXTINF:8,Alpha Band - Noon à midi\n{path['Noon']}\n"
        .encode("latin-1"),
        "jazzy.m3u8": f"{path['Noon']}\n".encode(),
    }  # fmt: skip
    for name, content in files.items():
        (server.playlists / name).write_bytes(content)
    yield
    for name in files:
        (server.playlists / name).unlink()


@pytest.mark.usefixtures("playlist_files")
def test_the_playlist_folder_s_m3u_and_m3u8_files_are_playlists(
    open_client: Any,
) -> None:
    listed = {p.name: p for p in open_client.get_playlists()}
    assert sorted(listed) == ["Café", "jazzy", "old"]
    cafe = open_client.get_playlist(listed["Café"].id)
    assert [song.title for song in cafe.entry] == ["Morning", "Night"]
    assert cafe.song_count == 2
    old = open_client.get_playlist(listed["old"].id)
    assert [song.title for song in old.entry] == ["Noon"]


@pytest.mark.usefixtures("playlist_files")
def test_a_file_of_a_configured_playlist_is_listed_as_its_radio(
    open_client: Any,
) -> None:
    jazzy = [p for p in open_client.get_playlists() if p.name == "jazzy"]
    assert [p.comment for p in jazzy] == ["audiofeatures.clap.playlists"]


def test_a_song_embedded_while_the_server_runs_is_found_for_similarity(
    server: Server, open_client: Any
) -> None:
    """The server keeps the index between calls: ``beet clap`` writing
    to the store meanwhile is seen by the next call."""
    ids = server.ids()
    open_client.get_sonic_similar_tracks(ids["Morning"])  # the index kept
    subprocess.run(
        [synth.BEET, "clap", f"title:{UNEMBEDDED}"], env=server.env,
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    matches = open_client.get_sonic_similar_tracks(ids[UNEMBEDDED])
    assert matches
    assert UNEMBEDDED not in {m.entry.title for m in matches}


# -- the server ------------------------------------------------------------------


def test_zz_ctrl_c_stops_the_server_cleanly_and_nothing_secret_was_logged(
    server: Server,
) -> None:
    # Last in the module: it stops the module's server.
    server.process.send_signal(signal.SIGINT)
    output = server.process.communicate(timeout=30)[0].decode()
    assert server.process.returncode == 130, output
    assert "Traceback" not in output, output
    assert "development server" not in output
    assert "/rest/" in output, output
    for secret in (PASSWORD, API_KEY, "enc:"):
        assert secret not in output


# -- the users setting ---------------------------------------------------------


def web_settings(tmp_path: Path, users: Any) -> Any:
    import confuse

    from beetsplug.audiofeatures.settings.web import WebSettings

    config = confuse.Configuration("subsonic-tests", read=False)
    config.set({"audiofeatures": {"web": {"users": users}}})
    return WebSettings(config["audiofeatures"]["web"])


def test_users_map_names_to_passwords_or_keys(tmp_path: Path) -> None:
    users = {"ana": "pw", "ben": {"api_key": API_KEY}}
    assert web_settings(tmp_path, users).users == {
        "ana": ("pw", None), "ben": (None, API_KEY),
    }  # fmt: skip


def test_users_may_be_a_file(tmp_path: Path) -> None:
    listed = tmp_path / "users.yaml"
    listed.write_text("ana: pw\n")
    assert web_settings(tmp_path, str(listed)).users == {"ana": ("pw", None)}


def test_a_short_api_key_is_one_line_that_does_not_repeat_it(
    tmp_path: Path,
) -> None:
    from beets_audiofeatures.errors import SettingError

    with pytest.raises(SettingError) as bad:
        _ = web_settings(tmp_path, {"ana": {"api_key": "short-key"}}).users
    assert "short-key" not in str(bad.value)
    assert "api_key" in str(bad.value)
