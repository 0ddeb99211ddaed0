"""Just enough of MLS (RFC 9420) on the wire for a voice server acting as DAVE's external sender.

The voice server is not an MLS member: it never holds group secrets. It only needs to
- read a member's KeyPackage (its user id, its signature key, its reference) and check its signatures;
- write Add and Remove proposals as a signed PublicMessage from external sender 0;
- read a Commit far enough to know its epoch, its sender and the proposals it references, and to
  split the Commit from the Welcome that follows it in op 28 (no length prefix between them);
- cut a Welcome down to the secrets of one new member.

Cipher suite 2 (DHKEMP256_AES128GCM_SHA256_P256) is the only one DAVE v1 uses: SHA-256 hashes and
ECDSA P-256 signatures (DER), which the ``cryptography`` package provides.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

MLS_10 = 1
CIPHER_SUITE_P256 = 2
CREDENTIAL_BASIC = 1
#: DAVE requires key packages to be valid for all time (protocol.md, "Key Packages / Validation").
LIFETIME_FOREVER = (0, 2**64 - 1)


class MlsError(ValueError):
    """Bytes that are not the MLS structure they should be."""


class WireFormat(enum.IntEnum):
    PUBLIC_MESSAGE = 1
    PRIVATE_MESSAGE = 2
    WELCOME = 3
    GROUP_INFO = 4
    KEY_PACKAGE = 5


class ContentType(enum.IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(enum.IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


class ProposalType(enum.IntEnum):
    ADD = 1
    UPDATE = 2
    REMOVE = 3


class LeafNodeSource(enum.IntEnum):
    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


class ProposalOrRefType(enum.IntEnum):
    PROPOSAL = 1
    REFERENCE = 2


# ------------------------------------------------------------------ TLS presentation language
def varint(value: int) -> bytes:
    """RFC 9420 §2.1.2 variable-length integer (minimum encoding)."""
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return struct.pack(">H", 0x4000 | value)
    if value < 0x40000000:
        return struct.pack(">I", 0x80000000 | value)
    raise MlsError(f"vector too long for MLS: {value}")


def opaque(data: bytes) -> bytes:
    """``opaque data<V>``."""
    return varint(len(data)) + data


class Reader:
    """Reads TLS-encoded values from ``data``; every read checks bounds."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise MlsError(f"truncated: wanted {count} bytes at {self.pos} of {len(self.data)}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def varint(self) -> int:
        first = self.u8()
        prefix = first >> 6
        if prefix == 0:
            return first
        if prefix == 1:
            value = ((first & 0x3F) << 8) | self.u8()
            minimum = 0x40
        elif prefix == 2:
            value = ((first & 0x3F) << 24) | int.from_bytes(self.take(3), "big")
            minimum = 0x4000
        else:
            raise MlsError("invalid varint prefix 0b11")
        if value < minimum:
            raise MlsError("varint not minimally encoded")
        return value

    def opaque(self) -> bytes:
        return self.take(self.varint())

    def vector(self) -> Reader:
        """A reader over the body of a ``<V>`` vector."""
        return Reader(self.opaque())

    def done(self) -> bool:
        return self.pos == len(self.data)

    def expect_end(self, what: str) -> None:
        if not self.done():
            raise MlsError(f"{len(self.data) - self.pos} trailing bytes after {what}")


def ref_hash(label: str, value: bytes) -> bytes:
    """RFC 9420 §5.2 ``RefHash`` with SHA-256."""
    return hashlib.sha256(opaque(label.encode()) + opaque(value)).digest()


def sign_content(label: str, content: bytes) -> bytes:
    """The bytes ``SignWithLabel`` signs (RFC 9420 §5.1.2)."""
    return opaque(f"MLS 1.0 {label}".encode()) + opaque(content)


