"""``--cluster``: a real Dask scheduler and workers started with Dask's
own ``dask scheduler`` / ``dask worker`` commands, on a real library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from beets.exceptions import UserError
from huggingface_hub import constants

from beetsplug.audiofeatures.analysis import essentia as essentia_analysis
from beetsplug.audiofeatures.library_query import item_id
from tests import synth
from tests.helpers import ClapHelper
from tests.reliability.crashing import CrashingAnalyzer

distributed = pytest.importorskip("distributed")

DASK = str(Path(sys.executable).with_name("dask"))
ROOT = Path(__file__).resolve().parent.parent


class Cluster:
    """A scheduler and its workers, each in its own process group."""

    def __init__(self, folder: Path, *, tls: dict[str, Path] | None = None):
        self.folder = folder
        self.tls = tls
        folder.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # the workers import tests.* helpers
            "HF_HUB_OFFLINE": "1",
            # a poison file gives up after two workers died on it
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        }
        file = folder / "scheduler.json"
        self._start(
            "scheduler", "--scheduler-file", str(file), "--port", "0",
            "--host", "127.0.0.1", "--no-dashboard",
            *self._tls_options(), *(["--protocol", "tls"] if tls else []),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]

    def _tls_options(self) -> list[str]:
        if not self.tls:
            return []
        return [
            "--tls-ca-file", str(self.tls["ca"]),
            "--tls-cert", str(self.tls["cert"]),
            "--tls-key", str(self.tls["key"]),
        ]  # fmt: skip

    def _start(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.processes.append(
            subprocess.Popen(
                [DASK, *args],
                env=env or self.env,
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def worker(self, name: str, *options: str, **env: str) -> None:
        self._start(
            "worker", self.address, "--name", name, "--nworkers", "1",
            "--nthreads", "1", "--no-dashboard",
            "--local-directory", str(self.folder / name), *self._tls_options(),
            *options, env={**self.env, **env},
        )  # fmt: skip

    def client(self) -> Any:
        security = None
        if self.tls:
            security = distributed.security.Security(
                tls_ca_file=str(self.tls["ca"]),
                tls_client_cert=str(self.tls["cert"]),
                tls_client_key=str(self.tls["key"]),
                require_encryption=True,
            )
        return distributed.Client(self.address, security=security, timeout=30)

    def wait_for(self, workers: int) -> None:
        with self.client() as client:
            client.wait_for_workers(workers, timeout=120)

    def worker_pids(self) -> dict[str, int]:
        """Each worker's process id by its name (not its nanny's)."""
        with self.client() as client:
            info = client.scheduler_info()["workers"]
            pids = client.run(os.getpid)
        return {info[a]["name"]: pid for a, pid in pids.items()}

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.worker("w1")
        running.worker("w2")
        running.wait_for(2)
        yield running
    finally:
        running.stop()


class TestEssentiaOnACluster(ClapHelper):
    @pytest.fixture(autouse=True)
    def _cluster(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def tracks(self, count: int, prefix: str = "t") -> list[Any]:
        return [
            self.add_track(self.audio.a120_flac, title=f"{prefix}{n}")
            for n in range(count)
        ]

    def test_every_item_is_analysed_and_stored_once(self, caplog):
        items = self.tracks(4)
        with caplog.at_level(logging.INFO):
            self.essentia(
                "--cluster", self.cluster.address, "--profile", "rhythm"
            )
        assert "analysed 4, skipped 0, failed 0" in caplog.text
        for item in items:
            item.load()
            assert item["essentia_bpm"] == pytest.approx(120, abs=2)
            assert item.title.startswith("t")  # tags are left alone
        caplog.clear()
        with caplog.at_level(logging.INFO):
            self.essentia(
                "--cluster", self.cluster.address, "--profile", "rhythm"
            )
        assert "nothing to analyse: 4 tracks already current" in caplog.text

    def test_a_worker_killed_mid_run_costs_nothing(self, caplog):
        items = self.tracks(8)
        pids = self.cluster.worker_pids()
        killed: list[int] = []

        def kill_after_the_first_result() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with self.lib.transaction() as tx:
                    done = tx.query(
                        "SELECT COUNT(*) FROM item_attributes WHERE key = ?",
                        ("essentia_analyzed",),
                    )[0][0]
                if done >= 1:
                    os.kill(pids["w1"], signal.SIGKILL)
                    killed.append(pids["w1"])
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_after_the_first_result)
        killer.start()
        with caplog.at_level(logging.INFO):
            self.essentia(  # music: slow enough to kill a worker mid-run
                "--cluster", self.cluster.address, "--profile", "music"
            )
        killer.join()
        assert killed, "no result came back to kill a worker after"
        assert "analysed 8, skipped 0, failed 0" in caplog.text
        for item in items:
            item.load()
            assert "essentia_bpm" in item
        self.cluster.wait_for(2)  # the nanny started it again

    def test_workers_read_the_music_where_the_path_map_says(self, caplog):
        items = self.tracks(2, prefix="mapped")
        mounted = self.lib_path.parent / "mounted"
        self.lib_path.rename(mounted)  # only the workers' path exists now
        try:
            line = self.fails(
                "essentia",
                "--cluster",
                self.cluster.address,
                "--profile",
                "rhythm",
            )
            assert line.startswith(
                "audiofeatures.cluster: no worker of the cluster can run essentia "
                "(profile rhythm): "
            )
            assert f"w1: cannot read {os.fsdecode(items[0].path)}" in line
            assert line.endswith("(do they see the music there, or elsewhere?)")
            self.config["audiofeatures"]["cluster"]["path_map"] = {
                os.fsdecode(self.lib_path): str(mounted)
            }
            with caplog.at_level(logging.INFO):
                self.essentia(
                    "--cluster", self.cluster.address, "--profile", "rhythm"
                )
            assert "analysed 2, skipped 0, failed 0" in caplog.text
        finally:
            mounted.rename(self.lib_path)
        for item in items:
            item.load()
            assert "essentia_bpm" in item

    def test_a_file_that_kills_every_worker_fails_alone(
        self, monkeypatch, caplog
    ):
        monkeypatch.setattr(essentia_analysis, "Analyzer", CrashingAnalyzer)
        good = self.tracks(2, prefix="fine")
        crash = self.add_track(self.audio.a120_flac, title="crash")
        with pytest.raises(UserError, match="1 of 3 tracks"):
            self.essentia(
                "--cluster", self.cluster.address, "--profile", "rhythm"
            )
        assert (
            f"{os.fsdecode(crash.path)}: every worker that read it died"
            in caplog.text
        )
        for item in good:
            item.load()
            assert "essentia_bpm" in item
        crash.load()
        assert "essentia_analyzed" not in crash
        self.cluster.wait_for(2)

    def test_dump_and_bad_addresses_are_one_line(self):
        self.tracks(1)
        assert (
            self.fails(
                "essentia", "--cluster", self.cluster.address, "--dump", "/tmp"
            )
            == "--dump writes files on this machine: run it without --cluster"
        )
        line = self.fails("essentia", "--cluster", "tcp://127.0.0.1:9")
        assert line.startswith(
            "audiofeatures.cluster: cannot reach the Dask scheduler at "
            "tcp://127.0.0.1:9"
        )


def _hub_cache(root: Path, model_dir: Path, revision: str) -> Path:
    """A hub cache holding ``test-org/tiny-clap`` at ``revision``."""
    repo = root / "models--test-org--tiny-clap"
    shutil.copytree(model_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return root


class TestClapOnACluster(ClapHelper):
    def test_a_worker_with_another_model_is_left_out(
        self, cluster, tmp_path, monkeypatch, caplog
    ):
        mine = _hub_cache(tmp_path / "hub", self.assets.model_dir, "a" * 40)
        other = _hub_cache(tmp_path / "other", self.assets.model_dir, "b" * 40)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(mine))
        self.config["audiofeatures"]["clap"]["model"] = "test-org/tiny-clap"
        items = [
            self.add_track(self.audio.a120_flac, title=f"c{n}")
            for n in range(3)
        ]
        # A cluster of its own: the shared one's workers see no hub cache.
        own = Cluster(tmp_path / "dask")
        try:
            own.worker("same", HF_HUB_CACHE=str(mine))
            own.worker("stale", HF_HUB_CACHE=str(other))
            own.wait_for(2)
            with caplog.at_level(logging.INFO):
                self.clap("--cluster", own.address)
        finally:
            own.stop()
        assert "worker stale is left out: model " in caplog.text
        assert "worker same is left out" not in caplog.text
        assert "embedded 3, skipped 0, failed 0" in caplog.text
        for item in items:
            item.load()
            assert item["clap_model"].startswith("tiny-clap")


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and a certificate it signed, made with openssl."""
    folder.mkdir()
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key = folder / "cert.pem", folder / "key.pem"

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", str(ca_key), "-out", str(ca),
    )  # fmt: skip
    request = folder / "cert.csr"
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(request),
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey",
        str(ca_key), "-CAcreateserial", "-days", "2", "-out", str(cert),
    )  # fmt: skip
    return {"ca": ca, "cert": cert, "key": key}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
