"""A virtual listener: a human member of a voice channel whose client runs Discord's own libdave.

Independent of the bot's DAVE library (davey): it is ``dave.py`` 1.1.0, the Python binding of
libdave (C++/mlspp). It takes part in the group as a Discord client would (key package, proposals,
commits, welcomes, transitions), decrypts each frame the bot sends with the bot's key ratchet, and
reports the call's privacy code after each transition, which is what a user compares in Discord's UI.

A listener answers the voice server after a short, random delay, like a client across the internet,
so the bot and the listener race to commit as real members do.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dave

from .dave import DAVE_PROTOCOL_VERSION, DaveOp

if TYPE_CHECKING:
    from .dave import MediaSession

_log = logging.getLogger(__name__)
# libdave logs every MLS step at INFO through the ``dave`` logger.
logging.getLogger("dave").setLevel(logging.CRITICAL)

PRIVACY_CODE_DIGITS = 30
PRIVACY_CODE_GROUP = 5


@dataclass(frozen=True)
class PrivacyCode:
    """The displayable code of an epoch's authenticator, as one listener computed it on taking the
    commit or welcome of ``transition_id`` (in ``channel_id``'s group) into ``epoch``."""

    time: float
    user_id: int
    code: str
    channel_id: int = 0
    transition_id: int = 0
    epoch: int | None = None


class Listener:
    """One human member's DAVE client in one voice channel."""

    def __init__(self, media: MediaSession, user_id: int, *, rng: random.Random,
                 latency_s: tuple[float, float] = (0.002, 0.03)) -> None:  # fmt: skip
        self.media = media
        self.user_id = user_id
        self.channel_id = media.channel_id
        self._rng = rng
        self._latency = latency_s
        self.withhold_key = False
        self.joined_at = time.monotonic()
        self.departed_at: float | None = None
        self.failures: list[str] = []
        self.codes: list[PrivacyCode] = []
        self.welcomed_at: list[float] = []
        self.known_users: set[str] = {str(user_id)}
        self.decryptors: dict[int, dave.Decryptor] = {}
        self.session = dave.Session(self._on_failure)
        self.session.init(DAVE_PROTOCOL_VERSION, self.channel_id, str(user_id))
        self._inbox: asyncio.Queue[tuple[DaveOp, bytes | dict[str, Any]]] = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"listener {user_id}")

    # ------------------------------------------------------------------ the voice server's side
    async def send_dave(self, op: DaveOp, payload: bytes | dict[str, Any]) -> None:
        if self.departed_at is None:
            self._inbox.put_nowait((op, payload))

    def leave(self) -> None:
        self.departed_at = time.monotonic()
        self._worker.cancel()

    async def _run(self) -> None:
        while True:
            op, payload = await self._inbox.get()
            await asyncio.sleep(self._rng.uniform(*self._latency))
            try:
                await self._handle(op, payload)
            except Exception as exc:  # a listener bug must show in the test, not kill the emulator
                _log.exception("listener %s: op %s failed", self.user_id, op)
                self.failures.append(f"op {int(op)}: {exc!r}")

    async def _handle(self, op: DaveOp, payload: bytes | dict[str, Any]) -> None:
        if isinstance(payload, dict):
            await self._handle_json(op, payload)
            return
        if op is DaveOp.MLS_EXTERNAL_SENDER:
            self.session.set_external_sender(payload)
            await self._send_key_package()
        elif op is DaveOp.MLS_PROPOSALS:
            out = self.session.process_proposals(payload, set(self.known_users))
            if out:
                await self.media.on_commit_welcome(self, out)
        elif op is DaveOp.MLS_ANNOUNCE_COMMIT_TRANSITION:
            transition_id = struct.unpack_from(">H", payload)[0]
            result = self.session.process_commit(payload[2:])
            if isinstance(result, dict):
                await self._transitioned(transition_id)
            elif result == dave.RejectType.failed:
                await self._recover(transition_id)
        elif op is DaveOp.MLS_WELCOME:
            transition_id = struct.unpack_from(">H", payload)[0]
            roster = self.session.process_welcome(payload[2:], set(self.known_users))
            if roster is None:
                await self._recover(transition_id)
            else:
                self.welcomed_at.append(time.monotonic())
                await self._transitioned(transition_id)

    async def _handle_json(self, op: DaveOp, data: dict[str, Any]) -> None:
        if op is DaveOp.CLIENTS_CONNECT:
            self.known_users.update(str(u) for u in data.get("user_ids", []))
        elif op is DaveOp.CLIENT_DISCONNECT:
            self.known_users.discard(str(data.get("user_id")))
        elif op is DaveOp.PREPARE_EPOCH and data.get("epoch") == 1:
            self.session.init(DAVE_PROTOCOL_VERSION, self.channel_id, str(self.user_id))
            await self._send_key_package()
        # op 21 (transition 0: execute now) and op 22 need nothing more: the decryptors already hold
        # the new epoch's keys, and the previous ones stay valid for libdave's transition expiry.

    async def _send_key_package(self) -> None:
        package = self.session.get_marshalled_key_package()
        if package:
            await self.media.on_key_package(self, package)

    async def _transitioned(self, transition_id: int) -> None:
        """A commit or welcome took: take every other member's new key ratchet, note the code, say ready."""
        if not self.withhold_key:
            for user in self.known_users - {str(self.user_id)}:
                ratchet = self.session.get_key_ratchet(user)
                if ratchet is None:
                    continue
                decryptor = self.decryptors.setdefault(int(user), dave.Decryptor())
                decryptor.transition_to_key_ratchet(ratchet)
        authenticator = self.session.get_last_epoch_authenticator()
        if authenticator:
            code = dave.generate_displayable_code(authenticator, PRIVACY_CODE_DIGITS, PRIVACY_CODE_GROUP)
            transition = self.media.transitions.get(transition_id)
            epoch = transition.epoch if transition is not None else None
            self.codes.append(PrivacyCode(time.monotonic(), self.user_id, code, self.channel_id, transition_id, epoch))
        if transition_id:
            await self.media.on_transition_ready(self, transition_id)

    async def _recover(self, transition_id: int) -> None:
        _log.info("listener %s: could not process transition %s; asking to be re-added", self.user_id, transition_id)
        await self.media.on_invalid_commit_welcome(self, transition_id)
        self.session.init(DAVE_PROTOCOL_VERSION, self.channel_id, str(self.user_id))
        await self._send_key_package()

    def _on_failure(self, source: str, reason: str) -> None:
        self.failures.append(f"{source}: {reason}")

    # ------------------------------------------------------------------ media
    def decrypt(self, sender_id: int, frame: bytes) -> bytes | None:
        """The Opus frame inside a DAVE frame from ``sender_id``; None when this listener can't read it."""
        decryptor = self.decryptors.get(sender_id)
        if decryptor is None:
            return None
        return decryptor.decrypt(dave.MediaType.audio, frame)

    @property
    def privacy_code(self) -> str | None:
        return self.codes[-1].code if self.codes else None
