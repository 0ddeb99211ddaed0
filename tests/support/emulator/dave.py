"""DAVE v1 in the emulator's voice server: the MLS delivery service and external sender of each call.

One ``MediaSession`` per voice channel with anyone in it. Its members are the bot's voice websocket
sessions and the virtual listeners (``listener.Listener``, built on Discord's own libdave), and the
server treats both alike: each gets the same opcodes, and each answers through the same methods.

What the server keeps, as Discord's voice gateway does (protocol.md, "Delivery Service"): the group
id (the channel id), the epoch, the user id in each leaf, each pending member's key package and the
proposals in flight. It accepts the first commit for the current epoch that references exactly the
proposals in flight, broadcasts it (op 29) with the Welcome cut per joiner (op 30), waits for every
member's op 23 (or a timeout) and executes the transition (op 22). A member who leaves is removed
(op 27 Remove); a sole member left behind is reset (op 24 epoch 1, op 21 transition 0). An op 31
removes the member who sent it, who then joins again with a fresh key package.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import mls

if TYPE_CHECKING:
    from .hub import Hub

_log = logging.getLogger(__name__)

DAVE_PROTOCOL_VERSION = 1
#: Discord executes a transition after about this long even if not every member said it was ready.
TRANSITION_TIMEOUT_S = 2.0
#: DAVE media frames end with this marker (protocol.md, "Magic Marker").
MAGIC_MARKER = b"\xfa\xfa"
#: The one frame a receiver passes through unencrypted (protocol.md, "Silence Packets").
OPUS_SILENCE = b"\xf8\xff\xfe"
_MIN_SUPPLEMENTAL = 8 + 1 + 1 + 2  # tag, nonce, size byte, marker


class DaveMode(enum.StrEnum):
    """How a guild's voice server negotiates DAVE."""

    OFF = "off"  # dave_protocol_version 0: transport encryption only
    ON = "on"  # v1 offered; a client without DAVE gets version 0
    REQUIRED = "required"  # v1; a client without DAVE is closed with 4017, as Discord does since March 2026


class DaveOp(enum.IntEnum):
    CLIENTS_CONNECT = 11
    CLIENT_DISCONNECT = 13
    PREPARE_TRANSITION = 21
    EXECUTE_TRANSITION = 22
    TRANSITION_READY = 23
    PREPARE_EPOCH = 24
    MLS_EXTERNAL_SENDER = 25
    MLS_KEY_PACKAGE = 26
    MLS_PROPOSALS = 27
    MLS_COMMIT_WELCOME = 28
    MLS_ANNOUNCE_COMMIT_TRANSITION = 29
    MLS_WELCOME = 30
    MLS_INVALID_COMMIT_WELCOME = 31


#: Opcodes carried as binary websocket frames; the rest of DAVE's are JSON.
BINARY_OPS = frozenset(
    {DaveOp.MLS_EXTERNAL_SENDER, DaveOp.MLS_KEY_PACKAGE, DaveOp.MLS_PROPOSALS, DaveOp.MLS_COMMIT_WELCOME,
     DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION, DaveOp.MLS_WELCOME}
)  # fmt: skip


def is_protocol_frame(frame: bytes) -> bool:
    """The receiver's check for a DAVE frame (protocol.md, "Protocol Frame Check"), far enough to
    tell an encrypted frame from plain Opus."""
    if len(frame) < _MIN_SUPPLEMENTAL + 1 or frame[-2:] != MAGIC_MARKER:
        return False
    size = frame[-3]
    return _MIN_SUPPLEMENTAL <= size < len(frame)


