"""`--word_vectors LANG=URL`: `modeling_manmoe.data.download` against a local HTTP server on 127.0.0.1 (loopback
only), and `examples/run_ner.py` reading its vectors from URLs."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from functools import partial
from pathlib import Path

import pytest

from modeling_manmoe.data.download import cached_vector_path, is_url, resolve_vector_source
from modeling_manmoe.errors import VectorFileError
from tests.examples.test_run_ner import load_run_ner, write_fixtures

CONTENT = b"2 3\nhello 0.1 0.2 0.3\nworld 0.4 0.5 0.6\n"


class FileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder's files; under `/short/NAME` announces 100 bytes more than it sends, then closes."""

    def do_GET(self):
        if self.path.startswith("/short/"):
            data = (Path(self.directory) / self.path.removeprefix("/short/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) + 100))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):  # quiet
        pass


class Server:
    """A local HTTP server in a thread, serving `folder`; `stop()` shuts it down (also at teardown)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(FileHandler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=10)


@pytest.fixture
def server(tmp_path, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):  # loopback only, never through a proxy of the environment
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "en.vec").write_bytes(CONTENT)
    running = Server(folder)
    yield running
    running.stop()


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def test_a_local_path_is_returned_unchanged(tmp_path):
    assert resolve_vector_source("vectors/en.vec.gz", tmp_path) == "vectors/en.vec.gz"
    assert not is_url("/data/en.vec") and not is_url("C:/en.vec") and is_url("HTTPS://x.org/en.vec")
    assert not list(tmp_path.iterdir())


def test_downloaded_once_then_reused_without_network(server, tmp_path):
    cache, url = tmp_path / "cache", f"{server.url}/en.vec"
    path = resolve_vector_source(url, cache)
    assert Path(path) == cached_vector_path(url, cache) and Path(path).read_bytes() == CONTENT
    assert Path(path).parent.name == hashlib.sha256(url.encode()).hexdigest() and Path(path).name == "en.vec"
    server.stop()
    assert resolve_vector_source(url, cache) == path, "reused without the server"
    digest = hashlib.sha256(CONTENT).hexdigest()
    assert resolve_vector_source(f"{url}#sha256={digest.upper()}", cache) == path, "the digest is checked locally"
    assert leftovers(cache) == ["en.vec"]


def test_sha256_fragment_accepted_and_a_wrong_digest_refused(server, tmp_path):
    cache, url = tmp_path / "cache", f"{server.url}/en.vec"
    digest, wrong = hashlib.sha256(CONTENT).hexdigest(), "0" * 64
    with pytest.raises(VectorFileError) as refused:
        resolve_vector_source(f"{url}#sha256={wrong}", cache)
    assert url in str(refused.value) and digest in str(refused.value) and wrong in str(refused.value)
    assert leftovers(cache) == [], "a file with the wrong digest is not kept"
    path = resolve_vector_source(f"{url}#sha256={digest}", cache)
    assert Path(path).read_bytes() == CONTENT
    # a damaged cached copy is downloaded again, once
    Path(path).write_bytes(b"damaged")
    assert Path(resolve_vector_source(f"{url}#sha256={digest}", cache)).read_bytes() == CONTENT
    # a cached copy that the server's file no longer matches: downloaded again, then refused naming both digests
    (server.folder / "en.vec").write_bytes(CONTENT + b"again 0 0 0\n")
    Path(path).write_bytes(b"damaged")
    with pytest.raises(
        VectorFileError, match=f"{url}: the downloaded file has sha256 [0-9a-f]{{64}}, expected {digest}"
    ):
        resolve_vector_source(f"{url}#sha256={digest}", cache)
    with pytest.raises(VectorFileError, match=r"unsupported URL fragment '#md5=abc'; expected '#sha256='"):
        resolve_vector_source(f"{url}#md5=abc", cache)


def test_http_errors_and_refused_connections_name_the_url(server, tmp_path):
    cache = tmp_path / "cache"
    missing = f"{server.url}/missing.vec"
    with pytest.raises(VectorFileError, match=f"{missing}: could not be downloaded \\(HTTP 404"):
        resolve_vector_source(missing, cache)
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/de.vec.gz"
    with pytest.raises(VectorFileError) as refused:
        resolve_vector_source(url, cache)
    message = str(refused.value)
    assert message.startswith(f"{url}: could not be downloaded") and "refused" in message.lower()
    assert str(cached_vector_path(url, cache)) in message and "LANG=PATH" in message
    assert leftovers(cache) == []


def test_an_interrupted_or_oversized_download_leaves_nothing_that_looks_complete(server, tmp_path):
    cache = tmp_path / "cache"
    short = f"{server.url}/short/en.vec"
    with pytest.raises(VectorFileError, match=f"{short}: the download stopped after {len(CONTENT)} of"):
        resolve_vector_source(short, cache)
    assert not cached_vector_path(short, cache).exists() and leftovers(cache) == []
    url = f"{server.url}/en.vec"
    with pytest.raises(VectorFileError, match=f"{url}: the server announces {len(CONTENT)} bytes, more than the limit"):
        resolve_vector_source(url, cache, max_bytes=10)
    assert leftovers(cache) == []
    assert Path(resolve_vector_source(url, cache)).read_bytes() == CONTENT, "a later call downloads it whole"


def test_run_ner_reads_word_vectors_from_urls(server, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", str(tmp_path / "hf_home"))
    files, vectors = write_fixtures(server.folder)
    urls = []
    for item in vectors:
        lang, path = item.split("=", 1)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        urls.append(f"{lang}={server.url}/{Path(path).name}" + (f"#sha256={digest}" if lang == "nl" else ""))
    out = tmp_path / "run"
    argv = ["--source_languages", "en", "de", "es", "--target_language", "nl", "--train_files", *files,
            "--validation_files", *files, "--word_vectors", *urls, "--output_dir", str(out), "--do_train",
            "--max_steps", "1", "--per_device_train_batch_size", "2", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip
    load_run_ner().main(argv)
    provenance = json.loads((out / "all_results.json").read_text())["data_and_vector_files"]
    for item in urls:
        lang, url = item.split("=", 1)
        entry = provenance[f"word_vectors/{lang}"]
        assert entry["url"] == url and Path(entry["path"]).is_relative_to(tmp_path / "hf_home" / "modeling_manmoe")
        assert entry["sha256"] == hashlib.sha256((server.folder / f"{lang}.vec.gz").read_bytes()).hexdigest()
