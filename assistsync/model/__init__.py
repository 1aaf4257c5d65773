"""Pure data: desired, live, lock and plan values (pydantic, frozen). Imports only pydantic."""

from __future__ import annotations

from assistsync.model.config import TAG_KEY, AssistantConfig, canonical_json, wire_metadata
from assistsync.model.desired import Desired, DesiredAssistant, DesiredFile, SourceLocation
from assistsync.model.live import Live, LiveAssistant, LiveFile
from assistsync.model.lock import LOCK_VERSION, Lock, LockedAssistant, LockedFile, RetiredFile
from assistsync.model.plan import AssistantChange, Drift, FileChange, Plan

__all__ = [
    "LOCK_VERSION",
    "TAG_KEY",
    "AssistantChange",
    "AssistantConfig",
    "Desired",
    "DesiredAssistant",
    "DesiredFile",
    "Drift",
    "FileChange",
    "Live",
    "LiveAssistant",
    "LiveFile",
    "Lock",
    "LockedAssistant",
    "LockedFile",
    "Plan",
    "RetiredFile",
    "SourceLocation",
    "canonical_json",
    "wire_metadata",
]
