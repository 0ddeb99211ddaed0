"""The one deliberate ping: a member who asked (/preferences notify) is pinged, alone, when their own
track starts. The REST client's mention guard lets only that shape through, and the emulator's
rule holds every other message to pinging nobody."""

from __future__ import annotations

from tests.support.emulator.discord_rules import ping_problems
from timmybot.discord.rest import guarded_mentions
from timmybot.discord.types import no_mentions, requester_ping
from timmybot.models import QueueEntry, Track
from voice_task.notices import requester_ping_message

USER = "423456789012345678"
POST = ("POST", "/channels/{channel_id}/messages")
EDIT = ("PATCH", "/channels/{channel_id}/messages/{message_id}")


def test_the_requesters_message_pings_them_alone_and_passes_the_rule() -> None:
    entry = QueueEntry(
        "e1", Track("youtube", "v1", "@everyone listen", "https://youtu.be/v1", 60, None, None), USER, 0.0, notify=True
    )

    body = requester_ping_message(entry)

    assert body["content"].startswith(f"<@{USER}> ")
    assert guarded_mentions(body) == requester_ping(USER) == {"parse": [], "users": [USER]}
    assert ping_problems(*POST, {**body, "allowed_mentions": guarded_mentions(body)}) == []


def test_the_guard_refuses_anything_else_that_asks_to_ping() -> None:
    mention = f"<@{USER}> hi"
    asks = [
        {"content": "no mention here", "allowed_mentions": requester_ping(USER)},
        {"content": f"{mention} <@1>", "allowed_mentions": {"parse": [], "users": [USER, "1"]}},
        {"content": mention, "allowed_mentions": {"parse": ["everyone"], "users": [USER]}},
        {"content": mention, "allowed_mentions": {"parse": [], "users": [USER], "roles": ["7"]}},
        {"content": mention},
    ]

    assert [guarded_mentions(body) for body in asks] == [no_mentions()] * len(asks)


def test_the_emulator_rule_admits_the_ping_only_on_a_new_message_that_mentions_that_user() -> None:
    ping = {"content": f"<@{USER}> your track", "allowed_mentions": requester_ping(USER)}

    assert ping_problems(*POST, ping) == []
    assert ping_problems(*EDIT, ping) != []
    assert ping_problems(*POST, {**ping, "content": "your track"}) != []
    assert ping_problems(*POST, {**ping, "allowed_mentions": {"parse": [], "users": [USER, "1"]}}) != []
