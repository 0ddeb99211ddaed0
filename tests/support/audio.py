"""Analysis of the Opus audio a bot sent: decode, dominant frequency, level, packet pacing.

Frames are wrapped in an Ogg Opus stream (RFC 7845) and decoded to 48 kHz mono PCM by the ffmpeg
binary bundled with imageio-ffmpeg. Discord's 3-byte silence frames are skipped.

Usage::

    result = analyse(emulator.packets(guild_id, since=t0))
    assert abs(result.dominant_hz - 440) < 9
"""

from __future__ import annotations

import math
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tests.support.media import SWEEP_HZ_PER_S, SWEEP_START_HZ, ffmpeg_exe

SAMPLE_RATE = 48_000
OPUS_SILENCE = b"\xf8\xff\xfe"
FRAME_MS = 20.0
#: A packet gap counts as on time when within FRAME_MS ± this many milliseconds.
GAP_TOLERANCE_MS = 5.0


class PacketLike(Protocol):
    @property
    def time(self) -> float: ...

    @property
    def opus(self) -> bytes: ...


# Ogg Opus writing ------------------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _ogg_page(packet: bytes, *, granule: int, serial: int, sequence: int, flags: int) -> bytes:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + packet)
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return bytes(page)


def opus_packet_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frame = (480, 960, 1920, 2880)[config % 4]
    elif config < 16:
        frame = (480, 960)[config % 2]
    else:
        frame = (120, 240, 480, 960)[config % 4]
    code = toc & 0x3
    count = 1 if code == 0 else 2 if code in (1, 2) else (packet[1] & 0x3F if len(packet) > 1 else 0)
    return frame * count


def ogg_opus_stream(frames: Sequence[bytes], *, channels: int = 2, serial: int = 0x7153) -> bytes:
    """Wrap raw Opus packets in an Ogg Opus stream, one packet per page."""
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, 0, SAMPLE_RATE, 0, 0)
    vendor = b"timmybot-tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [
        _ogg_page(head, granule=0, serial=serial, sequence=0, flags=0x02),
        _ogg_page(tags, granule=0, serial=serial, sequence=1, flags=0),
    ]
    granule = 0
    for index, frame in enumerate(frames):
        granule += opus_packet_samples(frame)
        last = index == len(frames) - 1
        pages.append(_ogg_page(frame, granule=granule, serial=serial, sequence=index + 2, flags=0x04 if last else 0))
    return b"".join(pages)


def decode_opus(frames: Sequence[bytes], *, channels: int = 1) -> npt.NDArray[np.float64]:
    """Decode Opus packets to 48 kHz samples in [-1, 1] (silence frames skipped): mono by default,
    else an array of shape (samples, channels)."""
    audio = [f for f in frames if f and f != OPUS_SILENCE]
    if not audio:
        return np.zeros(0) if channels == 1 else np.zeros((0, channels))
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "ogg", "-i", "pipe:0",
         "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"],
        input=ogg_opus_stream(audio), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode the Opus stream: {proc.stderr.decode(errors='replace')}")
    samples = np.frombuffer(proc.stdout, dtype="<i2").astype(np.float64) / 32768.0
    return samples if channels == 1 else samples.reshape(-1, channels)


# measurements ----------------------------------------------------------------------------------
def dominant_frequency(samples: npt.NDArray[np.float64], rate: int = SAMPLE_RATE) -> float:
    """Frequency (Hz) of the strongest spectral peak above 20 Hz; 0.0 for silence/too-short input."""
    if len(samples) < 256 or not np.any(samples):
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1.0 / rate)
    spectrum[freqs < 20.0] = 0.0
    peak = int(np.argmax(spectrum))
    if 0 < peak < len(spectrum) - 1:
        # Quadratic interpolation of the log magnitude around the peak.
        a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom else 0.0
        return float((peak + offset) * rate / len(samples))
    return float(freqs[peak])


def tone_level_dbfs(samples: npt.NDArray[np.float64], hz: float, rate: int = SAMPLE_RATE) -> float:
    """The peak level (dBFS) of the sinusoid at ``hz`` in ``samples``, however many other tones
    are mixed in (a Hann-windowed projection on that one frequency; a -20 dBFS tone reads -20)."""
    if len(samples) < 256:
        return -math.inf
    window = np.hanning(len(samples))
    phase = np.exp(-2j * np.pi * hz * np.arange(len(samples)) / rate)
    amplitude = 2 * abs(np.sum(samples * window * phase)) / np.sum(window)
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


