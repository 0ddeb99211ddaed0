"""The emulator holds a multipart body's ``attachments`` to its files as Discord does: an entry that
names a new file must have its ``files[n]`` file part (a part without a file name is no file). The uploaded bytes
come back by the attachment URL the message names (what /playlist export's test reads)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.test_emulator_discord_rules import QUIET, _multipart, _send
from tests.support.emulator import DiscordEmulator, GuildHandle

pytestmark = [pytest.mark.e2e, pytest.mark.discord_refusal_expected, pytest.mark.timeout(60)]


def _nameless(payload: dict[str, Any]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(payload)}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="files[0]"; filename=""\r\n'
            "Content-Type: text/plain\r\n\r\nhello\r\n"
            f"--{boundary}--\r\n").encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


def test_attachments_must_name_files_that_the_body_carries(emulator: DiscordEmulator, guild: GuildHandle) -> None:
    path = f"/channels/{guild.text_channel_id}/messages"
    named = {"content": "log", "allowed_mentions": QUIET, "attachments": [{"id": "0", "filename": "f.txt"}]}
    good, kind = _multipart(named, {"files[0]": b"hello"})
    missing, missing_kind = _multipart({**named, "attachments": [{"id": "1", "filename": "f.txt"}]},
                                       {"files[0]": b"hello"})  # fmt: skip
    nameless, nameless_kind = _nameless(named)

    status, message = _send(emulator, "POST", path, None, content_type=kind, raw=good)
    assert status == 200
    status, answer = _send(emulator, "POST", path, None, content_type=missing_kind, raw=missing)
    assert status == 400 and "ATTACHMENT_NOT_FOUND" in json.dumps(answer["errors"])
    status, answer = _send(emulator, "POST", path, None, content_type=nameless_kind, raw=nameless)
    assert status == 400 and "attachments" in answer["errors"]  # a part without a file name is no file
    assert message["content"] == "log"


def test_a_webhook_edit_with_a_file_names_it_as_an_attachment_and_serves_its_bytes(
    emulator: DiscordEmulator, guild: GuildHandle
) -> None:
    path = f"/webhooks/{emulator.application_id}/token-attach/messages/@original"
    body, kind = _multipart({"content": "here", "allowed_mentions": QUIET,
                             "attachments": [{"id": "0", "filename": "f.txt"}]}, {"files[0]": b"hello"})  # fmt: skip

    status, message = _send(emulator, "PATCH", path, None, content_type=kind, raw=body, auth=False)

    assert status == 200
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "f.txt" and attachment["size"] == 5
    assert emulator.uploaded(attachment["url"]) == b"hello"