class Endpoint(Protocol):
    """A member's connection: the bot's voice websocket session, or a virtual listener."""

    user_id: int

    async def send_dave(self, op: DaveOp, payload: bytes | dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class DaveEvent:
    """Something in a call's DAVE exchange, for tests: ``kind`` is the opcode's name in lower case,
    or "commit_refused", "transition_executed", "sole_member_reset", "key_package_refused"."""

    time: float
    guild_id: int
    channel_id: int
    kind: str
    user_id: int | None
    data: Any = None


@dataclass
class Member:
    endpoint: Endpoint
    key_package: mls.KeyPackage | None = None
    leaf: int | None = None  # its leaf in the established group; None while pending
    add: mls.Proposal | None = None  # the Add proposal in flight for its key package

    @property
    def user_id(self) -> int:
        return self.endpoint.user_id


@dataclass
class Transition:
    transition_id: int
    epoch: int
    waiting: set[int]
    members: set[int]
    timer: asyncio.TimerHandle | None = None


@dataclass
class SessionFaults:
    """Test controls for one call."""

    hold_commits_s: float = 0.0  # keep each accepted commit this long before broadcasting it
    refuse_commits_from: set[int] = field(default_factory=set)


class MediaSession:
    """One voice channel's DAVE group, as the voice server sees it."""

    def __init__(self, hub: Hub, guild_id: int, channel_id: int) -> None:
        self.hub = hub
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.group_id = mls.group_id_for(channel_id)
        self.external = mls.ExternalSender()
        self.members: dict[int, Member] = {}
        self.established = False
        self.epoch = 0
        self.leaves: list[int | None] = []
        self.in_flight: list[mls.Proposal] = []
        # Before the group exists every pending member has a local group of its own: what each was sent.
        self.sent_to: dict[int, list[mls.Proposal]] = {}
        self.transitions: dict[int, Transition] = {}
        self.faults = SessionFaults()
        # The last op 28 accepted, with its sender (a test can replay it: ``replay_commit``).
        self.last_accepted: tuple[int, bytes] | None = None
        self._transition_ids = itertools.cycle(range(1, 0x10000))
        self._holding = False
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ views
    def user_ids(self) -> set[int]:
        return set(self.members)

    def group_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.leaf is not None]

    def pending_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.leaf is None]

    def record(self, kind: str, user_id: int | None, data: Any = None) -> None:
        self.hub.records.dave_events[self.guild_id].append(
            DaveEvent(time.monotonic(), self.guild_id, self.channel_id, kind, user_id, data)
        )

    async def _send(self, member: Member, op: DaveOp, payload: bytes | dict[str, Any]) -> None:
        try:
            await member.endpoint.send_dave(op, payload)
        except (ConnectionError, RuntimeError) as exc:  # a closing websocket
            _log.debug("dave: could not send op %s to %s: %s", op, member.user_id, exc)

    # ------------------------------------------------------------------ membership
    async def connect(self, endpoint: Endpoint) -> None:
        """A member connected with DAVE: announce it, then give it the external sender (op 25)."""
        previous = self.members.get(endpoint.user_id)
        if previous is not None:
            await self.disconnect(endpoint.user_id)
        others = [m for m in self.members.values()]
        member = Member(endpoint)
        self.members[endpoint.user_id] = member
        self.record("connect", endpoint.user_id)
        for other in others:
            await self._send(other, DaveOp.CLIENTS_CONNECT, {"user_ids": [str(endpoint.user_id)]})
        if others:
            await self._send(member, DaveOp.CLIENTS_CONNECT, {"user_ids": [str(m.user_id) for m in others]})
        await self._send(member, DaveOp.MLS_EXTERNAL_SENDER, self.external.package())

    def reattach(self, endpoint: Endpoint) -> bool:
        """A voice RESUME: the same member goes on over a new connection, in the same group."""
        member = self.members.get(endpoint.user_id)
        if member is None:
            return False
        member.endpoint = endpoint
        self.record("resume", endpoint.user_id)
        return True

    async def disconnect(self, user_id: int) -> None:
        member = self.members.pop(user_id, None)
        if member is None:
            return
        self.record("disconnect", user_id)
        for other in self.members.values():
            await self._send(other, DaveOp.CLIENT_DISCONNECT, {"user_id": str(user_id)})
        await self._drop(member)

    async def _drop(self, member: Member) -> None:
        """Take ``member`` out of the group (it left, or flagged an invalid commit)."""
        for transition in list(self.transitions.values()):
            transition.waiting.discard(member.user_id)
            transition.members.discard(member.user_id)
            if not transition.waiting:
                await self._execute(transition.transition_id)
        await self._revoke_add(member)
        self.sent_to.pop(member.user_id, None)
        if member.leaf is None:
            return
        leaf, member.leaf = member.leaf, None
        remaining = self.group_members()
        if not self.established:
            return
        if len(remaining) <= 1:
            await self._reset(remaining)
            return
        proposal = self.external.propose_remove(self.group_id, self.epoch, leaf, member.user_id)
        await self._propose(proposal, remaining)

    async def _reset(self, remaining: list[Member]) -> None:
        """Sole member reset (protocol.md): no single member keeps an established group."""
        self.established = False
        self.epoch = 0
        self.leaves = []
        self.in_flight = []
        self.sent_to = {}
        for transition in self.transitions.values():
            if transition.timer is not None:
                transition.timer.cancel()
        self.transitions = {}
        for member in self.members.values():
            member.leaf = None
            member.add = None
        for member in remaining:
            member.key_package = None  # it makes a new one for the new group
            self.record("sole_member_reset", member.user_id)
            await self._send(member, DaveOp.PREPARE_EPOCH, {"protocol_version": DAVE_PROTOCOL_VERSION, "epoch": 1})
            await self._send(
                member, DaveOp.PREPARE_TRANSITION, {"protocol_version": DAVE_PROTOCOL_VERSION, "transition_id": 0}
            )
        # Members still waiting with a key package form the next group with whoever comes.
        for member in self.pending_members():
            if member.key_package is not None:
                await self._offer(member)

    # ------------------------------------------------------------------ what members send
    async def on_key_package(self, endpoint: Endpoint, data: bytes) -> None:
        member = self.members.get(endpoint.user_id)
        if member is None:
            return
        try:
            package = mls.parse_key_package(data)
            problems = package.problems()
            if package.user_id != member.user_id:
                problems.append(f"credential names user {package.user_id}, not the session's {member.user_id}")
        except mls.MlsError as exc:
            problems = [str(exc)]
        if problems:
            _log.warning("dave: refusing the key package of %s: %s", member.user_id, "; ".join(problems))
            self.record("key_package_refused", member.user_id, problems)
            return
        self.record("mls_key_package", member.user_id)
        if member.leaf is not None:
            await self._drop(member)  # a member re-keying is removed and added again
        await self._revoke_add(member)
        member.key_package = package
        await self._offer(member)

    async def _offer(self, member: Member) -> None:
        """Propose adding a pending member with a key package."""
        assert member.key_package is not None
        if self.established:
            if member.add is None:
                member.add = self.external.propose_add(self.group_id, self.epoch, member.key_package)
                await self._propose(member.add, self.group_members())
            return
        # No group yet: each pending member holds a local group; send it every other pending member's Add.
        if member.add is None:
            member.add = self.external.propose_add(self.group_id, 0, member.key_package)
        ready = [m for m in self.pending_members() if m is not member and m.key_package is not None]
        for other in ready:
            if member.add not in self.sent_to.get(other.user_id, []):
                await self._send_proposals(other, [member.add])
        sent = self.sent_to.get(member.user_id, [])
        await self._send_proposals(member, [o.add for o in ready if o.add is not None and o.add not in sent])

    async def _propose(self, proposal: mls.Proposal, recipients: Iterable[Member]) -> None:
        self.in_flight.append(proposal)
        for member in recipients:
            await self._send(member, DaveOp.MLS_PROPOSALS, mls.proposals_append([proposal]))
        self.record("mls_proposals", None, {"kind": proposal.kind.name.lower(), "user_id": proposal.user_id})

    async def _send_proposals(self, member: Member, proposals: list[mls.Proposal]) -> None:
        if not proposals:
            return
        self.sent_to.setdefault(member.user_id, []).extend(proposals)
        await self._send(member, DaveOp.MLS_PROPOSALS, mls.proposals_append(proposals))

    async def _revoke_add(self, member: Member) -> None:
        proposal, member.add = member.add, None
        if proposal is None:
            return
        if proposal in self.in_flight:
            self.in_flight.remove(proposal)
            for other in self.group_members():
                await self._send(other, DaveOp.MLS_PROPOSALS, mls.proposals_revoke([proposal.ref]))
        for user_id, sent in self.sent_to.items():
            if proposal in sent:
                sent.remove(proposal)
                holder = self.members.get(user_id)
                if holder is not None:
                    await self._send(holder, DaveOp.MLS_PROPOSALS, mls.proposals_revoke([proposal.ref]))

    async def on_commit_welcome(self, endpoint: Endpoint, data: bytes) -> None:
        member = self.members.get(endpoint.user_id)
        if member is None:
            return
        try:
            commit, welcome = mls.split_commit_welcome(data)
        except mls.MlsError as exc:
            self._refuse(member, f"unparsable: {exc}")
            return
        why = self._invalid(member, commit, welcome)
        if why:
            self._refuse(member, why)
            return
        if self._holding:
            self._refuse(member, "a commit for this epoch is already being held")
            return
        if self.faults.hold_commits_s > 0:
            self._holding = True
            self._spawn(self._hold_then_accept(member, data, commit, welcome, self.faults.hold_commits_s))
            return
        await self._accept(member, data, commit, welcome)

    async def _hold_then_accept(self, member: Member, data: bytes, commit: mls.Commit, welcome: mls.Welcome | None,
                                seconds: float) -> None:  # fmt: skip
        """The group ready late (a test fault): the winning commit waits before it is broadcast."""
        try:
            await asyncio.sleep(seconds)
        finally:
            self._holding = False
        if self.members.get(member.user_id) is not member or self._invalid(member, commit, welcome):
            self._refuse(member, "the group changed while the commit was held")
            return
        await self._accept(member, data, commit, welcome)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, member: Member, why: str) -> None:
        _log.debug("dave: refusing a commit from %s: %s", member.user_id, why)
        self.record("commit_refused", member.user_id, why)

    def _expected_refs(self, member: Member) -> list[mls.Proposal]:
        if self.established:
            return list(self.in_flight)
        return list(self.sent_to.get(member.user_id, []))

    def _invalid(self, member: Member, commit: mls.Commit, welcome: mls.Welcome | None) -> str | None:
        """Why the voice gateway would not broadcast this commit (protocol.md, "Commit validity")."""
        if member.user_id in self.faults.refuse_commits_from:
            return "refused by a test fault"
        if commit.group_id != self.group_id:
            return "wrong group id"
        if commit.epoch != self.epoch:
            return f"epoch {commit.epoch}, the group is at {self.epoch}"
        if commit.sender_type is not mls.SenderType.MEMBER:
            return "not from a member"
        expected_leaf = member.leaf if self.established else 0
        if commit.sender_leaf != expected_leaf:
            return f"sender leaf {commit.sender_leaf}, expected {expected_leaf}"
        if self.established and member.leaf is None:
            return "the committer is not in the group"
        if not self.established and member.key_package is None:
            return "the committer has no local group yet"
        expected = self._expected_refs(member)
        if not commit.refs:
            return "references no proposals"
        if sorted(commit.refs) != sorted(p.ref for p in expected):
            return "does not reference exactly the proposals in flight"
        if commit.path_leaf is not None and member.key_package is not None:
            own = member.key_package.leaf
            if commit.path_leaf.signature_key != own.signature_key or commit.path_leaf.identity != own.identity:
                return "the update path changes the committer's credential or signature key"
        adds = [p for p in expected if p.kind is mls.ProposalType.ADD]
        if adds:
            if welcome is None:
                return "adds members without a welcome"
            for proposal in adds:
                joiner = self.members.get(proposal.user_id)
                if joiner is None or joiner.key_package is None or joiner.key_package.ref not in welcome.new_members():
                    return f"the welcome has no secrets for {proposal.user_id}"
        return None

    async def _accept(self, member: Member, data: bytes, commit: mls.Commit, welcome: mls.Welcome | None) -> None:
        self.last_accepted = (member.user_id, data)
        by_ref = {p.ref: p for p in self._expected_refs(member)}
        proposals = [by_ref[ref] for ref in commit.refs]
        if self.established:
            before = self.group_members()
            for proposal in proposals:  # MLS applies removes before adds
                if proposal.kind is mls.ProposalType.REMOVE and proposal.leaf_index is not None:
                    self.leaves[proposal.leaf_index] = None
        else:
            before = [member]
            self.leaves = [member.user_id]
            member.leaf = 0
            self.established = True
            for pending in self.members.values():
                pending.add = None  # the local groups' epoch-0 proposals end here
        joined: list[Member] = []
        for proposal in proposals:
            if proposal.kind is not mls.ProposalType.ADD:
                continue
            joiner = self.members[proposal.user_id]
            index = self.leaves.index(None) if None in self.leaves else len(self.leaves)
            if index == len(self.leaves):
                self.leaves.append(joiner.user_id)
            else:
                self.leaves[index] = joiner.user_id
            joiner.leaf = index
            joiner.add = None
            joined.append(joiner)
        while self.leaves and self.leaves[-1] is None:
            self.leaves.pop()
        self.epoch += 1
        self.in_flight = []
        self.sent_to = {}
        transition_id = next(self._transition_ids)
        everyone = {m.user_id for m in self.group_members()}
        transition = Transition(transition_id, self.epoch, set(everyone), set(everyone))
        self.transitions[transition_id] = transition
        joined_ids = [j.user_id for j in joined]
        self.record("mls_announce_commit_transition", member.user_id,
                    {"transition_id": transition_id, "epoch": self.epoch, "joined": joined_ids})  # fmt: skip
        body = transition_id.to_bytes(2, "big") + commit.message
        for existing in before:
            if existing.leaf is not None:
                await self._send(existing, DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION, body)
        for joiner in joined:
            assert welcome is not None and joiner.key_package is not None
            payload = transition_id.to_bytes(2, "big") + welcome.for_member(joiner.key_package.ref)
            await self._send(joiner, DaveOp.MLS_WELCOME, payload)
        loop = asyncio.get_running_loop()
        transition.timer = loop.call_later(
            TRANSITION_TIMEOUT_S, lambda: self._spawn(self._execute(transition_id, timed_out=True))
        )
        # Whoever is still pending joins in the new epoch.
        for pending in self.pending_members():
            if pending.key_package is not None:
                await self._offer(pending)

    async def on_transition_ready(self, endpoint: Endpoint, transition_id: int) -> None:
        transition = self.transitions.get(transition_id)
        if transition is None:
            return
        transition.waiting.discard(endpoint.user_id)
        if not transition.waiting:
            await self._execute(transition_id)

    async def _execute(self, transition_id: int, *, timed_out: bool = False) -> None:
        transition = self.transitions.pop(transition_id, None)
        if transition is None:
            return
        if transition.timer is not None:
            transition.timer.cancel()
        self.record("transition_executed", None,
                    {"transition_id": transition_id, "epoch": transition.epoch, "timed_out": timed_out,
                     "members": sorted(transition.members)})  # fmt: skip
        for user_id in transition.members:
            member = self.members.get(user_id)
            if member is not None:
                await self._send(member, DaveOp.EXECUTE_TRANSITION, {"transition_id": transition_id})

    async def on_invalid_commit_welcome(self, endpoint: Endpoint, transition_id: int) -> None:
        """Op 31: the member could not process a commit or welcome. It is removed and returns to
        pending; its fresh key package (which it sends next) adds it again."""
        member = self.members.get(endpoint.user_id)
        if member is None:
            return
        self.record("mls_invalid_commit_welcome", member.user_id, {"transition_id": transition_id})
        member.key_package = None
        await self._drop(member)

    # ------------------------------------------------------------------ faults
    async def send_invalid(self, user_id: int, op: DaveOp) -> bool:
        """Send ``user_id`` a corrupt op 29 or op 30 under a fresh transition id (a test fault)."""
        member = self.members.get(user_id)
        if member is None or op not in (DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION, DaveOp.MLS_WELCOME):
            return False
        transition_id = next(self._transition_ids)
        self.record("injected_invalid", user_id, {"op": int(op), "transition_id": transition_id})
        await self._send(member, op, transition_id.to_bytes(2, "big") + b"\x00\x01\x00\x01not an mls message")
        return True

    async def replay_commit(self) -> bool:
        """Deliver the last accepted op 28 again from its sender: a commit for an epoch that already
        has one (a test fault). False when there is none, or its sender has left."""
        if self.last_accepted is None:
            return False
        user_id, data = self.last_accepted
        member = self.members.get(user_id)
        if member is None:
            return False
        self.record("replayed_commit", user_id)
        await self.on_commit_welcome(member.endpoint, data)
        return True

    def snapshot(self) -> dict[str, Any]:
        return {
            "established": self.established,
            "epoch": self.epoch,
            "leaves": list(self.leaves),
            "members": sorted(self.members),
            "pending": sorted(m.user_id for m in self.pending_members()),
            "in_flight": [(p.kind.name.lower(), p.user_id) for p in self.in_flight],
        }
