"""GIVEN saved playlists on the in-memory Store WHEN /playlist subcommands, buttons and autocomplete
arrive THEN the playlists, their scopes, names and caps follow, with a sentence for every mistake."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.bootstrap import app_services, bootstrap
from chalicelib.dispatch import InlineDispatcher
from tests.support.handler_kit import HandlerApi
from tests.support.signing import (
    DJ_ROLE_ID,
    EPHEMERAL,
    GUILD_ID,
    MANAGE_GUILD,
    OTHER_GUILD_ID,
    OTHER_USER_ID,
    USER_ID,
    Signer,
    command,
    component,
    make_settings,
    seed_playing,
)
from timmybot.discord import custom_ids
from timmybot.discord.custom_ids import SavedPlaylistDeleteId, SavedPlaylistPageId
from timmybot.models import QueueEntry, Track
from timmybot.playlists.book import Owner, PlaylistBook
from timmybot.playlists.names import name_key
from timmybot.store.memory import MemoryStore


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[tuple[HandlerApi, list[dict[str, Any]]]]:
    """The api on a MemoryStore; jobs handed to the worker are kept, not run."""
    signer = Signer()
    settings = make_settings(
        tmp_path, signer, launcher="none", allowlist_extra=(GUILD_ID, OTHER_GUILD_ID), rate_play_user="off",
        saved_playlists_max=3, saved_playlist_tracks_max=12,
    )  # fmt: skip
    jobs: list[dict[str, Any]] = []
    services = bootstrap(settings, store=MemoryStore(), dispatcher=InlineDispatcher(jobs.append), in_lambda=False)
    with app_services.override(services):
        yield HandlerApi(signer=signer, services=services), jobs


def entry(n: int, title: str | None = None) -> QueueEntry:
    video = f"vid{n:08d}"
    return QueueEntry(
        entry_id=f"e{n:03d}",
        track=Track.from_dict({"source": "youtube", "source_id": video, "title": title or f"Song {n}", "artist": "Band",
               "url": f"https://www.youtube.com/watch?v={video}", "duration_s": 100 + n, "thumbnail": None}),
        requester_id=USER_ID,
        added_at=time.time(),
    )  # fmt: skip


def seed(api: HandlerApi, count: int, *, guild_id: str = GUILD_ID) -> None:
    seed_playing(api.store, guild_id=guild_id, entry=entry(0, "Now Song"))
    api.store.append_entries(guild_id, [entry(n) for n in range(1, count + 1)], cap=500)


def pl(api: HandlerApi, sub: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = api.post(command("playlist", options, sub=sub, **kw)).json_body
    return body


def content(body: dict[str, Any]) -> str:
    return str(body["data"].get("content", ""))


def book(api: HandlerApi) -> PlaylistBook:
    return PlaylistBook(api.store, max_playlists=3, max_tracks=12)


# ------------------------------------------------------------------------------ save, show, list
def test_save_keeps_the_playing_track_then_the_queue_with_their_metadata(kit: Any) -> None:
    api, _ = kit
    seed(api, 3)
    body = pl(api, "save", {"name": "Road Trip"})
    assert "Saved 4 tracks as your personal playlist **Road Trip**" in content(body)
    owner = Owner("personal", USER_ID)
    header = book(api).get(owner, "road trip")
    tracks = book(api).tracks(owner, header)
    assert [t["title"] for t in tracks] == ["Now Song", "Song 1", "Song 2", "Song 3"]
    assert tracks[1]["source_id"] == "vid00000001" and tracks[1]["duration_s"] == 101


def test_names_that_differ_only_in_case_or_unicode_form_collide_with_a_sentence(kit: Any) -> None:
    api, _ = kit
    seed(api, 1)
    pl(api, "save", {"name": "Road Trip"})
    for other in ("road trip", "ＲＯＡＤ  ＴＲＩＰ"):
        body = pl(api, "save", {"name": other})
        assert body["data"]["flags"] == EPHEMERAL
        assert "already have a playlist named" in content(body)
    assert len(book(api).headers(Owner("personal", USER_ID))) == 1
    assert name_key("Ｒｏａｄ Trip") == name_key("road trip")


@pytest.mark.parametrize("bad", ["a\x07b", "   ", "x" * 51, "zero\u200bwidth"])
def test_bad_names_are_refused_with_a_sentence(kit: Any, bad: str) -> None:
    api, _ = kit
    seed(api, 1)
    body = pl(api, "save", {"name": bad})
    assert body["data"]["flags"] == EPHEMERAL
    assert "playlist name" in content(body)
    assert book(api).headers(Owner("personal", USER_ID)) == []


def test_the_playlist_cap_and_the_track_cap_are_sentences(kit: Any) -> None:
    api, _ = kit
    seed(api, 20)
    first = pl(api, "save", {"name": "Big"})
    assert "Saved 12 tracks" in content(first) and "The other 9 didn't fit" in content(first)
    pl(api, "save", {"name": "Two"})
    pl(api, "save", {"name": "Three"})
    fourth = pl(api, "save", {"name": "Four"})
    assert "3 saved playlists, the most allowed (3)" in content(fourth)
    full = pl(api, "add", {"name": "Big"})
    assert "is full: a playlist holds at most 12 tracks" in content(full)


def test_show_pages_ten_at_a_time_with_buttons_that_only_find_the_clickers_own(kit: Any) -> None:
    api, _ = kit
    seed(api, 11)
    pl(api, "save", {"name": "Mix"})
    body = pl(api, "show", {"name": "mix"})
    embed = body["data"]["embeds"][0]
    assert body["data"]["flags"] == EPHEMERAL
    assert embed["description"].count("\n") == 9 and "page 1/2" in embed["footer"]["text"]
    ids = [c["custom_id"] for c in body["data"]["components"][0]["components"]]
    parsed = custom_ids.parse(ids[1])
    assert isinstance(parsed, SavedPlaylistPageId) and parsed.page == 2
    page2 = api.post(component(ids[1])).json_body
    assert page2["type"] == 7 and "`11.`" in page2["data"]["embeds"][0]["description"]
    foreign = api.post(component(ids[1], user_id=OTHER_USER_ID)).json_body
    assert "gone (deleted, or not yours)" in content(foreign)


def test_list_shows_personal_and_server_playlists_with_counts(kit: Any) -> None:
    api, _ = kit
    seed(api, 2)
    pl(api, "save", {"name": "Mine"})
    pl(api, "save", {"name": "Ours", "scope": "server"}, permissions=MANAGE_GUILD)
    body = pl(api, "list")
    assert "**Your playlists** (1/3)\n• **Mine** · 3 tracks" in content(body)
    assert "**This server's playlists** (1/3)\n• **Ours** · 3 tracks" in content(body)


# ------------------------------------------------------------------------------ edits
def test_add_remove_and_rename(kit: Any) -> None:
    api, _ = kit
    seed(api, 2)
    pl(api, "save", {"name": "Mix"})
    assert "Added **Now Song** to **Mix** (4 tracks)" in content(pl(api, "add", {"name": "Mix"}))
    assert "Removed **Song 1** from **Mix** (3 tracks left)" in content(pl(api, "remove", {"name": "Mix", "index": 2}))
    assert "`index` must be 1 to 3" in content(pl(api, "remove", {"name": "Mix", "index": 9}))
    assert "Renamed **Mix** to **Party**" in content(pl(api, "rename", {"name": "mix", "new_name": "Party"}))
    owner = Owner("personal", USER_ID)
    header = book(api).get(owner, "party")
    assert [t["title"] for t in book(api).tracks(owner, header)] == ["Now Song", "Song 2", "Now Song"]
    assert header.revision == 3  # each change wrote a new revision; the old chunks are gone
    stale = api.store.get_record(owner.pk, f"C#{header.id}#1#000")
    assert stale is None


def test_delete_asks_first_and_the_button_deletes(kit: Any) -> None:
    api, _ = kit
    seed(api, 1)
    pl(api, "save", {"name": "Mix"})
    body = pl(api, "delete", {"name": "Mix"})
    assert "Delete **Mix** (2 tracks)?" in content(body)
    button = body["data"]["components"][0]["components"][0]["custom_id"]
    assert isinstance(custom_ids.parse(button), SavedPlaylistDeleteId)
    assert book(api).find(Owner("personal", USER_ID), "Mix") is not None
    done = api.post(component(button)).json_body
    assert done["type"] == 7 and "Deleted **Mix**" in content(done)
    assert book(api).find(Owner("personal", USER_ID), "Mix") is None
    again = api.post(component(button)).json_body
    assert "already deleted" in content(again)


# ------------------------------------------------------------------------------ scopes
def test_a_server_playlist_is_edited_by_djs_only_loaded_by_anyone_and_invisible_elsewhere(kit: Any) -> None:
    api, jobs = kit
    seed(api, 2)
    api.store.update_settings(GUILD_ID, dj_role_id=DJ_ROLE_ID)
    refused = pl(api, "save", {"name": "House", "scope": "server"}, user_id=OTHER_USER_ID)
    assert "Only members with the <@&" in content(refused) and "change this server's playlists" in content(refused)
    assert "Saved 3 tracks as this server's playlist **House**" in content(
        pl(api, "save", {"name": "House", "scope": "server"}, roles=[DJ_ROLE_ID])
    )
    for sub, options in (("add", {"name": "House"}), ("remove", {"name": "House", "index": 1}),
                         ("rename", {"name": "House", "new_name": "Home"}), ("delete", {"name": "House"})):  # fmt: skip
        body = pl(api, sub, options, user_id=OTHER_USER_ID)
        assert "change this server's playlists" in content(body), sub
    loaded = pl(api, "load", {"name": "house"}, user_id=OTHER_USER_ID)
    assert loaded["type"] == 5
    assert jobs[-1]["kind"] == "load" and jobs[-1]["scope"] == "server" and jobs[-1]["name"] == "House"
    elsewhere = pl(api, "load", {"name": "House"}, guild_id=OTHER_GUILD_ID, user_id=OTHER_USER_ID)
    assert "Neither you nor this server has a playlist named **House**" in content(elsewhere)
    assert len(jobs) == 1


def test_a_personal_playlist_is_found_from_another_guild(kit: Any) -> None:
    api, jobs = kit
    seed(api, 2)
    pl(api, "save", {"name": "Mine"})
    body = pl(api, "load", {"name": "mine", "placement": "next"}, guild_id=OTHER_GUILD_ID)
    assert body["type"] == 5
    assert jobs[-1]["scope"] == "personal" and jobs[-1]["guild_id"] == OTHER_GUILD_ID
    assert jobs[-1]["placement"] == "next"


# ------------------------------------------------------------------------------ autocomplete
def test_names_autocomplete_from_the_users_and_the_guilds_playlists(kit: Any) -> None:
    api, _ = kit
    seed(api, 1)
    pl(api, "save", {"name": "Road Trip"})
    pl(api, "save", {"name": "Roadhouse", "scope": "server"}, permissions=MANAGE_GUILD)
    pl(api, "save", {"name": "Other"})
    payload = command("playlist", sub="load")
    payload["type"] = 4
    payload["data"]["options"][0]["options"] = [{"name": "name", "type": 3, "value": "ROAD", "focused": True}]
    body = api.post(payload).json_body
    assert body["type"] == 8
    assert body["data"]["choices"] == [
        {"name": "Road Trip", "value": "Road Trip"},
        {"name": "Roadhouse (server)", "value": "Roadhouse"},
    ]


# ------------------------------------------------------------------------------ import checks
def _import_with(api: HandlerApi, attachment: dict[str, Any]) -> dict[str, Any]:
    payload = command("playlist", {"name": "Imported", "file": "9001"}, sub="import")
    payload["data"]["resolved"] = {"attachments": {"9001": {"id": "9001", **attachment}}}
    body: dict[str, Any] = api.post(payload).json_body
    return body


def test_an_import_from_another_host_or_over_the_size_cap_is_refused_and_nothing_is_dispatched(kit: Any) -> None:
    api, jobs = kit
    good = "https://cdn.discordapp.com/attachments/1/2/mix.json"
    foreign = _import_with(api, {"url": "https://evil.example/mix.json", "filename": "mix.json", "size": 100})
    assert "only import files uploaded to Discord" in content(foreign)
    metadata = _import_with(api, {"url": "http://169.254.169.254/latest", "filename": "x.json", "size": 100})
    assert "only import files uploaded to Discord" in content(metadata)
    big = _import_with(api, {"url": good, "filename": "mix.json", "size": 2 * 1024 * 1024})
    assert "That file is 2.0 MiB; an imported playlist file can be at most 1.0 MiB" in content(big)
    assert jobs == []
    ok = _import_with(api, {"url": good, "filename": "mix.json", "size": 2000})
    assert ok["type"] == 5 and jobs[-1]["attachment_url"] == good


def test_an_import_url_goes_through_plays_policy(kit: Any) -> None:
    api, jobs = kit
    body = pl(api, "import", {"name": "Imported", "url": "http://127.0.0.1:8080/list"})
    assert body["data"]["flags"] == EPHEMERAL and jobs == []
    both = pl(api, "import", {"name": "Imported"})
    assert "Give either `file`" in content(both)
