"""API -> Live: read the account's state for a plan, read-only, at the request floor.

The assistant object carries its ``file_ids``, so the whole live state costs ``ceil(N/100)``
GET /assistants pages (at least one) plus one GET /files?purpose=assistants, whatever the number
of assistants and attachments: never a request per assistant. The /files list runs on a second
thread while the assistant pages are followed, so the wall time is the page chain alone.

The one case that costs more is lock recovery: a desired file whose content (sha256) the lock
does not know may already be uploaded (a lost lock, an apply interrupted after an upload). Live
files that could be it (same basename, same size, not owned by the lock) are downloaded once
each and hashed; their hashes go into ``Live.file_sha256`` so the planner can adopt an upload
instead of making a duplicate. That is one extra GET /files/{id}/content per candidate.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from assistsync.api import ApiClient
from assistsync.model import Desired, Live, LiveAssistant, LiveFile, Lock

RECOVERY_WORKERS = 4
"""Downloads hashed at once during lock recovery (rare; bounded so a large account stays polite)."""


def recovery_candidates(desired: Desired, lock: Lock, files: list[LiveFile]) -> list[str]:
    """Ids of live files that must be hashed to recognise uploads the lock does not record.

    For each desired file whose content no owned live upload holds: live files with the same
    basename and size whose id the lock does not own. Each id appears once, in live order.
    Content the lock names under an upload that is gone counts as unknown: it may have been
    uploaded again by an apply that died before its lock write.
    """
    live_ids = {f.id for f in files}
    owned = lock.file_ids()
    known_shas = {sha for file_id, sha in lock.sha_by_file_id().items() if file_id in live_ids}
    wanted = {
        (path.rsplit("/", 1)[-1], f.size)
        for path, f in desired.files.items()
        if f.sha256 not in known_shas
    }
    if not wanted:
        return []
    seen: set[str] = set()
    candidates: list[str] = []
    for live in files:
        if live.id in owned or live.id in seen:
            continue
        if (live.filename, live.bytes) in wanted:
            seen.add(live.id)
            candidates.append(live.id)
    return candidates


Listing = tuple[list[LiveAssistant], list[LiveFile]]


def list_account(client: ApiClient) -> Listing:
    """Every assistant (API order) and every ``assistants`` file: the request floor.

    The /files list runs on a second thread while the assistant pages are followed.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="assistsync-fetch") as pool:
        files_future = pool.submit(client.list_files, "assistants")
        assistants = client.list_assistants()
        files = files_future.result()
    return assistants, files


class BackgroundListing:
    """``list_account`` started now on a daemon thread, so that it overlaps local work (loading
    and validating the manifests) instead of following it. ``result()`` waits for it.

    A daemon thread, not an executor: if the local work fails (a bad manifest), the process
    reports that at once instead of waiting for the listing or its retries to end.
    """

    def __init__(self, client: ApiClient) -> None:
        self._result: Listing | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(client,), name="assistsync-listing", daemon=True
        )
        self._thread.start()

    def _run(self, client: ApiClient) -> None:
        try:
            self._result = list_account(client)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> Listing:
        """The listing, or the ``ApiError`` it failed with."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def fetch_live(
    client: ApiClient, desired: Desired, lock: Lock, listing: Listing | None = None
) -> Live:
    """The live state: every assistant (API order), every ``assistants`` file, recovery hashes.

    Costs exactly ``ceil(N/100)`` (at least 1) + 1 requests when no lock recovery is needed
    (see the module docs), or none beyond recovery when ``listing`` was already fetched (see
    ``BackgroundListing``). Raises :class:`~assistsync.errors.ApiError` on any API failure.
    """
    assistants, files = listing if listing is not None else list_account(client)

    candidates = recovery_candidates(desired, lock, files)
    hashes: dict[str, str] = {}
    if candidates:
        with ThreadPoolExecutor(
            max_workers=min(RECOVERY_WORKERS, len(candidates)),
            thread_name_prefix="assistsync-hash",
        ) as pool:
            hashes = dict(zip(candidates, pool.map(client.file_sha256, candidates), strict=True))

    return Live(assistants=tuple(assistants), files=tuple(files), file_sha256=hashes)
