"""GIVEN a volume and filters WHEN the one -af chain is built THEN FFmpeg gets exactly what each preset needs.

The last tests run the chain through the real FFmpeg (imageio-ffmpeg) on a generated -20 dBFS tone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.audio import dominant_frequency, rms_dbfs
from timmybot.filters import (
    EQ_GAINS_DB,
    SAMPLE_RATE,
    FilterPreset,
    Filters,
    audio_filter_chain,
    filter_names,
    normal_speed,
    required_filters,
)
from timmybot.models import Actual, Desired, GuildRecord, QueueEntry, Track
from timmybot.sources.models import StreamInfo
from voice_task.audio import channel_bitrate_kbps, encoder_options, ffmpeg_executable, uses_copy_path
from voice_task.reconcile import Action, Applied, plan

TONE_AMPLITUDE = 10 ** (-20 / 20)  # a -20 dBFS peak
ROOT = Path(__file__).resolve().parents[2]
_PYTHONPATH = os.pathsep.join([str(ROOT / "layers" / "core" / "python"), str(ROOT)])


def test_no_volume_and_no_filter_need_no_chain_at_all() -> None:
    assert audio_filter_chain(100, Filters()) == ""
    assert audio_filter_chain(100, Filters(FilterPreset.EQ_FLAT)) == ""  # every band at 0 dB
    assert Filters(FilterPreset.EQ_FLAT).is_off


def test_volume_alone_is_one_stage() -> None:
    assert audio_filter_chain(50, Filters()) == "volume=0.50"


def test_bass_boost_always_ends_in_a_limiter_that_does_not_raise_the_level() -> None:
    for preset in (FilterPreset.BASS_LOW, FilterPreset.BASS_MEDIUM, FilterPreset.BASS_HIGH):
        stages = audio_filter_chain(100, Filters(preset)).split(",")
        assert stages[0].startswith("lowshelf=")
        assert stages[-1].startswith("alimiter=") and "level=0" in stages[-1]


def test_nightcore_and_vaporwave_resample_from_a_known_rate_and_change_the_rate() -> None:
    assert audio_filter_chain(100, Filters(FilterPreset.NIGHTCORE)) == "aresample=48000,asetrate=60000,aresample=48000"
    assert audio_filter_chain(100, Filters(FilterPreset.VAPORWAVE)) == "aresample=48000,asetrate=38400,aresample=48000"
    assert Filters(FilterPreset.NIGHTCORE).rate == pytest.approx(1.25)
    assert Filters(FilterPreset.VAPORWAVE).rate == pytest.approx(0.8)


def test_speed_is_tempo_only_and_pitch_keeps_the_tempo() -> None:
    assert audio_filter_chain(100, Filters(speed=1.5)) == "atempo=1.5"
    assert audio_filter_chain(100, Filters(pitch=12)) == "aresample=48000,asetrate=96000,aresample=48000,atempo=0.5"
    assert Filters(speed=1.5).rate == 1.5
    assert Filters(pitch=12).rate == 1.0


def test_tempos_below_half_are_split_over_two_atempo_stages() -> None:
    chain = audio_filter_chain(100, Filters(speed=0.5, pitch=12))  # tempo 0.5 / 2 = 0.25
    assert chain.endswith("atempo=0.5,atempo=0.5")


def test_the_volume_comes_first_and_the_limiter_last() -> None:
    stages = audio_filter_chain(150, Filters(FilterPreset.BASS_HIGH, speed=1.25, pitch=-3)).split(",")
    assert stages[0] == "aresample=48000"
    assert stages[1] == "volume=1.50"
    assert stages[-1].startswith("alimiter=")


def test_required_filters_cover_every_chain_the_builder_can_make() -> None:
    needed = set(required_filters())
    for preset in FilterPreset:
        for speed in (0.5, 1.0, 2.0):
            for pitch in (-12, -1, 0, 5, 12):
                assert filter_names(audio_filter_chain(120, Filters(preset, speed, pitch))) <= needed
    assert {"alimiter", "apulsator", "pan", "asetrate", "atempo", "aresample"} <= needed


def test_the_copy_path_stays_only_for_opus_at_volume_100_with_no_filter() -> None:
    opus = StreamInfo(stream_url="http://127.0.0.1:1/a.webm", codec="opus", container="webm", local=True)
    assert uses_copy_path(opus, 100, Filters())
    assert uses_copy_path(opus, 100, Filters(FilterPreset.EQ_FLAT))
    assert not uses_copy_path(opus, 100, Filters(FilterPreset.KARAOKE))
    assert not uses_copy_path(opus, 100, Filters(speed=1.1))
    assert not uses_copy_path(opus, 90, Filters())


def test_speed_is_stored_in_hundredths_and_refused_outside_its_range() -> None:
    assert normal_speed(1.234) == 1.23
    for bad in (0.49, 2.01, float("nan")):
        with pytest.raises(ValueError):
            normal_speed(bad)


def test_filters_are_desired_state_and_old_records_still_load() -> None:
    old = GuildRecord.from_dict({"guild_id": "1", "desired": {"volume": 80}})
    assert old.desired.filters == Filters()
    assert old.actual.rate == 1.0
    record = GuildRecord("1", desired=Desired(filter=FilterPreset.NIGHTCORE, speed=1.5, pitch=-2))
    again = GuildRecord.from_dict(record.to_dict())
    assert again.desired.filters == Filters(FilterPreset.NIGHTCORE, 1.5, -2)
    unknown = GuildRecord.from_dict({"guild_id": "1", "desired": {"filter": "a-newer-preset"}})
    assert unknown.desired.filter is FilterPreset.OFF


def test_a_filter_change_is_planned_like_a_volume_change() -> None:
    applied = Applied(skip_seq=0, stop_seq=0, seek_seq=0, paused=False, volume=100)
    assert plan(Desired(filter=FilterPreset.KARAOKE), applied, playing=True) == [Action.SET_FILTERS]
    assert plan(Desired(speed=1.5), applied, playing=False) == [Action.SET_FILTERS]
    done = Applied(0, 0, 0, False, 100, filters=Filters(FilterPreset.KARAOKE))
    assert plan(Desired(filter=FilterPreset.KARAOKE), done, playing=True) == []


def test_positions_are_track_time_and_started_at_is_scaled_by_the_rate() -> None:
    entry = QueueEntry("e", Track("youtube", "t1", "t", "https://youtu.be/t1", 180, None, None), "1", 0.0)
    actual = Actual(now_playing=entry, started_at=1000.0, rate=1.5)
    assert actual.position_at(1060.0) == 90_000  # 60 s of wall time at 1.5× is 90 s of the track


def test_describe_names_the_preset_the_speed_and_the_pitch() -> None:
    assert Filters().describe() == "off"
    assert Filters(FilterPreset.NIGHTCORE, 1.5, 12).describe() == "Nightcore · 1.5× speed · +12 semitones"
    assert Filters(pitch=-1).describe() == "-1 semitone"


# ---------------------------------------------------------------------------------------- real FFmpeg
def _run(chain: str, source: str, seconds: float = 2.0) -> npt.NDArray[np.float64]:
    """``source`` (a lavfi graph) through ``chain``, as 48 kHz stereo float samples."""
    command = [ffmpeg_executable(), "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
               "-t", str(seconds), "-i", source]  # fmt: skip
    if chain:
        command += ["-af", chain]
    command += ["-ar", str(SAMPLE_RATE), "-ac", "2", "-f", "f32le", "pipe:1"]
    done = subprocess.run(command, capture_output=True, timeout=60, check=True)
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float64).reshape(-1, 2)


def _tone(hz: float, rate: int = 44100) -> str:
    return f"sine=f={hz}:r={rate},volume={TONE_AMPLITUDE:.4f},aformat=channel_layouts=stereo"


def _level(chain: str, hz: float) -> float:
    return rms_dbfs(_run(chain, _tone(hz))[SAMPLE_RATE // 4 :, 0])  # past the filters' settling


def test_ffmpeg_plays_pitch_and_speed_as_the_chain_says() -> None:
    up = _run(audio_filter_chain(100, Filters(pitch=12)), _tone(440))
    fast = _run(audio_filter_chain(100, Filters(speed=1.5)), _tone(440), seconds=3.0)
    assert dominant_frequency(up[:, 0]) == pytest.approx(880, rel=0.02)
    assert len(up) / SAMPLE_RATE == pytest.approx(2.0, abs=0.05)  # the tempo stayed
    assert dominant_frequency(fast[:, 0]) == pytest.approx(440, rel=0.02)
    assert len(fast) / SAMPLE_RATE == pytest.approx(2.0, abs=0.05)  # 3 s at 1.5× lasts 2 s


def test_ffmpeg_bass_boost_high_raises_60_hz_by_6_db_against_2_khz() -> None:
    chain = audio_filter_chain(100, Filters(FilterPreset.BASS_HIGH))
    assert _level(chain, 60) - _level(chain, 2000) >= 6.0
    assert abs(_level(chain, 2000) - _level("", 2000)) < 1.0


def test_ffmpeg_the_limiter_keeps_a_boosted_full_scale_tone_below_full_scale() -> None:
    chain = audio_filter_chain(150, Filters(FilterPreset.BASS_HIGH))
    loud = _run(chain, "sine=f=60:r=48000,aformat=channel_layouts=stereo")  # -8 dBFS in, +12 dB, ×1.5
    assert np.max(np.abs(loud)) <= 0.9


@pytest.mark.parametrize("preset", list(EQ_GAINS_DB), ids=lambda p: p.value)
def test_ffmpeg_each_eq_preset_moves_low_mid_and_high_as_documented(preset: FilterPreset) -> None:
    chain = audio_filter_chain(100, Filters(preset))
    for hz, gain in zip((60, 1000, 10000), EQ_GAINS_DB[preset], strict=True):
        moved = _level(chain, hz) - _level("", hz)
        assert moved == pytest.approx(gain, abs=1.5), (hz, moved)


def test_the_encoder_follows_the_channels_bitrate_within_opus_limits() -> None:
    assert channel_bitrate_kbps(None) == 128  # not connected: discord.py's default
    assert channel_bitrate_kbps(64000) == 64
    assert channel_bitrate_kbps(384000) == 384
    assert channel_bitrate_kbps(1000) == 8
    options = encoder_options().split()
    assert options[options.index("-application") + 1] == "audio"
    assert options[options.index("-frame_duration") + 1] == "20"
    assert options[options.index("-compression_level") + 1] == "10"


def test_required_filters_are_printed_one_a_line_for_the_images_ci() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice_task.audio", "--required-filters"],
        capture_output=True, text=True, timeout=60, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _PYTHONPATH},
    )  # fmt: skip
    assert done.stdout.split() == required_filters()


def test_a_copy_path_seek_lands_on_the_position_not_on_the_cluster_before_it() -> None:
    from voice_task.audio import COPY_SEEK_MARGIN_MS, seek_split  # noqa: PLC0415

    assert seek_split(0, copy=True) == seek_split(0, copy=False) == (0, 0)
    assert seek_split(3_000, copy=True) == (0, 3_000)  # inside the first clusters: drop packets up to it
    assert seek_split(90_000, copy=True) == (90_000 - COPY_SEEK_MARGIN_MS, COPY_SEEK_MARGIN_MS)
    assert seek_split(90_000, copy=False) == (90_000, 0)  # a re-encode decodes to the exact point itself
