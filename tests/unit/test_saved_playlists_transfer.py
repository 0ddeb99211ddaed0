"""GIVEN export files and attachments WHEN they are built, checked and parsed THEN only the CDN host
within the size cap passes, nothing in a file but its links is used, and the JSON limits hold."""

from __future__ import annotations

import json

import pytest

from timmybot.errors import InvalidInputError
from timmybot.playlists import transfer
from timmybot.playlists.jobs import JobKind, PlaylistJob

CDN = "cdn.discordapp.com"
MIB = 1024 * 1024


def test_an_export_keeps_title_artist_url_and_duration_only() -> None:
    track = {"source": "youtube", "source_id": "x", "title": "Song", "artist": "Band", "url": "https://y/x",
             "duration_s": 5, "thumbnail": "https://t", "isrc": "I"}  # fmt: skip
    document = json.loads(transfer.export_document("Mix", [track]))
    kept = {"title": "Song", "artist": "Band", "url": "https://y/x", "duration_s": 5}
    assert document == {"format": "timmybot-playlist", "version": 1, "name": "Mix", "tracks": [kept]}
    assert transfer.export_filename("Röad trip/../x") == "R-ad-trip----x.json"
    assert transfer.export_filename("😀") == "playlist.json"


@pytest.mark.parametrize(
    ("url", "size", "sentence"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.json", 2 * MIB, "at most 1.0 MiB"),
        ("https://cdn.discordapp.com/attachments/1/2/a.json", -1, "couldn't read that attachment's size"),
        ("https://media.discordapp.net/attachments/1/2/a.json", 10, "only import files uploaded to Discord"),
        ("http://cdn.discordapp.com/attachments/1/2/a.json", 10, "only import files uploaded to Discord"),
        ("https://user@cdn.discordapp.com/a.json", 10, "only import files uploaded to Discord"),
        ("https://cdn.discordapp.com:8443/a.json", 10, "only import files uploaded to Discord"),
        ("https://cdn.discordapp.com/a b.json", 10, "only import files uploaded to Discord"),
        ("https://[::1/a.json", 10, "malformed"),
    ],
)
def test_an_attachment_off_the_cdn_or_over_the_cap_is_refused_before_any_fetch(
    url: str, size: int, sentence: str
) -> None:
    with pytest.raises(InvalidInputError, match=sentence):
        transfer.check_attachment(url, size, host=CDN, max_bytes=MIB)


def test_the_cdn_within_the_cap_passes_and_a_test_host_may_be_plain_http() -> None:
    good = "https://cdn.discordapp.com/attachments/1/2/a.json?ex=1"
    assert transfer.check_attachment(good, MIB, host=CDN, max_bytes=MIB) == good
    local = "http://127.0.0.1:8123/a.json"
    assert transfer.check_attachment(local, 10, host="127.0.0.1:8123", max_bytes=MIB) == local


def test_a_file_gives_its_links_up_to_the_cap_and_counts_the_rest() -> None:
    raw = json.dumps({"tracks": [{"url": f"https://youtu.be/{n:011d}", "title": "ignored"} for n in range(7)]})
    links, beyond = transfer.parse_document(raw.encode(), max_entries=5)
    assert links == [f"https://youtu.be/{n:011d}" for n in range(5)] and beyond == 2


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe", b"not json", b"[1, 2]", b'{"tracks": {}}', b'{"tracks": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     json.dumps({"tracks": [[[[[[[["deep"]]]]]]]]}).encode()],
)  # fmt: skip
def test_files_that_are_not_exports_or_nest_too_deep_are_a_sentence(raw: bytes) -> None:
    with pytest.raises(InvalidInputError, match="isn't a TimmyBot playlist export"):
        transfer.parse_document(raw, max_entries=500)


def test_a_job_round_trips_and_a_malformed_one_is_a_value_error() -> None:
    job = PlaylistJob(kind=JobKind.IMPORT, interaction_id="1", application_id="2", guild_id="3", user_id="4",
                      scope="server", name="Mix", attachment_url="https://cdn.discordapp.com/a", attachment_size=9,
                      token="secret")  # fmt: skip
    assert PlaylistJob.from_dict(job.to_dict()) == job
    assert "secret" not in repr(job)
    with pytest.raises(ValueError, match="scope"):
        PlaylistJob.from_dict({**job.to_dict(), "scope": "everyone"})
