"""What the voice task really asks of DynamoDB, and that its IAM role allows exactly that.

GIVEN a voice task whose store is DynamoDB (moto on 127.0.0.1 behind a recording endpoint)
WHEN it plays a queue through the controls users have (skip, a broken track, pause, resume, volume,
seek), runs out of music and exits
THEN every call it made is allowed by ``VoiceTaskRole`` in infra/template.yaml (decided by
tests/support/iam.py, since moto ignores IAM), every call kind is in the list the packaged
template is checked against (tests/support/golden/voice_task_store_calls.json), and none touched a
user, OAuth or interaction record. Each track started is one slot of the guild history's ring.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import iam
from tests.support.dynamodb_recorder import Call, RecordingDynamoDB
from tests.support.emulator import DiscordEmulator, GuildHandle
from tests.support.media import MediaServer
from tests.support.voice_stack import VoiceStack
from tests.support.warm_start import WarmStarter
from timmybot.store import keys

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "support" / "golden" / "voice_task_store_calls.json"


@pytest.fixture
def recorder() -> Iterator[RecordingDynamoDB]:
    endpoint = RecordingDynamoDB()
    yield endpoint
    endpoint.close()


def test_the_voice_task_makes_only_calls_its_role_allows(
    recorder: RecordingDynamoDB, emulator: DiscordEmulator, guild: GuildHandle, media_server: MediaServer,
    tmp_path: Path, warm_starter: WarmStarter,
) -> None:  # fmt: skip
    # GIVEN a listener and a queue of a tone, a track whose media is gone, and two more tones
    stack = VoiceStack(emulator, media_server, tmp_path, dynamodb=recorder, starter=warm_starter,
                       TIMMYBOT_IDLE_TIMEOUT_S="2")  # fmt: skip
    try:
        user = emulator.add_member(guild.id, "listener")
        emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
        gid = str(guild.id)
        first, broken, third, last = (stack.tone_entry(f, s) for f, s in ((440, 6), (500, 2), (660, 20), (880, 2)))
        media_server.fail("tone-500-2.webm", 404)
        stack.enqueue(gid, first, broken, third, last, voice_channel_id=str(guild.voice_channel_id),
                      text_channel_id=str(guild.text_channel_id))  # fmt: skip

        # WHEN the task plays it through the controls, then runs dry and exits
        task = stack.launch(gid)
        stack.wait_record(gid, lambda r: _playing(r, first.entry_id), what="the first track")
        stack.store.skip(gid)
        stack.wait_record(gid, lambda r: _playing(r, third.entry_id), timeout=20, what="the third track")
        stack.store.pause(gid)
        stack.wait_record(gid, lambda r: r.actual.paused, what="paused")
        stack.store.resume(gid)
        stack.store.set_volume(gid, 50)
        stack.wait_record(gid, lambda r: not r.actual.paused, what="resumed")
        stack.store.seek(gid, 4_000)
        stack.wait_record(gid, lambda r: r.actual.applied_seek_seq == 1, what="seek applied")
        # the third track is 20 s, so a loaded machine still pauses it while it plays: skip the rest
        stack.store.skip(gid)
        assert task.wait(timeout=40) == 0, task.log[-3000:]
    finally:
        stack.close()

    calls = recorder.calls()
    statements = iam.role_statements(iam.load_template(ROOT / "infra" / "template.yaml"), "VoiceTaskRole")
    table_arn = iam.resolve({"Fn::GetAtt": ["StateTable", "Arn"]}, {"StateTable": {"Type": "AWS::DynamoDB::Table"}})

    # THEN it used the store (reads, conditional writes, batches), and the role allows every call
    assert {c.action for c in calls} >= {"GetItem", "PutItem"}, calls
    refused = [c for c in calls if not iam.allows(statements, _request(c, table_arn))]
    assert refused == [], refused
    # AND each kind of call is one the packaged template is checked against
    recorded = {(c.action, c.index or "", iam.key_kind(k)) for c in calls for k in c.partition_keys}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        _write_golden(calls)
    known = {(e["action"], e["index"], e["kind"]) for e in json.loads(GOLDEN.read_text())["calls"]}
    assert recorded <= known, f"new store calls by the voice task: add them to {GOLDEN.name}: {recorded - known}"
    # AND none reached a user, OAuth or interaction record
    assert not [k for c in calls for k in c.partition_keys if k.startswith(("U#", "O#", "I#"))]
    # AND each track that started is one slot of the guild history's ring, numbered by the play count
    # the task published in its state; the legacy single item is not written
    history = [e.entry_id for e in stack.store.guild_history(gid)]
    assert history[:2] == [last.entry_id, third.entry_id]  # the first may be skipped before it starts
    played = stack.store.get_guild(gid).actual.played_seq
    assert played == len(history) >= 2
    pk = keys.guild_pk(gid)
    slots = stack.store._get_items([(pk, sk) for sk in keys.history_slot_sks()])
    assert set(slots) == {(pk, keys.history_slot_sk(n)) for n in range(played)}
    assert stack.store._get_items([(pk, keys.GUILD_HISTORY_SK)]) == {}


def _write_golden(calls: list[Call]) -> None:
    """``UPDATE_GOLDEN=1``: record this run's call kinds, one real key each, as the list."""
    examples: dict[tuple[str, str, str], str] = {}
    for call in calls:
        for key in call.partition_keys:
            examples.setdefault((call.action, call.index or "", iam.key_kind(key)), key)
    rows = [{"action": a, "index": i, "kind": k, "example": examples[(a, i, k)]} for a, i, k in sorted(examples)]
    note = ("Every kind of DynamoDB call the voice task made in tests/e2e/test_voice_task_store_calls.py, "
            "recorded on the wire; tests/infra/test_infra_stack.py checks the packaged template allows each. "
            "Regenerate with UPDATE_GOLDEN=1.")  # fmt: skip
    GOLDEN.write_text(json.dumps({"note": note, "calls": rows}, indent=2) + "\n")


def _playing(record: object, entry_id: str) -> bool:
    now = getattr(getattr(record, "actual", None), "now_playing", None)
    return now is not None and now.entry_id == entry_id


def _request(call: Call, table_arn: str) -> iam.Request:
    return iam.dynamodb_request(call.action, table_arn, list(call.partition_keys), index=call.index)
