"""Word-vector files given as URLs: downloaded once into the Hugging Face cache folder, then read from there.

`resolve_vector_source` turns a `--word_vectors` value into a local file: a local path is returned as it is; an
`http://` or `https://` URL names the file

    $HF_HOME/modeling_manmoe/vectors/<sha256 of the URL without its fragment>/<the URL's file name>

which is downloaded when it is not there yet (with a progress bar) and used as it is, without any network access,
when it is. A `#sha256=<64 hex digits>` fragment gives the file's expected digest, checked after the download and on
every reuse. A download goes to a temporary file in the same folder that is renamed into place only once it is
complete (and its digest right), so an interrupted download never looks complete. Without network, a file
downloaded elsewhere can be placed at that path by hand.

    resolve_vector_source("https://dl.fbaipublicfiles.com/arrival/vectors/wiki.multi.nl.vec")
    # '~/.cache/huggingface/modeling_manmoe/vectors/3f1c…/wiki.multi.nl.vec'
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import VectorFileError
from ..run.outputs import sha256_file

logger = logging.getLogger(__name__)

URL_SCHEMES = ("http", "https")
DEFAULT_MAX_BYTES = 20 * 1024**3  # 20 GiB: MUSE's largest aligned .vec file is under 1 GiB
DEFAULT_TIMEOUT_S = 60.0
CHUNK_SIZE = 1 << 20
_SHA256_FRAGMENT = re.compile(r"sha256=([0-9a-fA-F]{64})")


def is_url(source: str) -> bool:
    """Whether `source` is an `http://` or `https://` URL (anything else is a local path)."""
    return urllib.parse.urlsplit(source).scheme.lower() in URL_SCHEMES


def vector_cache_dir() -> str:
    """`$HF_HOME/modeling_manmoe/vectors` (`huggingface_hub.constants.HF_HOME`, by default
    `~/.cache/huggingface`)."""
    from huggingface_hub import constants

    return os.path.join(constants.HF_HOME, "modeling_manmoe", "vectors")


def split_vector_url(source: str) -> tuple[str, str | None]:
    """(the URL without its fragment, the expected sha256 in lower case or None). Raises `VectorFileError` for a
    fragment other than `#sha256=<64 hex digits>`."""
    url, fragment = urllib.parse.urldefrag(source)
    if not fragment:
        return url, None
    match = _SHA256_FRAGMENT.fullmatch(fragment)
    if match is None:
        raise VectorFileError(f"{source}: unsupported URL fragment '#{fragment}'; expected '#sha256=' followed by 64 "
                              "hex digits, or no fragment")  # fmt: skip
    return url, match[1].lower()


def cached_vector_path(url: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the file of `url` is (or will be) cached: `cache_dir` (default `vector_cache_dir()`) / the sha256 of
    the URL without its fragment / the URL's file name (characters other than letters, digits, `.`, `-`, `+` and `_`
    replaced by `_`)."""
    url = urllib.parse.urldefrag(url)[0]
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    name = re.sub(r"[^\w.+-]", "_", name)[-200:].lstrip(".") or "vectors"
    folder = hashlib.sha256(url.encode("utf-8")).hexdigest()
    return Path(cache_dir if cache_dir is not None else vector_cache_dir()) / folder / name


