"""``assistsync import``: adopt live assistants into a project (manifests, files, lock, tags).

``choose`` decides which assistants and keys, ``layout`` where each file goes, ``yamlio``
writes manifests (appending keeps comments), ``adopter`` runs it all against the API.
"""

from __future__ import annotations

from assistsync.adopt.adopter import DEFAULT_CONCURRENCY, Adopter, ImportResult, Options
from assistsync.adopt.choose import Criteria
from assistsync.adopt.target import Target, load_target, lock_location

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Adopter",
    "Criteria",
    "ImportResult",
    "Options",
    "Target",
    "load_target",
    "lock_location",
]
