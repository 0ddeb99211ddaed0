"""The emulator's MLS external sender, held against two independent DAVE implementations.

davey (Rust, the bot's library) and libdave (``dave.py``, Discord's C++ library) must both accept
what the emulator's voice server writes (external sender package, Add and Remove proposals) and the
server must read what they write (key packages, commits, welcomes). In process, no I/O.
"""

from __future__ import annotations

import logging

import dave
import davey
import pytest

from tests.support.emulator import mls

CHANNEL = 1_150_000_000_000_000_001
BOT, ALICE, BOB = 1_150_000_000_000_000_010, 1_150_000_000_000_000_020, 1_150_000_000_000_000_030
GROUP = mls.group_id_for(CHANNEL)
logging.getLogger("dave").setLevel(logging.CRITICAL)


def _libdave(user_id: int, sender: mls.ExternalSender) -> dave.Session:
    session = dave.Session(None)
    session.init(1, CHANNEL, str(user_id))
    session.set_external_sender(sender.package())
    return session


def _davey(user_id: int, sender: mls.ExternalSender) -> davey.DaveSession:
    session = davey.DaveSession(1, user_id, CHANNEL)
    session.set_external_sender(sender.package())
    return session


def _code(session: dave.Session) -> str:
    return dave.generate_displayable_code(session.get_last_epoch_authenticator(), 30, 5)


@pytest.mark.parametrize("value", [0, 63, 64, 16383, 16384, 2**30 - 1])
def test_varints_round_trip_at_every_length_boundary(value: int) -> None:
    encoded = mls.varint(value)
    assert mls.Reader(encoded).varint() == value
    assert len(encoded) == (1 if value < 64 else 2 if value < 16384 else 4)


def test_a_varint_that_is_not_minimally_encoded_is_refused() -> None:
    with pytest.raises(mls.MlsError, match="minimal"):
        mls.Reader(b"\x40\x05").varint()


def test_truncated_input_is_refused_not_read_past_its_end() -> None:
    with pytest.raises(mls.MlsError, match="truncated"):
        mls.Reader(mls.varint(10) + b"short").opaque()


def test_key_packages_from_both_libraries_name_their_user_and_verify() -> None:
    sender = mls.ExternalSender()
    from_davey = mls.parse_key_package(_davey(BOT, sender).get_serialized_key_package())
    from_libdave = mls.parse_key_package(_libdave(ALICE, sender).get_marshalled_key_package())

    assert (from_davey.user_id, from_libdave.user_id) == (BOT, ALICE)
    assert from_davey.problems() == [] and from_libdave.problems() == []
    assert from_davey.ref != from_libdave.ref and len(from_davey.ref) == 32


def test_a_key_package_with_a_broken_signature_is_refused() -> None:
    raw = bytearray(_davey(BOT, mls.ExternalSender()).get_serialized_key_package())
    raw[-5] ^= 0x01  # inside the KeyPackage signature

    problems = mls.parse_key_package(bytes(raw)).problems()

    assert "key package signature does not verify" in problems


def test_a_key_package_wrapped_in_an_mls_message_is_read_too() -> None:
    raw = _davey(BOT, mls.ExternalSender()).get_serialized_key_package()
    wrapped = b"\x00\x01\x00\x05" + raw

    assert mls.parse_key_package(wrapped).raw == raw


def test_both_libraries_accept_the_servers_add_proposals_and_the_bot_commit_welcomes_the_listener() -> None:
    # GIVEN the bot (davey) and a listener (libdave), each with a pending local group
    sender = mls.ExternalSender()
    bot, alice = _davey(BOT, sender), _libdave(ALICE, sender)
    bot_package = mls.parse_key_package(bot.get_serialized_key_package())
    alice_package = mls.parse_key_package(alice.get_marshalled_key_package())
    add_alice = sender.propose_add(GROUP, 0, alice_package)
    add_bot = sender.propose_add(GROUP, 0, bot_package)

    # WHEN each is sent the other's Add
    bot_result = bot.process_proposals(davey.ProposalsOperationType.append, mls.proposals_append([add_alice])[1:])
    alice_result = alice.process_proposals(mls.proposals_append([add_bot]), {str(BOT), str(ALICE)})

    # THEN both commit; the server reads the bot's commit and cuts its welcome for the listener
    assert isinstance(bot_result, davey.CommitWelcome) and alice_result
    assert bot_result.welcome is not None
    commit, welcome = mls.split_commit_welcome(bot_result.commit + bot_result.welcome)
    assert (commit.epoch, commit.sender_leaf, commit.refs) == (0, 0, (add_alice.ref,))
    assert commit.group_id == GROUP and commit.path_leaf is None
    assert welcome is not None and welcome.new_members() == [alice_package.ref]
    # AND the listener joins from its cut welcome, at the bot's epoch, with the bot's privacy code
    bot.process_commit(commit.message)
    assert alice.process_welcome(welcome.for_member(alice_package.ref), {str(BOT), str(ALICE)}) is not None
    assert bot.ready and _code(alice) == bot.voice_privacy_code
    # AND the listener decrypts the bot's frames with the bot's key ratchet
    decryptor = dave.Decryptor()
    decryptor.transition_to_key_ratchet(alice.get_key_ratchet(str(BOT)))
    frame = b"\xfc" + bytes(range(80))
    assert decryptor.decrypt(dave.MediaType.audio, bot.encrypt_opus(frame)) == frame


