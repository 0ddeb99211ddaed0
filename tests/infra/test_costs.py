"""docs/COSTS.md counts every metered item at the rates the code really runs at (issue 16, Build 10).

GIVEN infra/prices.json and scripts/costs.py
THEN  the poll, heartbeat, wake-poll and reaper rates the costs assume are the code's own settings
AND   every priced section names its source, and the document is what the prices give
AND   idle with the default vault is at most $2 in years 1-3; the ARM and Spot listening hours, with data
      out, DynamoDB (measured by scripts/bench/store_rates.py), SQS and logs all in them, are stated
      against their targets ($0.021, $0.015) with the verdict the figures give
AND   each track's guild-history write is counted, at the size of the largest slot a track makes
AND   the tokens KMS key exists only with the KMS vault.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scripts import costs
from timmybot.config import Settings
from timmybot.models import QueueEntry, Track, replay_id
from timmybot.store.base import history_slot
from timmybot.store.keys import guild_pk, history_slot_sk
from timmybot.store.limits import item_size
from voice_task import polling, wake

ROOT = Path(__file__).resolve().parents[2]


def _prices() -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(costs.PRICES.read_text())
    return prices


def test_the_rates_costed_are_the_codes_own() -> None:
    a = _prices()["assumptions"]
    assert a["playing_poll_s"] == polling.PLAYING_POLL_MAX_S
    assert a["near_end_poll_s"] == polling.NEAR_END_POLL_S
    assert a["near_end_s"] == polling.NEAR_END_S
    assert a["heartbeat_s"] == Settings().heartbeat_s
    assert a["wake_long_poll_s"] == wake.SQS_WAIT_S
    assert Settings().wake_hints != "none"  # without hints the task would poll every tick_s
    app_py = (ROOT / "chalice_app" / "app.py").read_text()
    assert re.search(r"@app\.schedule\(Rate\(1, unit=Rate\.MINUTES\), name=\"reaper\"\)", app_py)
    assert a["reaper_per_minute"] == 1


def test_every_price_section_has_a_source_and_the_doc_is_current() -> None:
    prices = _prices()
    priced = {
        k
        for k, v in prices.items()
        if isinstance(v, dict) and k not in ("assumptions", "seed", "sources", "targets", "discord")
    }
    priced.add("public_ipv4_hour")
    assert priced <= set(prices["sources"]), priced - set(prices["sources"])
    assert costs.main(["--check"]) == 0
    doc = costs.DOC.read_text()
    for item in ("data out to Discord", "DynamoDB reads", "DynamoDB writes", "SQS", "CloudWatch Logs ingestion"):
        assert item in doc
    for item in ("reaper: ", "Custom metrics", "KMS vault's key", "schedule-key-deletion", "seed"):
        assert item in doc


def test_idle_holds_its_target_and_each_listening_hour_is_judged_truly() -> None:
    prices = _prices()
    c = costs.Costs(prices)
    targets = prices["targets"]
    assert max(c.idle(0), c.idle(1), c.idle(2)) <= targets["idle_month"]
    assert c.idle(2, kms_vault=True) - c.idle(2) == pytest.approx(c.kms_key_month(2))  # the KMS key, stated apart
    doc = costs.DOC.read_text()
    _x86, arm, spot = c.listening_hours()
    for hour, key in ((arm, "listening_hour_arm"), (spot, "listening_hour_spot")):
        verdict = "met" if hour.total <= targets[key] else "NOT met"
        assert f"{costs.money(targets[key])}: {verdict} (${hour.total:.5f})" in doc, (key, hour.total)
    metered = {label for label, _, value in c.metered_items() if value > 0}
    assert len(metered) == 5
    data_out = prices["assumptions"]["audio_gb_per_listening_hour"] * prices["data_out"]["gb"]
    assert arm.metered > data_out  # data out is in, with the rest on top of it


def test_the_measured_rates_are_at_least_what_the_settings_imply() -> None:
    a = _prices()["assumptions"]
    # every mid-track poll, eventually consistent, and the heartbeat's strongly consistent read
    assert a["measured_eventual_reads_per_hour"] >= 0.98 * 3600 / a["playing_poll_s"]
    assert a["measured_strong_reads_per_hour"] >= 3600 / a["heartbeat_s"]
    assert a["measured_writes_per_hour"] >= 3600 / a["heartbeat_s"]
    assert a["heartbeat_write_units"] == max(1, -(-a["measured_guild_record_bytes"] // 1024))
    assert a["poll_read_units"] == max(1, -(-a["measured_guild_record_bytes"] // 4096))


def test_the_guild_history_write_is_counted_at_its_slot_size() -> None:
    prices = _prices()
    a = prices["assumptions"]
    # GIVEN the largest slot a track makes: four-byte characters in a long title and artist, a long
    # thumbnail, /back's replay id, a large play number and a 300-byte link
    track = {"source": "soundcloud", "source_id": "x" * 40, "title": "🎵" * 256, "artist": "🎤" * 256,
             "url": "https://" + "u" * 292, "duration_s": 12_345, "thumbnail": "https://i1.sndcdn.com/" + "t" * 200,
             "isrc": "USRC17607839", "fallback_from": "spotify"}  # fmt: skip
    entry = QueueEntry(
        replay_id("0123456789abcdef" * 2, "1334567890123456789", "-back"), Track.from_dict(track), "4" * 18, 1.0
    )
    key = (guild_pk("1234567890123456789"), history_slot_sk(49))
    size = item_size(key, history_slot(key, entry, now=1_796_239_899.148, seq=1_234_567))
    # THEN it is within the size costed, one write unit, one write per track, and COSTS.md counts it
    assert size <= a["history_slot_max_bytes"]
    assert a["history_write_units"] == max(1, -(-a["history_slot_max_bytes"] // 1024)) == 1
    assert a["history_writes_per_track"] == 1
    c = costs.Costs(prices)
    assert c.history_write_units_per_hour() == a["tracks_per_listening_hour"]
    assert "guild-history write of 1 unit" in costs.DOC.read_text()


def test_the_tokens_key_exists_only_with_the_kms_vault() -> None:
    text = (ROOT / "infra" / "template.yaml").read_text()
    assert re.search(r"UseKmsVault: !Equals \[!Ref VaultBackend, kms\]", text)
    assert re.search(r"  TokensKey:\n    Type: AWS::KMS::Key\n    Condition: UseKmsVault\n", text)
    assert re.search(r"  TokensKeyAlias:\n    Type: AWS::KMS::Alias\n    Condition: UseKmsVault\n", text)
