"""gs:// paths checked before a run starts: one line naming the path and the cause, in seconds.

Left to Beam, a path that cannot be reached (no credentials, no network, no such bucket, no
permission) fails only after Beam's retries: ~30 s of looking for credentials, then minutes of
retried requests, ending in a BeamIOError traceback. Here each gs:// path is probed once, with
retries off and short timeouts: one listing of at most one object under the path's prefix (the
bucket must exist and be listable; an input's objects are then matched by Beam as usual). Nothing
is written. A public bucket can be read without credentials; writing needs them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from schemas.cli import UserError

PROBE_TIMEOUT_S = 20.0  # the whole probe of one path: credentials, token and one request
_REQUEST_TIMEOUT = (5.0, 10.0)  # (connect, read) seconds of the listing request
_NO_CREDENTIALS = (
    "no Google Cloud credentials found (run `gcloud auth application-default login` "
    "or set GOOGLE_APPLICATION_CREDENTIALS)"
)


def check_reachable(paths: dict[str, str | None], writable: Iterable[str] = ()) -> None:
    """UserError ("--flag gs://...: cause") for the first gs:// path in {flag: path} that cannot be reached.

    Flags in `writable` name outputs: they need credentials, even where anonymous reading works.
    Paths that are not gs:// are left alone.
    """
    remote = {flag: path for flag, path in paths.items() if path and str(path).startswith("gs://")}
    if not remote:
        return
    writable = set(writable)
    credentials = None
    for flag, path in remote.items():
        problem, credentials = _with_deadline(_probe, path, credentials, flag in writable)
        if problem:
            raise UserError(f"{flag} {path}: {problem}")


def _with_deadline(probe, path: str, credentials, needs_credentials: bool):
    """(problem or None, credentials) of probe(...), or a timeout problem after PROBE_TIMEOUT_S."""
    result: list = []
    worker = threading.Thread(
        target=lambda: result.append(probe(path, credentials, needs_credentials)), name="gcs-probe", daemon=True
    )
    worker.start()
    worker.join(PROBE_TIMEOUT_S)
    if not result:
        return f"no answer from Cloud Storage within {PROBE_TIMEOUT_S:.0f} s (network down or blocked?)", credentials
    return result[0]


def _probe(path: str, credentials, needs_credentials: bool):
    """(None, credentials) if a listing under `path` answers; else (the cause in a few words, credentials)."""
    bucket, _, key = path[len("gs://") :].partition("/")
    if not bucket:
        return "no bucket name in the path", credentials
    try:
        from google.cloud import storage
    except ImportError:
        return "gs:// paths need the Google Cloud extras (pip install 'apache-beam[gcp]')", credentials
    missing = None
    if credentials is None:
        credentials, missing = _default_credentials()
    if credentials is None and needs_credentials:
        return f"{missing}; writing to Cloud Storage needs them", credentials
    try:
        if credentials is None:
            client = storage.Client.create_anonymous_client()
        else:
            client = storage.Client(credentials=credentials, project=None)
        prefix = re.split(r"[*?\[]", key, maxsplit=1)[0]
        list(client.list_blobs(bucket, prefix=prefix, max_results=1, timeout=_REQUEST_TIMEOUT, retry=None))
    except Exception as error:  # noqa: BLE001 -- every failure becomes one line; nothing else is done here
        cause = describe_error(error, bucket)
        return (f"{cause}; and {missing}" if missing else cause), credentials
    return None, credentials


def _default_credentials():
    """(Application Default Credentials, None), or (None, why there are none). No retries."""
    try:
        import google.auth
        from google.auth import exceptions as auth_exceptions
    except ImportError:
        return None, "google-auth is not installed"
    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
    except auth_exceptions.DefaultCredentialsError as error:
        detail = _first_line(error)
        return None, _NO_CREDENTIALS if "were not found" in detail else f"Google Cloud credentials unusable: {detail}"
    return credentials, None


def describe_error(error: BaseException, bucket: str) -> str:
    """A failed Cloud Storage request -> its cause in a few words (no traceback)."""
    from google.api_core import exceptions as api_exceptions

    if isinstance(error, api_exceptions.NotFound):
        return f"bucket {bucket} does not exist"
    if isinstance(error, api_exceptions.Unauthorized | api_exceptions.Forbidden):
        return f"access denied ({_first_line(getattr(error, 'message', error))})"
    try:
        from google.auth import exceptions as auth_exceptions

        if isinstance(error, auth_exceptions.RefreshError):
            return f"the credentials were refused ({_first_line(error)})"
        if isinstance(error, auth_exceptions.TransportError):
            return f"cannot reach Google's token service (network): {_first_line(error)}"
    except ImportError:
        pass
    try:
        import requests

        if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return f"cannot reach Cloud Storage (network): {_short_network_error(error)}"
    except ImportError:
        pass
    if isinstance(error, api_exceptions.GoogleAPICallError):
        return f"Cloud Storage answered {getattr(error, 'code', '?')}: {_first_line(getattr(error, 'message', error))}"
    if isinstance(error, OSError):
        return f"cannot reach Cloud Storage (network): {_first_line(error)}"
    return f"{type(error).__name__}: {_first_line(error)}"


def _short_network_error(error: BaseException) -> str:
    text = str(error)
    for cause in ("Failed to resolve", "Connection refused", "Network is unreachable", "timed out", "Read timed out"):
        if cause in text:
            host = re.search(r"host='([^']+)'", text)
            return f"{cause}" + (f" ({host.group(1)})" if host else "")
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(value) -> str:
    lines = str(value).strip().splitlines()
    return (lines[0] if lines else type(value).__name__)[:200]