def verify_with_label(public_point: bytes, label: str, content: bytes, signature: bytes) -> bool:
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_point)
        key.verify(signature, sign_content(label, content), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


# ------------------------------------------------------------------ leaf nodes and key packages
@dataclass(frozen=True)
class LeafNode:
    raw: bytes
    tbs: bytes  # every field but the signature
    encryption_key: bytes
    signature_key: bytes
    credential_type: int
    identity: bytes
    source: LeafNodeSource
    lifetime: tuple[int, int] | None
    signature: bytes

    @property
    def user_id(self) -> int:
        if self.credential_type != CREDENTIAL_BASIC or len(self.identity) != 8:
            raise MlsError("a DAVE credential is basic with an 8-byte big-endian user id")
        return int.from_bytes(self.identity, "big")


def _skip_vector(reader: Reader) -> None:
    reader.opaque()


def read_leaf_node(reader: Reader) -> LeafNode:
    start = reader.pos
    encryption_key = reader.opaque()
    signature_key = reader.opaque()
    credential_type = reader.u16()
    if credential_type == CREDENTIAL_BASIC:
        identity = reader.opaque()
    else:
        _skip_vector(reader)  # x509: certificates<V>
        identity = b""
    for _ in range(5):  # capabilities: versions, cipher_suites, extensions, proposals, credentials
        _skip_vector(reader)
    try:
        source = LeafNodeSource(reader.u8())
    except ValueError as exc:
        raise MlsError(f"unknown leaf node source: {exc}") from exc
    lifetime = None
    if source is LeafNodeSource.KEY_PACKAGE:
        lifetime = (reader.u64(), reader.u64())
    elif source is LeafNodeSource.COMMIT:
        reader.opaque()  # parent_hash
    _skip_vector(reader)  # extensions
    tbs = reader.data[start : reader.pos]
    signature = reader.opaque()
    return LeafNode(reader.data[start : reader.pos], tbs, encryption_key, signature_key, credential_type, identity,
                    source, lifetime, signature)  # fmt: skip


@dataclass(frozen=True)
class KeyPackage:
    raw: bytes  # the bare KeyPackage
    tbs: bytes
    version: int
    cipher_suite: int
    init_key: bytes
    leaf: LeafNode
    signature: bytes

    @property
    def ref(self) -> bytes:
        """``KeyPackageRef``: how a Welcome names the member its secrets are for."""
        return ref_hash("MLS 1.0 KeyPackage Reference", self.raw)

    @property
    def user_id(self) -> int:
        return self.leaf.user_id

    def problems(self) -> list[str]:
        """Why the voice server must refuse this key package (DAVE's validation rules); [] if none."""
        found = []
        if self.version != MLS_10:
            found.append(f"protocol version {self.version}")
        if self.cipher_suite != CIPHER_SUITE_P256:
            found.append(f"cipher suite {self.cipher_suite}")
        if self.leaf.credential_type != CREDENTIAL_BASIC or len(self.leaf.identity) != 8:
            found.append("credential is not basic with an 8-byte user id")
        if self.leaf.source is not LeafNodeSource.KEY_PACKAGE:
            found.append("leaf node source is not key_package")
        if self.leaf.lifetime != LIFETIME_FOREVER:
            found.append(f"lifetime {self.leaf.lifetime} is not the full range")
        if not verify_with_label(self.leaf.signature_key, "KeyPackageTBS", self.tbs, self.signature):
            found.append("key package signature does not verify")
        if not verify_with_label(self.leaf.signature_key, "LeafNodeTBS", self.leaf.tbs, self.leaf.signature):
            found.append("leaf node signature does not verify")
        return found


def read_key_package(reader: Reader) -> KeyPackage:
    start = reader.pos
    version = reader.u16()
    cipher_suite = reader.u16()
    init_key = reader.opaque()
    leaf = read_leaf_node(reader)
    _skip_vector(reader)  # extensions
    tbs = reader.data[start : reader.pos]
    signature = reader.opaque()
    return KeyPackage(reader.data[start : reader.pos], tbs, version, cipher_suite, init_key, leaf, signature)


def parse_key_package(data: bytes) -> KeyPackage:
    """A key package from op 26: a bare KeyPackage (what davey and libdave send) or one wrapped in
    an MLSMessage (what the protocol text says)."""
    reader = Reader(data)
    if len(data) >= 4 and struct.unpack_from(">HH", data) == (MLS_10, WireFormat.KEY_PACKAGE):
        reader.pos = 4
    package = read_key_package(reader)
    reader.expect_end("the key package")
    return package


# ------------------------------------------------------------------ the external sender
def _framed_content(group_id: bytes, epoch: int, sender: bytes, content_type: ContentType, body: bytes) -> bytes:
    return opaque(group_id) + struct.pack(">Q", epoch) + sender + opaque(b"") + bytes([content_type]) + body


@dataclass(frozen=True)
class Proposal:
    """One proposal the external sender made: its MLSMessage and its ``ProposalRef``."""

    message: bytes
    ref: bytes
    kind: ProposalType
    user_id: int
    epoch: int
    leaf_index: int | None = None  # the leaf a Remove empties


class ExternalSender:
    """The voice server's external-sender identity for one call (a fresh P-256 key)."""

    def __init__(self, identity: bytes = b"\x00\x01\x01\x00") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_point = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.identity = identity

    def package(self) -> bytes:
        """The ``ExternalSender`` struct op 25 carries."""
        return opaque(self.public_point) + struct.pack(">H", CREDENTIAL_BASIC) + opaque(self.identity)

    def _propose(self, group_id: bytes, epoch: int, kind: ProposalType, body: bytes, user_id: int,
                 leaf_index: int | None = None) -> Proposal:  # fmt: skip
        sender = bytes([SenderType.EXTERNAL]) + struct.pack(">I", 0)
        content = _framed_content(group_id, epoch, sender, ContentType.PROPOSAL, struct.pack(">H", kind) + body)
        wire = struct.pack(">H", WireFormat.PUBLIC_MESSAGE)
        # FramedContentTBS: version, wire format, content; no GroupContext for an external sender.
        tbs = struct.pack(">H", MLS_10) + wire + content
        signature = self._key.sign(sign_content("FramedContentTBS", tbs), ec.ECDSA(hashes.SHA256()))
        authenticated = wire + content + opaque(signature)  # AuthenticatedContent (no confirmation tag)
        message = struct.pack(">H", MLS_10) + authenticated  # no membership tag for an external sender
        ref = ref_hash("MLS 1.0 Proposal Reference", authenticated)
        return Proposal(message, ref, kind, user_id, epoch, leaf_index)

    def propose_add(self, group_id: bytes, epoch: int, key_package: KeyPackage) -> Proposal:
        return self._propose(group_id, epoch, ProposalType.ADD, key_package.raw, key_package.user_id)

    def propose_remove(self, group_id: bytes, epoch: int, leaf_index: int, user_id: int) -> Proposal:
        return self._propose(group_id, epoch, ProposalType.REMOVE, struct.pack(">I", leaf_index), user_id, leaf_index)


def proposals_append(proposals: list[Proposal]) -> bytes:
    """Body of op 27 appending proposals: optype 0, then ``MLSMessage proposal_messages<V>``."""
    return b"\x00" + opaque(b"".join(p.message for p in proposals))


def proposals_revoke(refs: list[bytes]) -> bytes:
    """Body of op 27 revoking proposals: optype 1, then ``ProposalRef proposal_refs<V>``."""
    return b"\x01" + opaque(b"".join(opaque(ref) for ref in refs))


def group_id_for(channel_id: int) -> bytes:
    """DAVE's MLS group id: the channel id as 8 bytes big-endian."""
    return struct.pack(">Q", channel_id)


# ------------------------------------------------------------------ commits and welcomes
@dataclass(frozen=True)
class Commit:
    message: bytes  # the whole MLSMessage, as op 29 rebroadcasts it
    group_id: bytes
    epoch: int
    sender_type: SenderType
    sender_leaf: int
    refs: tuple[bytes, ...]
    path_leaf: LeafNode | None


@dataclass(frozen=True)
class Welcome:
    raw: bytes
    cipher_suite: int
    secrets: tuple[tuple[bytes, bytes], ...] = field(default=())  # (KeyPackageRef, EncryptedGroupSecrets bytes)
    encrypted_group_info: bytes = b""

    def new_members(self) -> list[bytes]:
        return [ref for ref, _ in self.secrets]

    def for_member(self, key_package_ref: bytes) -> bytes:
        """The Welcome with only the secrets of one new member (what op 30 sends each joiner)."""
        mine = [raw for ref, raw in self.secrets if ref == key_package_ref]
        if not mine:
            raise MlsError("the welcome has no secrets for that key package")
        return struct.pack(">H", self.cipher_suite) + opaque(b"".join(mine)) + opaque(self.encrypted_group_info)


def _read_update_path(reader: Reader) -> LeafNode:
    leaf = read_leaf_node(reader)
    _skip_vector(reader)  # nodes<V>
    return leaf


def read_commit_message(reader: Reader) -> Commit:
    start = reader.pos
    version, wire = reader.u16(), reader.u16()
    if version != MLS_10 or wire != WireFormat.PUBLIC_MESSAGE:
        raise MlsError(f"a DAVE commit is an MLS 1.0 PublicMessage (got version {version}, wire format {wire})")
    group_id = reader.opaque()
    epoch = reader.u64()
    try:
        sender_type = SenderType(reader.u8())
    except ValueError as exc:
        raise MlsError(f"unknown sender type: {exc}") from exc
    sender_leaf = reader.u32() if sender_type in (SenderType.MEMBER, SenderType.EXTERNAL) else -1
    reader.opaque()  # authenticated_data
    if reader.u8() != ContentType.COMMIT:
        raise MlsError("op 28 must start with a commit")
    proposals = reader.vector()
    refs: list[bytes] = []
    while not proposals.done():
        kind = proposals.u8()
        if kind == ProposalOrRefType.REFERENCE:
            refs.append(proposals.opaque())
        elif kind == ProposalOrRefType.PROPOSAL:
            raise MlsError("the commit carries an inline proposal; DAVE commits reference proposals only")
        else:
            raise MlsError(f"unknown ProposalOrRef type {kind}")
    path_leaf = None
    present = reader.u8()
    if present == 1:
        path_leaf = _read_update_path(reader)
    elif present != 0:
        raise MlsError("bad optional<UpdatePath> flag")
    reader.opaque()  # signature
    reader.opaque()  # confirmation_tag
    if sender_type is SenderType.MEMBER:
        reader.opaque()  # membership_tag
    return Commit(reader.data[start : reader.pos], group_id, epoch, sender_type, sender_leaf, tuple(refs), path_leaf)


def read_welcome(reader: Reader) -> Welcome:
    start = reader.pos
    suite = reader.u16()
    body = reader.vector()
    secrets = []
    while not body.done():
        entry_start = body.pos
        ref = body.opaque()
        body.opaque()  # kem_output
        body.opaque()  # ciphertext
        secrets.append((ref, body.data[entry_start : body.pos]))
    info = reader.opaque()
    return Welcome(reader.data[start : reader.pos], suite, tuple(secrets), info)


def split_commit_welcome(data: bytes) -> tuple[Commit, Welcome | None]:
    """Op 28's body: the commit MLSMessage, then (when it adds members) a bare Welcome."""
    reader = Reader(data)
    commit = read_commit_message(reader)
    welcome = None
    if not reader.done():
        if len(data) - reader.pos >= 4 and struct.unpack_from(">HH", data, reader.pos) == (MLS_10, WireFormat.WELCOME):
            reader.pos += 4  # tolerate an MLSMessage-wrapped Welcome
        welcome = read_welcome(reader)
    reader.expect_end("the commit and welcome")
    return commit, welcome
