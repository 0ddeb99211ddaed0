"""Worker jobs as they travel from the api Lambda to the worker (a Lambda event or a thread pool).

Light on purpose: the interactions fast path builds these, so nothing heavy is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class InteractionJob(Protocol):
    """The interaction fields every worker job carries (the envelope), read-only."""

    @property
    def interaction_id(self) -> str: ...
    @property
    def application_id(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def guild_id(self) -> str: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def user_id(self) -> str: ...
    @property
    def roles(self) -> tuple[str, ...]: ...
    @property
    def permissions(self) -> int: ...


def envelope_to_dict(job: InteractionJob) -> dict[str, Any]:
    """The envelope as plain JSON types, for a Lambda event or a thread pool."""
    return {
        "interaction_id": job.interaction_id,
        "application_id": job.application_id,
        "token": job.token,
        "guild_id": job.guild_id,
        "channel_id": job.channel_id,
        "user_id": job.user_id,
        "roles": list(job.roles),
        "permissions": str(job.permissions),
    }


def envelope_from_dict(data: Mapping[str, Any], *, what: str, also_required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The envelope's constructor arguments; ``ValueError`` names what is missing (never the token's value)."""
    required = ("interaction_id", "application_id", "token", "guild_id", "user_id", *also_required)
    absent = [name for name in required if not isinstance(data.get(name), str) or not data.get(name)]
    if absent:
        raise ValueError(f"{what} lacks {', '.join(absent)}")
    channel = data.get("channel_id")
    permissions = data.get("permissions") or 0
    return {
        "interaction_id": str(data["interaction_id"]),
        "application_id": str(data["application_id"]),
        "token": str(data["token"]),
        "guild_id": str(data["guild_id"]),
        "channel_id": str(channel) if channel else None,
        "user_id": str(data["user_id"]),
        "roles": tuple(str(r) for r in data.get("roles") or ()),
        "permissions": int(permissions) if str(permissions).isdigit() else 0,
    }


PLACEMENTS = ("end", "next", "now")


@dataclass(frozen=True)
class PlayJob:
    """What the api hands the worker (a plain dict on the wire: ``to_dict``/``from_dict``)."""

    interaction_id: str
    application_id: str
    guild_id: str
    user_id: str
    query: str
    channel_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: int = 0
    token: str = field(default="", repr=False)  # the interaction token: never log it
    placement: str = "end"  # PLACEMENTS: add to the end, play next, or play now

    def to_dict(self) -> dict[str, Any]:
        return {**envelope_to_dict(self), "query": self.query, "placement": self.placement}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlayJob:
        placement = data.get("placement")
        return cls(
            **envelope_from_dict(data, what="play job", also_required=("query",)),
            query=str(data["query"]),
            placement=placement if placement in PLACEMENTS else "end",  # an envelope from before placements
        )

    @property
    def marker(self) -> str:
        """The store key remembering that this job finished (and what it answered)."""
        return f"play:{self.interaction_id}"

    def entry_id(self, index: int) -> str:
        return f"{self.interaction_id}-{index:03d}"
