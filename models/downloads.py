"""Downloading weights files with progress a caller can read (the web page's
progress bar), and telling "no network" apart at once.

Plain URLs (torchvision's checkpoints, timm's older release files) go into
torch's hub cache with torch.hub's conventions: a temporary file in the same
directory, the SHA-256 prefix named in the file name checked
(``torch.hub.HASH_REGEX``), then an atomic rename. torch.hub's own
``download_url_to_file`` does the same steps but reports progress only to a
tqdm bar on stderr, which a server cannot pass on; this loop reports each
chunk to a callback instead, and refuses a body shorter than its
Content-Length. Hugging Face files go through huggingface_hub's own
``hf_hub_download`` (its cache, the one timm's loader reads), whose
``tqdm_class`` hook carries the progress.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import torch

# (bytes received so far, total bytes or None when the server does not say)
Progress = Callable[[int, int | None], None]
CHUNK = 1 << 16


class DownloadError(Exception):
    """A download that failed; the message says why, without local paths."""


# host -> (answered, time.monotonic() of the probe): the last probe's answer,
# so that messages stop offering a download this server cannot make.
_probed: dict[str, tuple[bool, float]] = {}
PROBE_MEMORY_S = 300.0


def probe(url: str, timeout_s: float = 3.0) -> None:
    """Raise DownloadError at once when ``url``'s host cannot be reached (no
    DNS answer, no route, refused): a TCP connection within ``timeout_s``.
    The answer is remembered for known_unreachable."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as exc:
        _probed[parts.hostname] = (False, time.monotonic())
        raise DownloadError(f"This server can't reach the internet: there is no network route to "
                            f"{parts.hostname} ({_reason(exc)}).") from None
    _probed[parts.hostname] = (True, time.monotonic())


def known_unreachable(url: str) -> bool:
    """Whether the last probe of ``url``'s host (within PROBE_MEMORY_S) failed."""
    seen = _probed.get(urlsplit(url).hostname)
    return seen is not None and not seen[0] and time.monotonic() - seen[1] < PROBE_MEMORY_S


def _reason(exc: BaseException) -> str:
    """Plain words for a network failure (urllib wraps the socket's in .reason)."""
    cause = getattr(exc, "reason", None)
    exc = cause if isinstance(cause, BaseException) else exc
    if isinstance(exc, socket.gaierror):
        return "its name could not be looked up: no network or no DNS"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, OSError):
        return "the network is unreachable"
    return str(cause or exc.__class__.__name__)


def download_url(url: str, target: Path, progress: Progress | None = None, timeout_s: float = 30.0) -> None:
    """Download ``url`` to ``target``, checking the SHA-256 prefix that the
    file name carries (``name-<hex>.pth``, torch.hub's convention) and the
    length the server announced. Nothing is left at ``target`` on failure.

    Raises DownloadError: unreachable host, HTTP error, truncated body,
    hash mismatch."""
    target.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(target.name)
    expected_prefix = match.group(1) if match else None
    name = os.path.basename(urlsplit(url).path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        sha256 = hashlib.sha256()
        received = 0
        with os.fdopen(descriptor, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                sha256.update(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
        if total is not None and received != total:
            raise DownloadError(f"The download of {name} stopped after {received:,} of {total:,} bytes; try again.")
        digest = sha256.hexdigest()
        if expected_prefix and not digest.startswith(expected_prefix):
            raise DownloadError(f"The download of {name} failed its integrity check: its SHA-256 begins "
                                f"{digest[:len(expected_prefix)]}, its name says {expected_prefix}.")
        os.replace(temporary, target)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"The server answered {exc.code} {exc.reason} for {name}.") from None
    except http.client.IncompleteRead:  # the connection closed before Content-Length bytes came
        raise DownloadError(f"The download of {name} stopped after {received:,} of {total:,} bytes; "
                            f"try again.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"The download of {name} failed ({_reason(exc)}).") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def download_hf(repo_id: str, filename: str, progress: Progress | None = None) -> Path:
    """A file of a Hugging Face repository into huggingface_hub's cache (the
    one timm reads), via ``hf_hub_download``; its path.

    Raises DownloadError when the hub cannot be reached or refuses."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from tqdm.auto import tqdm

    class _Reporting(tqdm):
        """huggingface_hub's progress bar, passed on to ``progress``."""

        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no bar on the server's stderr
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            if progress and self.total:
                progress(int(self.n), int(self.total))

    try:
        return Path(hf_hub_download(repo_id, filename, tqdm_class=_Reporting))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise DownloadError(f"Could not download {filename} of {repo_id} from the Hugging Face hub "
                            f"({exc.__class__.__name__}).") from None