def resolve_vector_source(
    source: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> str:
    """The local file of a word-vector source: `source` itself for a local path; for an `http(s)://` URL its cached
    copy (`cached_vector_path`), downloaded first when absent.

    Args:
        source: a path, or a URL with an optional `#sha256=<64 hex digits>` fragment.
        cache_dir: the cache folder (default `$HF_HOME/modeling_manmoe/vectors`).
        max_bytes: the largest file accepted (default 20 GiB); a larger one is refused while downloading.
        timeout: seconds to wait for the server to connect or to send more data.

    With a fragment, a cached file whose digest differs is downloaded again, once.

    Raises:
        VectorFileError: the URL could not be downloaded (offline, refused, HTTP error, interrupted), is larger than
            `max_bytes`, its fragment is not `#sha256=...`, or the downloaded file's sha256 is not the expected one.
            The message names the URL; nothing incomplete is left in the cache.
    """
    if not is_url(source):
        return source
    url, expected = split_vector_url(source)
    path = cached_vector_path(url, cache_dir)
    if path.is_file():
        if expected is None:
            return str(path)
        actual = sha256_file(path)
        if actual == expected:
            return str(path)
        logger.warning("%s: the cached file %s has sha256 %s, expected %s; downloading it again", url, path, actual,
                       expected)  # fmt: skip
    download(url, path, expected_sha256=expected, max_bytes=max_bytes, timeout=timeout)
    return str(path)


def download(
    url: str,
    path: Path,
    *,
    expected_sha256: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download `url` to `path` through a temporary file in the same folder, renamed into place once complete (all
    of Content-Length received, at most `max_bytes`, sha256 equal to `expected_sha256` when given). Shows a progress
    bar in bytes. Raises `VectorFileError` naming the URL; `path` is then left as it was."""
    from huggingface_hub.utils import tqdm

    from .. import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"modeling_manmoe/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise VectorFileError(f"{url}: could not be downloaded (HTTP {error.code} {error.reason}); check the URL, or "
                              "give a local path instead (--word_vectors LANG=PATH)") from error  # fmt: skip
    except (OSError, http.client.HTTPException) as error:  # URLError, refused connection, timeout, bad response
        raise _unreachable(url, path, error) from error
    with response:
        announced = response.headers.get("Content-Length")
        total = int(announced) if announced and announced.strip().isdigit() else None
        if total is not None and total > max_bytes:
            raise VectorFileError(f"{url}: the server announces {total:,} bytes, more than the limit of {max_bytes:,} "
                                  "bytes (max_bytes); download it yourself and give a local path")  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        digest, received = hashlib.sha256(), 0
        try:
            with os.fdopen(handle, "wb") as stream, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                         desc=path.name) as bar:  # fmt: skip
                while True:
                    try:
                        chunk = response.read(CHUNK_SIZE)
                    except (OSError, http.client.HTTPException) as error:  # reset, timeout, IncompleteRead
                        raise VectorFileError(f"{url}: the download failed after {received:,} bytes ({error}); "
                                              "nothing was kept, run again to retry") from error  # fmt: skip
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise VectorFileError(f"{url}: more than the limit of {max_bytes:,} bytes (max_bytes); "
                                              "download it yourself and give a local path")  # fmt: skip
                    stream.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                stream.flush()
                os.fsync(stream.fileno())
            if total is not None and received != total:
                raise VectorFileError(f"{url}: the download stopped after {received:,} of {total:,} bytes; nothing "
                                      "was kept, run again to retry")  # fmt: skip
            actual = digest.hexdigest()
            if expected_sha256 is not None and actual != expected_sha256:
                raise VectorFileError(f"{url}: the downloaded file has sha256 {actual}, expected {expected_sha256} "
                                      "(the URL's #sha256= fragment); nothing was kept")  # fmt: skip
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    logger.info("downloaded %s (%s bytes, sha256 %s) to %s", url, f"{received:,}", actual, path)
    return path


def _unreachable(url: str, path: Path, error: BaseException) -> VectorFileError:
    reason = getattr(error, "reason", None) or error
    return VectorFileError(
        f"{url}: could not be downloaded ({reason}). Without network, download the file elsewhere and place it at "
        f"{path} (it is then used without any download), or give a local path instead (--word_vectors LANG=PATH)"
    )


__all__ = [
    "DEFAULT_MAX_BYTES",
    "cached_vector_path",
    "download",
    "is_url",
    "resolve_vector_source",
    "split_vector_url",
    "vector_cache_dir",
]