class TestTls(ClapHelper):
    def test_a_tls_cluster_takes_only_clients_with_its_certificates(
        self, tmp_path, caplog
    ):
        files = make_certificates(tmp_path / "tls")
        item = self.add_track(self.audio.a120_flac, title="secret")
        secure = Cluster(tmp_path / "dask", tls=files)
        try:
            secure.worker("tls-worker")
            secure.wait_for(1)
            assert secure.address.startswith("tls://")
            line = self.fails(
                "essentia", "--cluster", secure.address, "--profile", "rhythm"
            )
            assert line == (
                f"audiofeatures.cluster: the Dask scheduler at {secure.address} "
                "speaks TLS: set tls (ca_file, cert, key) to the CA and this "
                "machine's PEM files"
            )
            self.config["audiofeatures"]["cluster"]["tls"] = {
                "ca_file": str(files["ca"]),
                "cert": str(files["cert"]),
                "key": str(files["key"]),
            }
            with caplog.at_level(logging.INFO):
                self.essentia(
                    "--cluster", secure.address, "--profile", "rhythm"
                )
        finally:
            secure.stop()
        assert "analysed 1, skipped 0, failed 0" in caplog.text
        item.load()
        assert "essentia_bpm" in item


def _handlers() -> list[str]:
    """On a worker: the kinds of handler it has built."""
    from beets_audiofeatures import cluster

    return sorted(type(h).__name__ for h in cluster._HANDLERS.values())