def test_a_remove_commit_carries_an_update_path_from_its_committer_and_locks_out_the_removed() -> None:
    # GIVEN bot, alice and bob in one group (alice committed)
    sender = mls.ExternalSender()
    ids = {str(BOT), str(ALICE), str(BOB)}
    bot, alice, bob = _davey(BOT, sender), _libdave(ALICE, sender), _libdave(BOB, sender)
    packages = {
        BOT: mls.parse_key_package(bot.get_serialized_key_package()),
        BOB: mls.parse_key_package(bob.get_marshalled_key_package()),
    }
    adds = [sender.propose_add(GROUP, 0, packages[BOT]), sender.propose_add(GROUP, 0, packages[BOB])]
    commit, welcome = mls.split_commit_welcome(alice.process_proposals(mls.proposals_append(adds), ids) or b"")
    assert welcome is not None and sorted(welcome.new_members()) == sorted(p.ref for p in packages.values())
    by_ref = {add.ref: add.user_id for add in adds}
    leaves = [ALICE, *(by_ref[ref] for ref in commit.refs)]  # the committer, then adds in commit order
    alice.process_commit(commit.message)
    bot.process_welcome(welcome.for_member(packages[BOT].ref))
    bob.process_welcome(welcome.for_member(packages[BOB].ref), ids)
    bob_decryptor = dave.Decryptor()
    bob_decryptor.transition_to_key_ratchet(bob.get_key_ratchet(str(BOT)))

    # WHEN the server proposes removing bob and the bot commits it
    remove = sender.propose_remove(GROUP, 1, leaves.index(BOB), BOB)
    result = bot.process_proposals(davey.ProposalsOperationType.append, mls.proposals_append([remove])[1:])
    alice.process_proposals(mls.proposals_append([remove]), ids)  # libdave must see the epoch's proposals
    assert isinstance(result, davey.CommitWelcome) and result.welcome is None
    commit, welcome = mls.split_commit_welcome(result.commit)

    # THEN the commit references the Remove and its update path keeps the bot's own credential
    assert (commit.epoch, commit.refs, welcome) == (1, (remove.ref,), None)
    assert commit.path_leaf is not None and commit.path_leaf.user_id == BOT
    assert commit.path_leaf.signature_key == packages[BOT].leaf.signature_key
    # AND once applied, bob can no longer read the bot, and alice still can
    bot.process_commit(commit.message)
    assert isinstance(alice.process_commit(commit.message), dict)
    alice_decryptor = dave.Decryptor()
    alice_decryptor.transition_to_key_ratchet(alice.get_key_ratchet(str(BOT)))
    frame = bot.encrypt_opus(b"\xfc" + bytes(60))
    assert bob_decryptor.decrypt(dave.MediaType.audio, frame) is None
    assert alice_decryptor.decrypt(dave.MediaType.audio, frame) == b"\xfc" + bytes(60)


def test_revoking_a_proposal_takes_it_out_of_the_next_commit() -> None:
    sender = mls.ExternalSender()
    bot = _davey(BOT, sender)
    add = sender.propose_add(GROUP, 0, mls.parse_key_package(_libdave(ALICE, sender).get_marshalled_key_package()))
    bot.process_proposals(davey.ProposalsOperationType.append, mls.proposals_append([add])[1:])

    after_revoke = bot.process_proposals(davey.ProposalsOperationType.revoke, mls.proposals_revoke([add.ref])[1:])

    assert after_revoke is None  # nothing left to commit


def test_the_welcome_has_no_secrets_for_someone_it_does_not_add() -> None:
    sender = mls.ExternalSender()
    bot, alice = _davey(BOT, sender), _libdave(ALICE, sender)
    add = sender.propose_add(GROUP, 0, mls.parse_key_package(alice.get_marshalled_key_package()))
    result = bot.process_proposals(davey.ProposalsOperationType.append, mls.proposals_append([add])[1:])
    assert isinstance(result, davey.CommitWelcome) and result.welcome is not None
    _, welcome = mls.split_commit_welcome(result.commit + result.welcome)
    assert welcome is not None

    with pytest.raises(mls.MlsError, match="no secrets"):
        welcome.for_member(b"\x00" * 32)