def rms_dbfs(samples: npt.NDArray[np.float64]) -> float:
    """RMS level in dBFS (a full-scale square wave = 0 dBFS, a full-scale sine ≈ -3 dBFS)."""
    if len(samples) == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


@dataclass(frozen=True)
class GapStats:
    """Distribution of the time between consecutive packets, in milliseconds."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    within_tolerance: float  # fraction of gaps within FRAME_MS ± GAP_TOLERANCE_MS

    def describe(self) -> str:
        return (
            f"{self.count} gaps: p50 {self.p50_ms:.2f} ms, p95 {self.p95_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"max {self.max_ms:.2f} ms, {100 * self.within_tolerance:.1f}% within "
            f"{FRAME_MS:g}±{GAP_TOLERANCE_MS:g} ms"
        )


def gap_stats(times: Sequence[float]) -> GapStats:
    if len(times) < 2:
        return GapStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    gaps = np.diff(np.asarray(sorted(times), dtype=np.float64)) * 1000.0
    p50, p95, p99 = np.percentile(gaps, [50, 95, 99])
    within = float(np.mean(np.abs(gaps - FRAME_MS) <= GAP_TOLERANCE_MS))
    return GapStats(len(gaps), float(p50), float(p95), float(p99), float(gaps.max()), within)


@dataclass(frozen=True)
class AudioAnalysis:
    packet_count: int  # non-silence packets
    duration_s: float  # decoded audio length
    dominant_hz: float
    rms_dbfs: float
    gaps: GapStats


def analyse(packets: Sequence[PacketLike]) -> AudioAnalysis:
    """Decode the packets' audio and measure it (silence frames are left out of every figure)."""
    audio = [p for p in packets if p.opus != OPUS_SILENCE]
    samples = decode_opus([p.opus for p in audio])
    return AudioAnalysis(
        packet_count=len(audio),
        duration_s=len(samples) / SAMPLE_RATE,
        dominant_hz=dominant_frequency(samples),
        rms_dbfs=rms_dbfs(samples),
        gaps=gap_stats([p.time for p in audio]),
    )


def frequency_timeline(packets: Sequence[PacketLike], window_s: float = 0.5) -> list[tuple[float, float]]:
    """Dominant frequency per window of arrival time: ``[(seconds since first packet, hz), ...]``.

    Makes a skip visible as the frequency changing and a pause as a missing window.
    """
    audio = [p for p in packets if p.opus != OPUS_SILENCE]
    if not audio:
        return []
    start = audio[0].time
    buckets: dict[int, list[bytes]] = {}
    for packet in audio:
        buckets.setdefault(int((packet.time - start) / window_s), []).append(packet.opus)
    return [(index * window_s, dominant_frequency(decode_opus(frames))) for index, frames in sorted(buckets.items())]


@dataclass(frozen=True)
class Window:
    """A run of consecutive packets: when its first one arrived and the frequency it carries."""

    time: float
    hz: float
    packets: int


def windows(packets: Sequence[PacketLike], frames: int = 10) -> list[Window]:
    """The dominant frequency of each run of ``frames`` packets (200 ms by default), decoded once.

    Packets are decoded as one stream, so a window is what a listener heard in that span, whatever
    the gaps between arrivals.
    """
    audio = [p for p in packets if p.opus != OPUS_SILENCE]
    if not audio:
        return []
    samples = decode_opus([p.opus for p in audio])
    offsets = np.cumsum([0] + [opus_packet_samples(p.opus) for p in audio])
    result = []
    for start in range(0, len(audio) - frames + 1, frames):
        chunk = samples[int(offsets[start]) : int(offsets[start + frames])]
        result.append(Window(audio[start].time, dominant_frequency(chunk), frames))
    return result


def sweep_position(hz: float) -> float:
    """Where in a ``media.sweep_file`` a frequency is heard, in seconds."""
    return (hz - SWEEP_START_HZ) / SWEEP_HZ_PER_S


def packet_levels(packets: Sequence[PacketLike]) -> list[tuple[float, float]]:
    """``(arrival time, dBFS)`` of each audio packet, from one decode of the whole run."""
    audio = [p for p in packets if p.opus and p.opus != OPUS_SILENCE]
    if not audio:
        return []
    samples = decode_opus([p.opus for p in audio])
    offsets = np.cumsum([0] + [opus_packet_samples(p.opus) for p in audio])
    return [(p.time, rms_dbfs(samples[int(a) : int(b)])) for p, a, b in zip(audio, offsets, offsets[1:], strict=False)]