class TestGpuPlacement(ClapHelper):
    def test_clap_tasks_go_to_the_workers_with_the_resources(
        self, tmp_path, caplog
    ):
        items = [
            self.add_track(self.audio.a120_flac, title=f"g{n}")
            for n in range(4)
        ]
        own = Cluster(tmp_path / "dask")
        try:
            own.worker("cpu-only")
            own.worker("gpu", "--resources", "GPU=1")
            own.wait_for(2)
            self.config["audiofeatures"]["cluster"]["clap_resources"] = {
                "GPU": 1
            }
            with caplog.at_level(logging.INFO):
                self.clap("--cluster", own.address)
            with own.client() as client:
                info = client.scheduler_info()["workers"]
                built = {
                    info[address]["name"]: kinds
                    for address, kinds in client.run(_handlers).items()
                }
        finally:
            own.stop()
        assert "embedded 4, skipped 0, failed 0" in caplog.text
        assert (
            "worker cpu-only is left out: it has no resources GPU=1"
            in caplog.text
        )
        assert built == {"gpu": ["ClapBatch"], "cpu-only": []}
        for item in items:
            item.load()
            assert "clap_model" in item


def test_the_import_stage_analyses_on_the_configured_cluster(
    cluster: Cluster, tmp_path: Path, audio: Any
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for n in range(2):
        synth.encode(audio.a120_wav, incoming / f"{n}.flac")
    env, db = synth.library_config(
        tmp_path,
        "audiofeatures: {essentia: {auto: yes, profile: rhythm, jobs: 1}, "
        f"cluster: {{address: '{cluster.address}'}}}}\n",
    )
    run = subprocess.run(
        # -v: beets shows the plugins' import lines only when verbose
        [synth.BEET, "-v", "import", "-A", "-q", str(incoming)],
        env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"connected to the Dask scheduler at {cluster.address}" in run.stderr
    assert "Traceback" not in run.stderr
    with sqlite3.connect(db) as conn:
        bpms = conn.execute(
            "SELECT value FROM item_attributes WHERE key = 'essentia_bpm'"
        ).fetchall()
    assert len(bpms) == 2
    assert all(abs(float(bpm) - 120) <= 2 for (bpm,) in bpms)


class TestClusterSettings(ClapHelper):
    def test_a_bad_cluster_setting_stops_only_runs_that_use_it(self):
        self.add_track(self.audio.a120_flac, title="one")
        self.config["audiofeatures"]["cluster"]["address"] = 5
        self.run_command("ls")  # no traceback, no error
        assert "one" in self.io.getoutput()
        self.essentia("-p", "--profile", "rhythm")
        assert "would analyse 1 of 1 track" in self.io.getoutput()
        assert self.fails("essentia", "--profile", "rhythm") == (
            "audiofeatures.cluster.address is 5: use a scheduler address "
            "or local:N"
        )
        self.config["audiofeatures"]["cluster"]["address"] = ""
        self.config["audiofeatures"]["cluster"]["path_map"] = ["/music"]
        assert self.fails("clap", "--cluster", "local:1") == (
            "audiofeatures.cluster.path_map is ['/music']: use a mapping of "
            "this machine's folders to the workers' folders"
        )
        self.config["audiofeatures"]["cluster"]["path_map"] = {}
        assert self.fails("essentia", "--cluster", "local:zero").startswith(
            "audiofeatures.cluster: --cluster local:zero: give local:N"
        )


#: Batches of three tracks (``batch_size`` 6, two windows a track), with
#: an undecodable file (x) first, in the middle, last, and alone; a and b
#: are two pieces of music, so a vector handed to the wrong track shows.
BATCHES = ("xab", "axb", "abx", "xxx")


class TestEachResultBelongsToItsTrack(ClapHelper):
    def batches(self) -> dict[str, list[Any]]:
        """The tracks of :data:`BATCHES` by kind, in the library's order."""
        self.config["audiofeatures"]["clap"]["batch_size"] = 6
        sources = {
            "a": self.audio.a120_flac,
            "b": self.audio.c90_mp3,
            "x": self.audio.text,
        }
        kinds: dict[str, list[Any]] = {"a": [], "b": [], "x": []}
        for number, kind in enumerate("".join(BATCHES)):
            item = self.add_track(sources[kind], title=f"{number:02d}{kind}")
            kinds[kind].append(item)
        return kinds

    def assert_each_track_got_its_own_result(
        self, kinds: dict[str, list[Any]]
    ) -> None:
        failed = {
            line.split(": ", 1)[0]
            for line in self.logged()
            if "ffmpeg could not decode it" in line
        }
        assert failed == {os.fsdecode(item.path) for item in kinds["x"]}
        store = self.store()
        for item in kinds["x"]:
            key = self.item(item_id(item)).get("clap_uid")
            assert key is None or store.get(item_id(item), key) is None
        a, b = ([self.vector(item_id(item)) for item in kinds[k]] for k in "ab")
        for vectors in (a, b):  # the same music: the same vector
            for vector in vectors[1:]:
                np.testing.assert_allclose(vector, vectors[0], atol=1e-4)
        assert float(a[0] @ b[0]) < 0.9999  # and other music another

    def test_a_failed_file_fails_alone_in_a_local_batch(self):
        kinds = self.batches()
        self.caplog.clear()
        with pytest.raises(UserError, match=r"^6 of 12 tracks could not"):
            self.clap()
        self.assert_each_track_got_its_own_result(kinds)

    def test_a_failed_file_fails_alone_in_a_batch_on_a_cluster(
        self, cluster: Cluster
    ):
        kinds = self.batches()
        self.caplog.clear()
        with pytest.raises(UserError, match=r"^6 of 12 tracks could not"):
            self.clap("--cluster", cluster.address)
        self.assert_each_track_got_its_own_result(kinds)


class TestPathMappedCopies(ClapHelper):
    def test_a_mirror_holding_another_recording_fails_that_track_alone(
        self, cluster: Cluster, tmp_path: Path
    ):
        kept = self.add_track(self.audio.a120_wav, title="kept")
        swapped = self.add_track(self.audio.a120_wav, title="swapped")
        mirror = tmp_path / "mirror"
        mirror.mkdir()
        shutil.copy(kept.filepath, mirror / "kept.wav")
        # another recording of the same length: the same size, too
        other = synth.make_wav(mirror / "swapped.wav", 90, "C", seconds=15)
        assert other.stat().st_size == os.path.getsize(swapped.path)
        self.config["audiofeatures"]["cluster"]["path_map"] = {
            os.fsdecode(self.lib_path): str(mirror)
        }
        self.caplog.clear()
        with pytest.raises(UserError, match=r"^1 of 2 tracks could not"):
            self.clap("--cluster", cluster.address)
        failed = [line for line in self.logged() if "swapped" in line]
        assert failed == [
            (
                f"{os.fsdecode(swapped.path)}: the worker's copy is not this "
                "file: the same size, but other bytes in its first or last MB "
                f"(at {other} on the worker)"
            )
        ]
        self.vector(item_id(kept))
        key = self.item(item_id(swapped)).get("clap_uid")
        assert key is None or self.store().get(item_id(swapped), key) is None


def test_a_worker_batch_with_a_result_missing_stores_nothing_of_it(
    cluster: Cluster,
) -> None:
    from beets_audiofeatures.cluster import DaskExecutor, PathMap
    from beets_audiofeatures.runner import Failure, Job, RemoteWork
    from tests.test_result_contract import LosesTheLast

    work: RemoteWork[str, str] = RemoteWork(
        name="upper", factory=LosesTheLast, identity={}, report=dict,
        batch=3, batched=True,
    )  # fmt: skip
    executor = DaskExecutor(cluster.client(), work, PathMap(), print)
    try:
        results = dict(executor.run([Job(n, f"t{n}") for n in range(1, 7)]))
    finally:
        executor.close()
    lost = Failure("internal error: the worker returned 2 results for 3 tracks")
    assert results == {n: lost for n in range(1, 7)}
