"""http(s) inputs: downloaded once into a cache, with a size limit and a timeout.

A URL that serves a media file directly is streamed to ``<cache>/downloads/``; a web page (an
HTML response, as video sites serve) needs the optional ``yt-dlp`` extra
(``pip install "hand2robot[yt]"``), which finds and fetches the video behind the page.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.decoding import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from pipeline.exceptions import InputMediaError


@dataclass(frozen=True)
class DownloadConfig:
    """Limits of URL downloads."""

    max_bytes: int = 2 * 1024**3
    """Largest file fetched [bytes] (2 GiB); larger responses are refused."""
    timeout_s: float = 60.0
    """Socket timeout of each connect and read [s]."""


def is_url(value: str | Path) -> bool:
    """Whether ``value`` is an http(s) URL."""
    return str(value).startswith(("http://", "https://"))


def _cached_name(url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(urllib.parse.urlparse(url).path).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:] or "download"
    if Path(name).suffix.lower() not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        name += ".mp4"
    return f"{digest}-{name}"


def fetch(url: str, cache: Path, config: DownloadConfig | None = None) -> Path:
    """Download ``url`` into ``cache/downloads`` once; return the local file.

    Raises:
        InputMediaError: Not http(s), unreachable, an HTTP error, too large, a timeout, or a
            web page without the ``yt-dlp`` extra.
    """
    config = config or DownloadConfig()
    if not is_url(url):
        raise InputMediaError(f"{url}: not an http(s) URL")
    folder = cache / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _cached_name(url)
    if target.is_file():
        return target
    request = urllib.request.Request(url, headers={"User-Agent": "hand2robot"})
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            kind = response.headers.get("Content-Type", "")
            if kind.startswith("text/html"):
                return _fetch_page(url, target, config)
            length = response.headers.get("Content-Length")
            if length is not None and int(length) > config.max_bytes:
                raise InputMediaError(
                    f"{url}: {int(length)} bytes is over the download limit of "
                    f"{config.max_bytes} bytes"
                )
            handle, temp = tempfile.mkstemp(dir=folder, prefix=".part-")
            try:
                size = 0
                with os.fdopen(handle, "wb") as out:
                    while chunk := response.read(1 << 20):
                        size += len(chunk)
                        if size > config.max_bytes:
                            raise InputMediaError(
                                f"{url}: over the download limit of {config.max_bytes} bytes"
                            )
                        out.write(chunk)
                if size == 0:
                    raise InputMediaError(f"{url}: the server sent no data")
                os.replace(temp, target)
            finally:
                Path(temp).unlink(missing_ok=True)
    except urllib.error.HTTPError as err:
        raise InputMediaError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise InputMediaError(f"{url}: download failed ({reason})") from None
    return target


def _fetch_page(url: str, target: Path, config: DownloadConfig) -> Path:
    """The video behind a web page, through yt-dlp."""
    try:
        import yt_dlp
    except ImportError:
        raise InputMediaError(
            f"{url} is a web page, not a media file; install the extra: "
            'pip install "hand2robot[yt]"'
        ) from None
    options = {
        "outtmpl": str(target.with_suffix("")) + ".%(ext)s",
        "format": "mp4/bestvideo[ext=mp4]/best",
        "socket_timeout": config.timeout_s,
        "max_filesize": config.max_bytes,
        "quiet": True,
        "no_warnings": True,  # e.g. "falling back on the generic extractor"; errors still raise
        "noprogress": True,
    }
    try:
        with yt_dlp.YoutubeDL(options) as downloader:
            info = downloader.extract_info(url, download=True)
            path = Path(downloader.prepare_filename(info))
    except Exception as err:  # noqa: BLE001 - yt-dlp raises many types; all are input errors
        raise InputMediaError(f"{url}: yt-dlp could not fetch the video ({err})") from None
    if not path.is_file():
        raise InputMediaError(f"{url}: yt-dlp wrote no file")
    os.replace(path, target)
    return target
