"""Benchmark: the voice task on the loopback Discord emulator, and the CPU of three audio pipelines.

Everything runs in one process on one machine, in this order:

1. CPU per minute of audio (BRIEF §7: our copy path ≤ 25 % of the common pipeline). 60 s of a
   stereo chord with harmonics and noise (the quality figure's signal) is decoded as fast as
   possible (not in real time) from a loopback HTTP server (a separate process, so serving it
   costs neither side), and every packet is read:
   - our copy path: ``voice_task.audio.build_source`` on Opus/WebM at volume 100 (codec copy);
   - our re-encode path: the same on MP3 with no filter (FFmpeg decodes and encodes Opus), at
     volume 50, and with each /filter preset, /speed 1.5 and /pitch +3 (the one ``-af`` chain);
   - the common pipeline (the baseline): ``discord.FFmpegPCMAudio`` + ``PCMVolumeTransformer`` and
     ``discord.opus.Encoder().encode`` in this process, as discord.py's player does for PCM.
   Every encoding pipeline runs at the same bitrate (``--bitrate``, 128 kbps: discord.py's
   default); both encoders' settings are printed (ours: complexity 10, FEC at 5 % expected loss;
   the common one: libopus's default complexity 9, FEC at 15 %). Target: re-encode with no filter
   ≤ 0.8 × the common pipeline.
   Then the quality floor: a chord with harmonics and noise (lossless FLAC) through our re-encode
   path and through the common pipeline, each decoded and compared with the source (aligned,
   error energy in dB of the source's); ours may be at most 1 dB worse.
   CPU = the FFmpeg child's user+sys (``RUSAGE_CHILDREN`` deltas once it is reaped) + this
   process's own (``time.process_time`` deltas: reading, parsing, scaling, encoding). The
   encryption and UDP send that every pipeline shares are left out. The common pipeline needs
   the system libopus: when ``ctypes.util.find_library("opus")`` finds none, the setup installs
   Debian's ``libopus0`` (as root, with apt-get); if it cannot, that pipeline is reported as
   unavailable.
2. Cold start (issue 5): ``python -m voice_task`` started as the local launcher does (launching
   lease, then the process) → the emulator's first audio packet, one fresh guild per sample.
   The task goes on once its own guild's GUILD_CREATE is in, not at discord.py's READY (which
   waits ``guild_ready_timeout`` after the shard's last GUILD_CREATE).
3. A warm task (already connected and idle; idle and alone timeouts set to an hour), then:
   - /play → first packet: a signed interaction through the Chalice app (``chalice.test.Client``)
     → ThreadDispatcher → the /play worker (emulated Discord REST, resolve, enqueue, launcher says
     "already running") → the Store → the running task's next reconcile tick → FFmpeg → UDP.
     Baseline in the same run, interleaved: the worker's final write alone (the entry appended to
     the Store directly) → first packet.
   - skip → the next track's first packet: ``store.skip`` (what /skip writes)
     while a tone plays; queued tones alternate 440/660/880/550 Hz. The next track's start is the
     first packet heard since the skip whose own 20 ms frame is nearest the next tone and whose
     next 200 ms decode to it: the audio is decoded as one stream, so this holds whether the change
     left silence between the tracks or none (the next track already open). So the figure ends at
     the right track's first audible packet — never at the old track's trailing packets or the
     silence frames between them.
     The same again with media that takes 150 ms to its first byte (a CDN), and a baseline: skips
     with no wake hint, which the task sees at its next poll (what a lost hint costs).
   - queue controls (``--controls``, issue 18): play now of a prefetched track and of one that was
     not, and /skipto to a far track, from 150 ms media, each from its store write to the named
     tone's first packet, against the skip and the /play budgets; baseline: a plain skip, same run.
   - track to track at a natural end: ``--changes`` tones back to back from 150 ms media; the
     silence a listener heard at each change (from the last sample of one tone above -40 dBFS to
     the first of the next, placed by packet arrival), less the files' own quiet there (baseline,
     same run: the files' Opus packets decoded as sent, encoder pre-skip and end padding included).
   - filter changes mid-track (``--filter-changes``): nightcore on and off on one 440 Hz tone,
     from the ``set_filters`` write (what /filter makes, with its wake hint) to the first packet
     of the new sound (550 or 440 Hz), against the skip budget.
   - packet gaps during steady playback (copy path), 1 s after the track started.
   - peak RSS (``VmHWM``) of the voice task process after all of the above, and of its FFmpeg child.
   - reconnect gaps: ``--faults`` voice closes of each kind mid-track (4006: the task opens a fresh
     voice session; 4015: it resumes the same one), each the silence the libdave listener heard:
     from the last packet above -40 dBFS before the close to the first after it. Baseline in the
     same run: the longest packet gap in steady playback just before.

Every figure is what the emulator's libdave listener decrypted under DAVE (required, as on Discord).

The task runs with the default reconcile tick (``Settings.tick_s``), so a store write waits on
average half a tick before the task sees it. Figures are reported against BRIEF §7 targets and
never fail the run; a phase that cannot measure prints why and the script exits 1 (except a
libopus that cannot be installed here: that pipeline is reported unavailable, with a note).

    .venv/bin/python -m scripts.bench.voice [--plays 10] [--skips 20] [--changes 20] [--cold 3] [--gap-seconds 30]
        [--cpu-runs 3] [--faults 20] [--controls 20] [--filter-changes 20] [--bitrate 128] [--quick]
    .venv/bin/python -m scripts.bench.voice --only cpu       # the CPU rows and the quality figure only
    .venv/bin/python -m scripts.bench.voice --only filters   # those and the filter changes
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes.util
import itertools
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a file: make ``scripts.bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.bench._common import add_source_paths, median, ms, percentile, print_header, print_reproduce, table

if TYPE_CHECKING:
    import discord

    from tests.support.emulator import DiscordEmulator, GuildHandle, RtpPacket
    from tests.support.media import MediaServer
    from tests.support.voice_stack import VoiceStack, VoiceTaskProcess
    from timmybot.sources.models import StreamInfo

_log = logging.getLogger(__name__)

DEFAULT_BITRATE_KBPS = 128  # discord.opus.Encoder's default: the common pipeline as bots run it
ONLY_CHOICES = ("cpu", "filters")

# BRIEF §7 targets.
PLAY_TARGET_S = 1.5
CDN_FIRST_BYTE_S = 0.150  # a CDN's time to first byte: the media server waits this long in some phases
SKIP_P95_TARGET_S = 0.25  # from the store write, with the wake hint the api sends
COLD_TARGET_S = 5.0
GAPS_WITHIN_TARGET = 0.99
CPU_RATIO_TARGET = 0.25

FRAME_S = 0.020
CPU_SOURCE_SECONDS = 60.0
SKIP_TONES_HZ = (440, 660, 880, 550)  # neighbours differ by ≥ 20 %: a 200 ms window tells them apart
SKIP_TRACK_SECONDS = 8.0
PLAY_TRACK_SECONDS = 3.0
PLAY_TONE_HZ = 740
BASELINE_TONE_HZ = 587
COLD_TONE_HZ = 523
VERIFY_PACKETS = 10  # 200 ms of audio decoded to tell which tone a run carries
FREQ_TOLERANCE = 0.03
IDENTIFY_SPACING_S = 5.5  # Discord allows one IDENTIFY per 5 s (max_concurrency 1): never measure a wait for it
HOUR_S = "3600"
JITTER_SEED = 20240607
RECONNECT_P95_TARGET_S = 1.0
DAVE_RECOVERY_TARGET_S = 10.0  # a corrupt DAVE commit: heard again within 10 s
RECONNECT_SPACING_S = 1.0  # playback between two voice closes, after the 3 s each gap is judged over
AUDIBLE_DBFS = -40.0


class PhaseError(Exception):
    """A phase could not measure (its figure is reported as unavailable)."""


# ---------------------------------------------------------------------------------------- results
@dataclass
class Report:
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def row(self, figure: str, samples: str, result: str, target: str = "", verdict: str = "") -> None:
        self.rows.append([figure, samples, result, target, verdict])

    def unavailable(self, figure: str, reason: str, *, failure: bool = True) -> None:
        """A figure that could not be measured; ``failure=False`` for a known gap (no libopus here)."""
        self.rows.append([figure, "-", f"unavailable: {reason}", "", ""])
        if failure:
            self.failed.append(figure)


def _verdict(ok: bool) -> str:
    return "within target" if ok else "OVER target"


def _latency_row(report: Report, figure: str, samples: Sequence[float], target: str, ok: bool | None) -> None:
    result = f"p50 {ms(percentile(samples, 50))}, p95 {ms(percentile(samples, 95))}, max {ms(max(samples))}"
    report.row(figure, str(len(samples)), result, target, "" if ok is None else _verdict(ok))


@contextlib.contextmanager
def phase(report: Report, figure: str) -> Iterator[None]:
    """Run one phase; an error becomes an "unavailable" row instead of ending the run."""
    started = time.monotonic()
    try:
        yield
    except Exception as error:
        _log.debug("phase %s failed", figure, exc_info=True)
        report.unavailable(figure, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        print(f"[{figure}] failed:\n{traceback.format_exc()[-3000:]}", file=sys.stderr)
    finally:
        _log.info("phase %s took %.1f s", figure, time.monotonic() - started)


# ---------------------------------------------------------------------------------------- libopus
def ensure_libopus() -> str | None:
    """Make the system libopus loadable; returns None when it is, else why it is not."""
    if ctypes.util.find_library("opus"):
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "libopus not found, and installing Debian's libopus0 needs root and apt-get"
    print("setup: libopus not found; installing Debian's libopus0 (apt-get)…", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "libopus0"]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` timed out"
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.strip()[-300:]}"
    if not ctypes.util.find_library("opus"):
        return "libopus0 was installed but ctypes still cannot find libopus"
    return None


# ---------------------------------------------------------------------------------------- CPU
@dataclass(frozen=True)
class CpuRun:
    ffmpeg_s: float
    python_s: float
    packets: int

    @property
    def per_audio_minute(self) -> float:
        audio_minutes = self.packets * FRAME_S / 60
        return (self.ffmpeg_s + self.python_s) / audio_minutes if audio_minutes else float("nan")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap(source: discord.AudioSource) -> None:
    """Wait for the source's FFmpeg (discord.py kills and polls it) so RUSAGE_CHILDREN counts it."""
    inner = getattr(source, "original", source)
    process = getattr(inner, "_process", None)
    if isinstance(process, subprocess.Popen):
        process.wait(timeout=10)


def _measure(make: Callable[[], tuple[discord.AudioSource, Callable[[bytes], object] | None]]) -> CpuRun:
    """CPU of building ``make()``'s source, reading every frame (and encoding it, if asked), cleanup."""
    children0, own0 = _children_cpu_s(), time.process_time()
    source, encode = make()
    packets = 0
    try:
        while frame := source.read():
            if encode is not None:
                encode(frame)
            packets += 1
    finally:
        source.cleanup()
        _reap(source)
    return CpuRun(ffmpeg_s=_children_cpu_s() - children0, python_s=time.process_time() - own0, packets=packets)


@contextlib.contextmanager
def http_file_server(directory: Path) -> Iterator[str]:
    """``python -m http.server`` on 127.0.0.1 in a child process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        words = line.split()
        if "port" not in words:
            raise PhaseError(f"the loopback file server did not start: {line!r}")
        port = int(words[words.index("port") + 1])
        from timmybot import netguard  # noqa: PLC0415

        netguard.configure(allow=[f"127.0.0.1:{port}"])  # the loopback media this bench plays: a named port
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            netguard.revoke(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: The chord of the quality figure: A minor (A3, C4, E4), five harmonics each at 1/k, and noise.
#: It is also what the CPU figures play.
QUALITY_CHORD_HZ = (220.0, 261.63, 329.63)
QUALITY_SECONDS = 10.0
QUALITY_FLOOR_DB = 1.0  # ours may be at most this much worse than the common pipeline
REENCODE_RATIO_TARGET = 0.8
COMMON_EXPECTED_LOSS = 0.15  # discord.opus.Encoder's default, as VoiceClient builds it


#: Each note's level in the left and the right channel: panned apart, as a mix spreads instruments.
QUALITY_PAN = ((1.0, 0.4), (0.7, 0.7), (0.4, 1.0))


def _chord_expression(channel: int) -> str:
    partials = "+".join(
        f"{0.03 * pan[channel] / k:.4f}*sin(2*PI*{hz * k:g}*t)"
        for hz, pan in zip(QUALITY_CHORD_HZ, QUALITY_PAN, strict=True)
        for k in range(1, 6)
    )
    return f"{partials}+0.01*(2*random({channel})-1)"


def _common_settings(bitrate_kbps: int) -> str:
    import discord  # noqa: PLC0415

    encoder = discord.opus.Encoder(bitrate=bitrate_kbps)
    complexity = ctypes.c_int32()
    discord.opus._lib.opus_encoder_ctl(encoder._state, 4011, ctypes.byref(complexity))  # OPUS_GET_COMPLEXITY
    return (f"common: FFmpeg decodes to s16le 48 kHz stereo, PCMVolumeTransformer and discord.opus.Encoder in "
            f"Python: {bitrate_kbps} kbps, 20 ms frames, application audio, complexity {complexity.value} "
            f"(libopus's default), FEC at {COMMON_EXPECTED_LOSS:.0%} expected loss, signal auto")  # fmt: skip


def _our_settings(bitrate_kbps: int) -> str:
    from voice_task.audio import EXPECTED_LOSS_PERCENT, OPUS_COMPLEXITY  # noqa: PLC0415

    return (f"ours (re-encode): FFmpeg decodes and resamples once to 48 kHz stereo, runs the -af chain (none "
            f"without a filter) and encodes with libopus: {bitrate_kbps} kbps (the voice channel's in the task), "
            f"20 ms frames, application audio, complexity {OPUS_COMPLEXITY}, "
            f"FEC at {EXPECTED_LOSS_PERCENT} % expected loss")  # fmt: skip


def cpu_pipelines(report: Report, runs: int, opus_problem: str | None, *, bitrate_kbps: int) -> None:
    import discord  # noqa: PLC0415 - the heavy import only once the header is printed

    from tests.support.media import cache_dir, signal_file  # noqa: PLC0415
    from timmybot.filters import FilterPreset, Filters  # noqa: PLC0415
    from timmybot.sources.models import StreamInfo  # noqa: PLC0415
    from voice_task.audio import StderrTail, build_source, ffmpeg_executable  # noqa: PLC0415

    # Music-like stereo (the quality figure's chord, its noise different in each channel): a mono
    # tone would flatter the presets that cancel or move the centre (karaoke, 8D).
    chord = f"{_chord_expression(0)}|{_chord_expression(1)}"
    webm = signal_file("chord", chord, CPU_SOURCE_SECONDS, "webm")
    mp3 = signal_file("chord", chord, CPU_SOURCE_SECONDS, "mp3")
    executable = ffmpeg_executable()

    with http_file_server(cache_dir()) as base:
        opus_stream = StreamInfo(stream_url=f"{base}/{webm.name}", codec="opus", container="webm", local=True)
        mp3_stream = StreamInfo(stream_url=f"{base}/{mp3.name}", codec="mp3", container="mp3", local=True)

        def ours(stream: StreamInfo, volume: int,
                 filters: Filters | None = None) -> Callable[[], tuple[discord.AudioSource, None]]:  # fmt: skip
            def make() -> tuple[discord.AudioSource, None]:
                source = build_source(stream, position_ms=0, volume=volume, executable=executable,
                                      stderr=StderrTail(), filters=filters, bitrate_kbps=bitrate_kbps)  # fmt: skip
                return source, None

            return make

        def common() -> tuple[discord.AudioSource, Callable[[bytes], object]]:
            pcm = discord.FFmpegPCMAudio(
                mp3_stream.stream_url,
                executable=executable,
                before_options=mp3_stream.ffmpeg_before_options(),
                options="-vn",
            )
            encoder = discord.opus.Encoder(bitrate=bitrate_kbps)  # what VoiceClient builds: FEC, 15 % expected loss
            return discord.PCMVolumeTransformer(pcm, volume=0.5), lambda frame: encoder.encode(
                frame, encoder.SAMPLES_PER_FRAME
            )

        labels = {
            "copy": "CPU / audio min: our copy path (Opus/WebM, vol 100)",
            "re-encode": "CPU / audio min: our re-encode, no filter (MP3, vol 100)",
            "re-encode-50": "CPU / audio min: our re-encode (MP3, vol 50)",
        }
        pipelines: dict[str, Callable[[], tuple[discord.AudioSource, Callable[[bytes], object] | None]]] = {
            "copy": ours(opus_stream, 100),
            "re-encode": ours(mp3_stream, 100),
            "re-encode-50": ours(mp3_stream, 50),
        }
        extra = {f"preset {p.value}": Filters(p) for p in FilterPreset if p is not FilterPreset.OFF}
        extra |= {"speed 1.5": Filters(speed=1.5), "pitch +3": Filters(pitch=3)}
        for name, filters in extra.items():
            labels[name] = f"  our re-encode with {filters.describe()} (MP3, vol 100)"
            pipelines[name] = ours(mp3_stream, 100, filters)
        labels["common"] = "CPU / audio min: common pipeline (baseline, vol 50)"
        if opus_problem is None:
            pipelines["common"] = common
        samples: dict[str, list[CpuRun]] = {name: [] for name in pipelines}
        for name, make in pipelines.items():  # one untimed pass each: page cache, imports, libopus load
            if name not in extra:  # the presets read the same file with the same FFmpeg as the re-encode
                _measure(make)
        for _ in range(runs):  # interleaved, so a noisy moment hits every pipeline alike
            for name, make in pipelines.items():
                samples[name].append(_measure(make))

    medians = {
        name: sorted(runs_of, key=lambda run: run.per_audio_minute)[len(runs_of) // 2]
        for name, runs_of in samples.items()
    }
    per_minute = {name: mid.per_audio_minute for name, mid in medians.items()}
    for name, label in labels.items():
        if name not in medians:
            report.unavailable(label, opus_problem or "not measured", failure=opus_problem is None)
            continue
        mid = medians[name]
        audio_s = mid.packets * FRAME_S
        ratio = ""
        if "common" in per_minute and name != "common":
            ratio = f"; {mid.per_audio_minute / per_minute['common']:.2f}× common"
        report.row(
            label,
            str(len(samples[name])),
            f"{mid.per_audio_minute:.3f} s (median; ffmpeg {mid.ffmpeg_s:.3f} s + python {mid.python_s:.3f} s "
            f"for {audio_s:.1f} s of audio){ratio}",
        )
    report.notes.append(_our_settings(bitrate_kbps))
    if opus_problem is None:
        report.notes.append(_common_settings(bitrate_kbps))
    if "common" in per_minute:
        common_s = per_minute["common"]
        ratio = per_minute["copy"] / common_s
        report.row(
            "ratio copy / common", "", f"{ratio:.3f}", f"≤ {CPU_RATIO_TARGET:g}", _verdict(ratio <= CPU_RATIO_TARGET)
        )
        ratio = per_minute["re-encode"] / common_s
        report.row("ratio re-encode (no filter) / common", "", f"{ratio:.3f}", f"≤ {REENCODE_RATIO_TARGET:g}",
                   _verdict(ratio <= REENCODE_RATIO_TARGET))  # fmt: skip
        report.row("ratio re-encode (vol 50) / common (vol 50)", "", f"{per_minute['re-encode-50'] / common_s:.3f}",
                   "(none)")  # fmt: skip
    else:
        report.unavailable("ratio copy / common", "no common pipeline", failure=opus_problem is None)


def _collect(source: discord.AudioSource, encode: Callable[[bytes], bytes] | None) -> list[bytes]:
    """Every Opus packet of ``source`` (the Ogg header packets left out), encoded first if asked."""
    packets: list[bytes] = []
    try:
        while frame := source.read():
            if encode is not None:
                packets.append(encode(frame))
            elif not frame.startswith((b"OpusHead", b"OpusTags")):
                packets.append(frame)
    finally:
        source.cleanup()
        _reap(source)
    return packets


def _error_db(decoded: Any, reference: Any) -> float:
    """The decoded output's error against the source, in dB relative to the source's energy (lower is
    better), after aligning the two (the encoders' look-ahead delays the output by a few ms)."""
    import numpy as np  # noqa: PLC0415

    mono_out, mono_ref = decoded.mean(axis=1), reference.mean(axis=1)
    size = min(len(mono_out), len(mono_ref))
    spectrum = np.fft.rfft(mono_out[:size], 2 * size) * np.conj(np.fft.rfft(mono_ref[:size], 2 * size))
    correlation = np.fft.irfft(spectrum)[:4800]  # the output lags by at most 100 ms
    lag = int(np.argmax(correlation))
    edge = 24000  # half a second at each end: start-up and end padding are not the music
    out = decoded[lag + edge : lag + size - edge]
    ref = reference[edge : edge + len(out)]
    return float(10 * np.log10(np.sum((out - ref) ** 2) / np.sum(ref**2)))


def quality(report: Report, opus_problem: str | None, *, bitrate_kbps: int) -> None:
    """The quality floor: a chord with harmonics and noise (FLAC, lossless) through our re-encode path
    and through the common pipeline at the same bitrate, both decoded and compared with the source."""
    figure = "quality: decoded error vs source (chord + harmonics + noise)"
    if opus_problem is not None:
        report.unavailable(figure, opus_problem, failure=False)
        return
    import discord  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from tests.support.audio import decode_opus  # noqa: PLC0415
    from tests.support.media import cache_dir, signal_file  # noqa: PLC0415
    from timmybot.sources.models import StreamInfo  # noqa: PLC0415
    from voice_task.audio import StderrTail, build_source, ffmpeg_executable  # noqa: PLC0415

    flac = signal_file("chord", f"{_chord_expression(0)}|{_chord_expression(1)}", QUALITY_SECONDS, "flac")
    executable = ffmpeg_executable()
    raw = subprocess.run([executable, "-v", "error", "-i", str(flac), "-f", "f32le", "-ac", "2", "-ar", "48000", "-"],
                         capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    reference = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(-1, 2)
    with http_file_server(cache_dir()) as base:
        stream = StreamInfo(stream_url=f"{base}/{flac.name}", codec="flac", container="flac", local=True)
        ours = _collect(build_source(stream, position_ms=0, volume=100, executable=executable, stderr=StderrTail(),
                                     bitrate_kbps=bitrate_kbps), None)  # fmt: skip
        pcm = discord.FFmpegPCMAudio(stream.stream_url, executable=executable,
                                     before_options=stream.ffmpeg_before_options(), options="-vn")  # fmt: skip
        encoder = discord.opus.Encoder(bitrate=bitrate_kbps)
        common = _collect(discord.PCMVolumeTransformer(pcm, volume=1.0),
                          lambda frame: encoder.encode(frame, encoder.SAMPLES_PER_FRAME))  # fmt: skip
    ours_db = _error_db(decode_opus(ours, channels=2), reference)
    common_db = _error_db(decode_opus(common, channels=2), reference)
    worse = ours_db - common_db
    report.row(figure, "1 each", f"ours {ours_db:.2f} dB, common {common_db:.2f} dB (ours {worse:+.2f} dB)",
               f"ours ≤ common + {QUALITY_FLOOR_DB:g} dB", _verdict(worse <= QUALITY_FLOOR_DB))  # fmt: skip


# ---------------------------------------------------------------------------------------- voice helpers
def _deadline_loop(timeout: float, interval: float = 0.02) -> Iterator[float]:
    """Yields the time left until ``timeout`` seconds from now, sleeping ``interval`` between rounds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        yield left
        time.sleep(interval)


def _add_listener(emulator: DiscordEmulator, guild: GuildHandle) -> int:
    user = emulator.add_member(guild.id, "listener")
    emulator.set_member_voice(guild.id, user, guild.voice_channel_id)
    return user


def _respect_identify_spacing(emulator: DiscordEmulator) -> None:
    """Start no task within 5 s of the last IDENTIFY, so a cold start never includes a budget wait."""
    identifies = emulator.identifies()
    if identifies:
        time.sleep(max(0.0, identifies[-1].time + IDENTIFY_SPACING_S - time.monotonic()))


def _wait_idle(stack: VoiceStack, guild_id: str, timeout: float = 15.0) -> None:
    """Until nothing is playing or queued and no packet (silence included) arrived for 200 ms."""
    for _ in _deadline_loop(timeout, 0.05):
        record = stack.record(guild_id)
        if record.actual.now_playing is None and not record.queue:
            quiet_since = time.monotonic() - 0.2
            if not stack.emulator.packets(int(guild_id), since=quiet_since, include_silence=True):
                return
    log = stack.tasks[-1].log[-4000:] if stack.tasks else ""
    record = stack.record(guild_id)
    recent = len(stack.emulator.packets(int(guild_id), since=time.monotonic() - 1.0, include_silence=True))
    playing = record.actual.now_playing.entry_id if record.actual.now_playing else None
    raise PhaseError(f"the task did not go idle within {timeout} s (now playing {playing}, queue {record.queue}, "
                     f"{recent} packets in the last second); log:\n{log}")  # fmt: skip


def _wait_playing(stack: VoiceStack, guild_id: str, entry_id: str, timeout: float = 15.0) -> None:
    for _ in _deadline_loop(timeout, 0.02):
        playing = stack.record(guild_id).actual.now_playing
        if playing is not None and playing.entry_id == entry_id:
            return
    raise PhaseError(f"entry {entry_id} did not start within {timeout} s")


class TrackStartFinder:
    """Finds the first packet of audio that carries a given tone (see the module doc).

    The audio heard since the skip is decoded as one stream. The track starts at the first packet
    whose own 20 ms frame is nearer the tone than any other queued tone and whose next 200 ms
    decode to it. That holds whether the change left silence between the tracks or, as with a
    track already opened ahead, none at all.
    """

    def __init__(self, freq_hz: float) -> None:
        self.freq_hz = freq_hz
        self._decoded = 0  # audio packets the last decode covered

    def find(self, packets: Sequence[RtpPacket]) -> RtpPacket | None:
        from tests.support.audio import OPUS_SILENCE, decode_opus, dominant_frequency, opus_packet_samples  # noqa: PLC0415

        audio = [p for p in packets if not p.is_silence and p.opus and p.opus != OPUS_SILENCE]
        if len(audio) < VERIFY_PACKETS or len(audio) - self._decoded < VERIFY_PACKETS // 2:
            return None
        self._decoded = len(audio)
        samples = decode_opus([p.opus for p in audio])
        offsets = [0]
        for packet in audio:
            offsets.append(offsets[-1] + opus_packet_samples(packet.opus))
        for index in range(len(audio) - VERIFY_PACKETS + 1):
            frame = samples[offsets[index] : offsets[index + 1]]
            if not self._nearest_is_tone(dominant_frequency(frame)):
                continue
            window = samples[offsets[index] : offsets[index + VERIFY_PACKETS]]
            if abs(dominant_frequency(window) - self.freq_hz) <= self.freq_hz * FREQ_TOLERANCE:
                return audio[index]
        return None

    def _nearest_is_tone(self, hz: float) -> bool:
        if hz <= 0:
            return False
        nearest = min({*SKIP_TONES_HZ, self.freq_hz}, key=lambda tone: abs(tone - hz))
        return nearest == self.freq_hz


def _peak_memory_kib(pid: int) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` (KiB) from /proc; empty when the process is gone."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def _ffmpeg_children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for thread in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (thread / "children").read_text().split()]
    found: list[int] = []
    for child in children:
        with contextlib.suppress(OSError):
            if "ffmpeg" in Path(f"/proc/{child}/comm").read_text():
                found.append(child)
    return found


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------- voice phases
def cold_starts(report: Report, stack: VoiceStack, runs: int) -> None:
    figure = "cold start → first packet"
    with phase(report, figure):
        samples: list[float] = []
        for index in range(runs):
            guild = stack.emulator.add_guild(f"Cold {index}")
            _add_listener(stack.emulator, guild)
            gid = str(guild.id)
            stack.enqueue(
                gid,
                stack.tone_entry(COLD_TONE_HZ, PLAY_TRACK_SECONDS),
                voice_channel_id=str(guild.voice_channel_id),
                text_channel_id=str(guild.text_channel_id),
            )
            _respect_identify_spacing(stack.emulator)
            started = time.monotonic()
            task = stack.launch(gid)  # the local launcher's steps: a launching lease, then the process
            samples.append(stack.wait_for_audio(gid, since=started, timeout=30, packets=5) - started)
            stack.store.stop(gid)
            task.wait(timeout=20)
        report.row(
            f"{figure} (python -m voice_task)",
            str(len(samples)),
            f"p50 {ms(median(samples))}, max {ms(max(samples))}",
            f"≤ {COLD_TARGET_S:g} s",
            _verdict(max(samples) <= COLD_TARGET_S),
        )


@dataclass
class WarmGuild:
    stack: VoiceStack
    guild: GuildHandle
    listener: int
    task: VoiceTaskProcess
    rng: random.Random = field(default_factory=lambda: random.Random(JITTER_SEED))

    @property
    def gid(self) -> str:
        return str(self.guild.id)

    def random_pause(self) -> None:
        """Sleep a uniform fraction of one reconcile tick, so a request lands at a random point of the
        task's polling cycle. Without it, waiting for the task's own idle write would phase-lock the
        next request to just before its next tick, and the figures would come out too good."""
        time.sleep(self.rng.uniform(0.0, self.stack.settings.tick_s))

    def enqueue(self, *entries: Any) -> None:
        self.stack.enqueue(
            self.gid,
            *entries,
            voice_channel_id=str(self.guild.voice_channel_id),
            text_channel_id=str(self.guild.text_channel_id),
        )


def start_warm_task(stack: VoiceStack) -> WarmGuild:
    guild = stack.emulator.add_guild("Warm")
    listener = _add_listener(stack.emulator, guild)
    gid = str(guild.id)
    stack.store.set_channels(
        gid, voice_channel_id=str(guild.voice_channel_id), text_channel_id=str(guild.text_channel_id)
    )
    _respect_identify_spacing(stack.emulator)
    task = stack.launch(gid)
    for _ in _deadline_loop(30, 0.05):
        if stack.emulator.bot_voice_channel(guild.id) == guild.voice_channel_id:
            return WarmGuild(stack, guild, listener, task)
    raise PhaseError(f"the warm task did not join voice within 30 s; log:\n{task.log[-2000:]}")


@contextlib.contextmanager
def signed_play_api(warm: WarmGuild, tmp: Path, answers: list[float]) -> Iterator[Callable[[str], float]]:
    """The api app (``chalice.test.Client``, ThreadDispatcher, local launcher) over the task's store.

    Yields ``post(query)``: sends a signed /play from the listener and returns its monotonic start;
    how long the api took to answer (deferred, type 5) is appended to ``answers``.
    """
    from app import app  # noqa: PLC0415 - after add_source_paths
    from chalice.test import Client  # noqa: PLC0415

    from chalicelib.bootstrap import app_services, bootstrap  # noqa: PLC0415
    from tests.support.signing import Signer, command, next_interaction_id  # noqa: PLC0415
    from timmybot.config import Settings  # noqa: PLC0415

    stack, emulator = warm.stack, warm.stack.emulator
    os.environ["SSL_CERT_FILE"] = str(emulator.ca_file)  # the worker's Discord REST client trusts the emulator
    signer = Signer()
    environ = dict(stack.env)
    environ.update(
        TIMMYBOT_DISCORD_PUBLIC_KEY=signer.public_key_hex,
        TIMMYBOT_ALLOWLIST_EXTRA=warm.gid,
        TIMMYBOT_DISPATCHER="thread",
        TIMMYBOT_LAUNCHER="local",
        TIMMYBOT_DATA_DIR=str(tmp),
        TIMMYBOT_VOICE_TASK_LOG_DIR=str(tmp),
    )
    services = bootstrap(Settings.from_env(environ), in_lambda=False)

    with app_services.override(services), Client(app) as client:

        def post(query: str) -> float:
            payload = command("play", {"query": query}, guild_id=warm.gid, user_id=str(warm.listener),
                              interaction_id=next_interaction_id())  # fmt: skip
            payload.update(
                application_id=str(emulator.application_id),
                channel_id=str(warm.guild.text_channel_id),
                token=f"bench-{payload['id']}",
            )
            body = json.dumps(payload).encode()
            headers = signer.headers(body)
            started = time.monotonic()
            response = client.http.post("/interactions", headers=headers, body=body)
            answered = time.monotonic() - started
            answer = response.json_body
            if response.status_code != 200 or answer.get("type") != 5:
                raise PhaseError(f"/play was not deferred: {response.status_code} {answer}")
            answers.append(answered)
            return started

        try:
            yield post
        finally:
            drain = getattr(services.dispatcher, "drain", None)
            if callable(drain):
                drain(30)
            shutdown = getattr(services.dispatcher, "shutdown", None)
            if callable(shutdown):
                shutdown()


def warm_play(report: Report, warm: WarmGuild, tmp: Path, samples: int) -> None:
    figure = "/play → first packet, warm task"
    baseline_figure = "baseline: store enqueue → first packet, warm task"
    stack, gid = warm.stack, warm.gid
    answers: list[float] = []
    with phase(report, figure), signed_play_api(warm, tmp, answers) as post_play:
        play_path = _tone(PLAY_TONE_HZ)
        baseline_entries = [stack.tone_entry(BASELINE_TONE_HZ, PLAY_TRACK_SECONDS) for _ in range(samples)]

        def play_url(index: int) -> str:
            name = f"bench-play-{index}.webm"  # a new URL each time: the worker resolves it (no cache hit)
            stack.media.add(name, play_path)
            return stack.media.url_for(name)

        def first_packet(started: float) -> float:
            first = stack.wait_for_audio(gid, since=started, timeout=20, packets=5) - started
            stack.store.skip(gid)  # back to idle for the next sample
            _wait_idle(stack, gid)
            return first

        # Untimed warm-up: the api's and the worker's first /play import and build their clients.
        _wait_idle(stack, gid)
        first_packet(post_play(play_url(0)))
        answers.clear()
        played: list[float] = []
        baseline: list[float] = []
        for index in range(samples):
            url = play_url(index + 1)
            warm.random_pause()
            played.append(first_packet(post_play(url)))
            warm.random_pause()
            started = time.monotonic()
            warm.enqueue(baseline_entries[index])
            baseline.append(first_packet(started))
        _latency_row(report, figure, played, f"≤ {PLAY_TARGET_S:g} s (p95)", percentile(played, 95) <= PLAY_TARGET_S)
        _latency_row(report, "  of which the api's deferred answer (type 5)", answers, "", None)
        _latency_row(report, baseline_figure, baseline, "", None)


def _tone(freq_hz: int, seconds: float = PLAY_TRACK_SECONDS) -> Path:
    from tests.support.media import tone_file  # noqa: PLC0415

    return tone_file(freq_hz, seconds, "webm")


def skip_latency(report: Report, warm: WarmGuild, skips: int) -> None:
    """Skips with wake hints (as the api sends them), from instant loopback media and from media
    that takes 150 ms to its first byte; then the baseline: the same without hints, where the task
    sees the write only at its next poll (what a lost hint costs)."""
    figure = "skip → next track's first packet (wake hint)"
    slow_figure = "  the same, media 150 ms to first byte"
    baseline_figure = "baseline: skip seen at the next poll (no hint)"
    stack = warm.stack
    target = f"p95 ≤ {SKIP_P95_TARGET_S * 1000:g} ms"
    with phase(report, figure):
        samples = _skips(warm, skips)
        stack.media.set_first_byte_delay(CDN_FIRST_BYTE_S)
        try:
            slow = _skips(warm, skips)
        finally:
            stack.media.set_first_byte_delay(0.0)
        hook, stack.store.on_guild_write = stack.store.on_guild_write, None
        try:
            baseline = _skips(warm, max(3, skips // 4))
        finally:
            stack.store.on_guild_write = hook
        _latency_row(report, figure, samples, target, percentile(samples, 95) <= SKIP_P95_TARGET_S)
        _latency_row(report, slow_figure, slow, target, percentile(slow, 95) <= SKIP_P95_TARGET_S)
        _latency_row(report, baseline_figure, baseline, "", None)


def _skips(warm: WarmGuild, skips: int) -> list[float]:
    """Seconds from each skip's store write to the next tone's first packet heard."""
    stack, gid = warm.stack, warm.gid
    _wait_idle(stack, gid)
    tones = [SKIP_TONES_HZ[i % len(SKIP_TONES_HZ)] for i in range(skips + 1)]
    entries = [stack.tone_entry(freq, SKIP_TRACK_SECONDS) for freq in tones]
    warm.enqueue(*entries)
    samples: list[float] = []
    for index in range(skips):
        _wait_playing(stack, gid, entries[index].entry_id)
        stack.wait_for_audio(gid, since=time.monotonic(), timeout=10, packets=25)  # 0.5 s of it heard
        finder = TrackStartFinder(tones[index + 1])
        warm.random_pause()
        skipped = time.monotonic()
        stack.store.skip(gid)
        start: RtpPacket | None = None
        for _ in _deadline_loop(10, 0.05):
            start = finder.find(stack.emulator.packets(int(gid), since=skipped, include_silence=True))
            if start is not None:
                break
        if start is None:
            raise PhaseError(f"no {tones[index + 1]} Hz heard within 10 s of skip {index + 1}; "
                             f"log:\n{warm.task.log[-4000:]}")  # fmt: skip
        samples.append(start.time - skipped)
    stack.store.skip(gid)
    _wait_idle(stack, gid)
    return samples


CONTROL_CURRENT_HZ, CONTROL_NEXT_HZ, CONTROL_NEW_HZ, CONTROL_FAR_HZ = 440, 660, 880, 550
SKIPTO_FAR_POSITION = 10  # /skipto past the prefetched head, to a track nobody resolved yet


def queue_controls(report: Report, warm: WarmGuild, samples: int) -> None:
    """Play now and /skipto (issue 18, Build 7), all from media 150 ms to its first byte, each from
    its store write (the one conditional update the api makes, with the wake hint it sends) to the
    first packet of the track it names:
      - play now of a prefetched track: the queue's next track (which the task resolved as it
        started the current one), played now as a new entry (``insert_entries(now_play=True)``);
      - play now of a track that was not prefetched (a new URL);
      - /skipto to position 10 of 12 (``Store.skip_to``), a track nobody resolved yet.
    Baseline, interleaved in the same run: a plain skip to the prefetched next track."""
    from timmybot.models import QueueEntry  # noqa: PLC0415

    stack, gid = warm.stack, warm.gid
    figures = {
        "prefetched": "play now, prefetched track (media 150 ms to first byte)",
        "new": "play now, not prefetched (media 150 ms to first byte)",
        "far": f"/skipto {SKIPTO_FAR_POSITION}, not prefetched (media 150 ms to first byte)",
        "skip": "baseline: skip to the prefetched next track, same media",
    }
    with phase(report, figures["prefetched"]):
        stack.media.set_first_byte_delay(CDN_FIRST_BYTE_S)
        measured: dict[str, list[float]] = {kind: [] for kind in figures}
        try:
            for index in range(samples):
                for kind in figures:
                    current = stack.tone_entry(CONTROL_CURRENT_HZ, SKIP_TRACK_SECONDS)
                    after = [stack.tone_entry(CONTROL_NEXT_HZ, SKIP_TRACK_SECONDS)]
                    if kind == "far":
                        after += [stack.tone_entry(CONTROL_NEXT_HZ, 3) for _ in range(SKIPTO_FAR_POSITION - 2)]
                        after += [stack.tone_entry(CONTROL_FAR_HZ, 3), stack.tone_entry(CONTROL_NEXT_HZ, 3)]
                    _wait_idle(stack, gid)
                    warm.enqueue(current, *after)
                    _wait_playing(stack, gid, current.entry_id)
                    stack.wait_for_audio(gid, since=time.monotonic(), timeout=10, packets=25)  # prefetch done

                    def write(kind: str = kind, after: list[QueueEntry] = after, index: int = index) -> int:
                        if kind == "skip":
                            stack.store.skip(gid)
                            return CONTROL_NEXT_HZ
                        if kind == "far":
                            stack.store.skip_to(gid, SKIPTO_FAR_POSITION)
                            return CONTROL_FAR_HZ
                        if kind == "prefetched":
                            track, hz = after[0].track, CONTROL_NEXT_HZ
                        else:
                            track, hz = stack.tone_entry(CONTROL_NEW_HZ, SKIP_TRACK_SECONDS).track, CONTROL_NEW_HZ
                        entry = QueueEntry(entry_id=f"bench-now-{kind}-{index}", track=track,
                                           requester_id="1", added_at=time.time())  # fmt: skip
                        stack.store.insert_entries(gid, [entry], cap=stack.settings.queue_cap, now_play=True)
                        return hz

                    measured[kind].append(_change_heard(warm, write))
                    stack.store.clear_queue(gid)
                    stack.store.skip(gid)
        finally:
            stack.media.set_first_byte_delay(0.0)
        skip_target = f"p95 ≤ {SKIP_P95_TARGET_S * 1000:g} ms (the skip budget)"
        play_target = f"≤ {PLAY_TARGET_S:g} s (p95, the /play budget)"
        budgets = [("prefetched", SKIP_P95_TARGET_S, skip_target), ("new", PLAY_TARGET_S, play_target),
                   ("far", PLAY_TARGET_S, play_target)]  # fmt: skip
        for kind, budget, target in budgets:
            values = measured[kind]
            _latency_row(report, figures[kind], values, target, percentile(values, 95) <= budget)
        _latency_row(report, figures["skip"], measured["skip"], "", None)


FILTER_TONE_HZ, NIGHTCORE_HZ = 440, 550  # nightcore plays a 440 Hz tone at 440 × 1.25


def filter_change_latency(report: Report, warm: WarmGuild, samples: int) -> None:
    """A filter changed mid-track (``set_filters``, what /filter writes, with its wake hint), from
    the store write to the first packet of the new sound: nightcore on (550 Hz heard) and off
    again (440 Hz), alternately, on one long 440 Hz tone. The task restarts FFmpeg at the position
    heard; its budget is the skip's."""
    from timmybot.filters import FilterPreset, Filters  # noqa: PLC0415

    figure = "filter change → new sound's first packet (wake hint)"
    stack, gid = warm.stack, warm.gid
    with phase(report, figure):
        _wait_idle(stack, gid)
        seconds = max(30.0, samples * 2.5)
        warm.enqueue(stack.tone_entry(FILTER_TONE_HZ, seconds))
        stack.wait_for_audio(gid, since=time.monotonic(), timeout=10, packets=25)
        measured: list[float] = []
        for index in range(samples):
            nightcore = index % 2 == 0

            def write(on: bool = nightcore) -> int:
                stack.store.set_filters(gid, Filters(FilterPreset.NIGHTCORE) if on else Filters())
                return NIGHTCORE_HZ if on else FILTER_TONE_HZ

            measured.append(_change_heard(warm, write))
            time.sleep(0.5)  # a moment of the new sound before the next change
        stack.store.set_filters(gid, Filters())
        stack.store.skip(gid)
        _wait_idle(stack, gid)
        target = f"p95 ≤ {SKIP_P95_TARGET_S * 1000:g} ms (the skip budget)"
        _latency_row(report, figure, measured, target, percentile(measured, 95) <= SKIP_P95_TARGET_S)


def _change_heard(warm: WarmGuild, write: Callable[[], int]) -> float:
    """Seconds from ``write()`` (which returns the tone it asks for) to that tone's first packet."""
    warm.random_pause()
    started = time.monotonic()
    finder = TrackStartFinder(write())
    for _ in _deadline_loop(10, 0.05):
        start = finder.find(warm.stack.emulator.packets(int(warm.gid), since=started, include_silence=True))
        if start is not None:
            return start.time - started
    raise PhaseError(f"no {finder.freq_hz:g} Hz heard within 10 s of a control; log:\n{warm.task.log[-4000:]}")


TRACK_TONES_HZ = (440, 660, 880, 550)
TRACK_CHANGE_SECONDS = 3.0  # each tone of the natural-end run
TRACK_GAP_P95_TARGET_S = 0.060
AUDIBLE_AMPLITUDE = 10 ** (AUDIBLE_DBFS / 20)


def _audible_edges(samples: Any) -> tuple[int, int] | None:
    """Indices of the first and the last sample above ``AUDIBLE_DBFS``; None when all are quiet."""
    import numpy as np  # noqa: PLC0415

    loud = np.flatnonzero(np.abs(samples) > AUDIBLE_AMPLITUDE)
    return (int(loud[0]), int(loud[-1])) if len(loud) else None


def file_silence(path: Path) -> tuple[float, float]:
    """The quiet a listener hears at the file's start and at its end (seconds): its Opus packets,
    as they go out, decoded with nothing trimmed (a Discord client does not know the encoder's
    pre-skip or the last packet's padding, so those count as the file's own)."""
    import io  # noqa: PLC0415

    from discord.oggparse import OggStream  # noqa: PLC0415

    from tests.support.audio import SAMPLE_RATE, decode_opus  # noqa: PLC0415
    from tests.support.media import ffmpeg_exe  # noqa: PLC0415

    ogg = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path), "-map", "0:a:0",
         "-c:a", "copy", "-f", "ogg", "pipe:1"],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    packets = [p for p in OggStream(io.BytesIO(ogg)).iter_packets() if not p.startswith((b"OpusHead", b"OpusTags"))]
    samples = decode_opus(packets)
    edges = _audible_edges(samples)
    if edges is None:
        raise PhaseError(f"{path.name} is silent")
    return edges[0] / SAMPLE_RATE, (len(samples) - 1 - edges[1]) / SAMPLE_RATE


def silences_between_tones(packets: Sequence[RtpPacket], tones: Sequence[int]) -> list[float]:
    """The quiet a listener heard at each change from ``tones[i]`` to ``tones[i + 1]``: from the
    last sample of the one above ``AUDIBLE_DBFS`` to the first of the next (packet arrival times
    place the samples). Each audio packet is told by its 20 ms frame's dominant frequency."""
    from tests.support.audio import (  # noqa: PLC0415
        OPUS_SILENCE,
        SAMPLE_RATE,
        decode_opus,
        dominant_frequency,
        opus_packet_samples,
    )

    audio = [p for p in packets if not p.is_silence and p.opus and p.opus != OPUS_SILENCE]
    samples = decode_opus([p.opus for p in audio])
    offsets = list(itertools.accumulate((opus_packet_samples(p.opus) for p in audio), initial=0))
    heard: list[tuple[int, float, float]] = []  # (tone index, first audible time, last audible time)
    for packet, start, stop in zip(audio, offsets, offsets[1:], strict=False):
        frame = samples[start:stop]
        edges = _audible_edges(frame)
        if edges is None:
            continue
        hz = dominant_frequency(frame)
        tone = min(range(len(TRACK_TONES_HZ)), key=lambda i: abs(TRACK_TONES_HZ[i] - hz))
        first, last = packet.time + edges[0] / SAMPLE_RATE, packet.time + (edges[1] + 1) / SAMPLE_RATE
        heard.append((tone, first, last))
    silences: list[float] = []
    position = 0
    for index in range(len(tones) - 1):
        a, b = TRACK_TONES_HZ.index(tones[index]), TRACK_TONES_HZ.index(tones[index + 1])
        while position < len(heard) and heard[position][0] != b:
            position += 1  # the rest of tone a (and any stray frame) until tone b is heard
        if position == 0 or position >= len(heard):
            raise PhaseError(f"change {index + 1} ({tones[index]} → {tones[index + 1]} Hz) was not heard")
        before = max((h for h in heard[:position] if h[0] == a), key=lambda h: h[2], default=None)
        if before is None:
            raise PhaseError(f"the {tones[index]} Hz tone before change {index + 1} was not heard")
        silences.append(max(0.0, heard[position][1] - before[2]))
        while position < len(heard) and heard[position][0] == b:
            position += 1
        position -= 1  # tone b is the next change's "before"
    return silences


def track_changes(report: Report, warm: WarmGuild, changes: int) -> None:
    """Tones played back to back to their natural ends, from media that takes 150 ms to answer:
    the silence heard at each change beyond the files' own quiet (the baseline, same run)."""
    from tests.support.media import tone_file  # noqa: PLC0415

    figure = "track to track, natural end (silence beyond the files')"
    stack, gid = warm.stack, warm.gid
    with phase(report, figure):
        _wait_idle(stack, gid)
        tones = [TRACK_TONES_HZ[i % len(TRACK_TONES_HZ)] for i in range(changes + 1)]
        entries = [stack.tone_entry(freq, TRACK_CHANGE_SECONDS) for freq in tones]
        stack.media.set_first_byte_delay(CDN_FIRST_BYTE_S)
        try:
            started = time.monotonic()
            warm.enqueue(*entries)
            _wait_playing(stack, gid, entries[-1].entry_id, timeout=(changes + 2) * (TRACK_CHANGE_SECONDS + 2))
            _wait_idle(stack, gid, timeout=TRACK_CHANGE_SECONDS + 10)
        finally:
            stack.media.set_first_byte_delay(0.0)
        heard = silences_between_tones(stack.emulator.packets(int(gid), since=started, include_silence=True), tones)
        own = {freq: file_silence(tone_file(freq, TRACK_CHANGE_SECONDS, "webm")) for freq in set(tones)}
        files = [own[a][1] + own[b][0] for a, b in itertools.pairwise(tones)]
        beyond = [max(0.0, h - f) for h, f in zip(heard, files, strict=True)]
        _latency_row(report, figure, beyond, f"p95 ≤ {TRACK_GAP_P95_TARGET_S * 1000:g} ms",
                     percentile(beyond, 95) <= TRACK_GAP_P95_TARGET_S)  # fmt: skip
        _latency_row(report, "  baseline: the files' own quiet at each change", files, "", None)
        report.notes.append(f"track changes: media answered after {CDN_FIRST_BYTE_S * 1000:g} ms; "
                            f"silence heard in all (files' included) p95 {ms(percentile(heard, 95))}")  # fmt: skip


def packet_gaps_and_memory(report: Report, warm: WarmGuild, seconds: float) -> None:
    from tests.support.audio import FRAME_MS, GAP_TOLERANCE_MS, gap_stats  # noqa: PLC0415

    figure = "packet gaps, steady playback (copy path)"
    stack, gid = warm.stack, warm.gid
    ffmpeg_kib: list[int] = []
    with phase(report, figure):
        _wait_idle(stack, gid)
        entry = stack.tone_entry(440, seconds + 4)
        queued = time.monotonic()
        warm.enqueue(entry)
        begin = stack.wait_for_audio(gid, since=queued, timeout=20, packets=5) + 1.0
        # FFmpeg copies faster than real time and exits once the pipe holds the rest: sample it mid-way.
        time.sleep(max(0.0, begin + seconds / 2 - time.monotonic()))
        for pid in _ffmpeg_children(warm.task.process.pid):
            peak = _peak_memory_kib(pid).get("VmHWM")  # absent for a child already exited (a zombie)
            if peak is not None:
                ffmpeg_kib.append(peak)
        time.sleep(max(0.0, begin + seconds - time.monotonic()))
        stats = gap_stats([p.time for p in stack.packets(gid, since=begin, until=begin + seconds)])
        if stats.count < 2:
            raise PhaseError("no packets during the steady window")
        report.row(
            figure,
            str(stats.count),
            f"p50 {stats.p50_ms:.2f} ms, p95 {stats.p95_ms:.2f} ms, p99 {stats.p99_ms:.2f} ms, "
            f"max {stats.max_ms:.2f} ms, {100 * stats.within_tolerance:.1f}% within "
            f"{FRAME_MS:g}±{GAP_TOLERANCE_MS:g} ms",
            f"{100 * GAPS_WITHIN_TARGET:g}% within",
            _verdict(stats.within_tolerance >= GAPS_WITHIN_TARGET),
        )
    with phase(report, "peak RSS of the voice task"):
        memory = _peak_memory_kib(warm.task.process.pid)
        if "VmHWM" not in memory:
            raise PhaseError("the voice task process is gone")
        child = f"; its FFmpeg child (copy path) {_mib(max(ffmpeg_kib))}" if ffmpeg_kib else ""
        report.row(
            "peak RSS (VmHWM) of the voice task",
            "1",
            f"{_mib(memory['VmHWM'])} (RSS now {_mib(memory.get('VmRSS', 0))}){child}",
        )


def audible_gap(packets: Sequence[RtpPacket], fault_at: float, *, settle_s: float = 3.0) -> float | None:
    """The longest silence a listener heard after ``fault_at`` (within ``settle_s``): the longest
    run between two packets above ``AUDIBLE_DBFS`` (listener-decoded audio), less one frame. Frames
    already in flight when the fault hit arrive after it, so the silence is not simply "first
    packet after the fault minus last before"."""
    from tests.support.audio import packet_levels  # noqa: PLC0415

    audible = [t for t, level in packet_levels(packets) if level > AUDIBLE_DBFS]
    spans = [b - a for a, b in itertools.pairwise(audible) if fault_at <= b <= fault_at + settle_s]
    if not audible or audible[-1] < fault_at + settle_s:
        return None  # audio has not been back for long enough to judge
    return max(0.0, max(spans, default=0.0) - FRAME_S)


def reconnect_gaps(report: Report, warm: WarmGuild, faults: int) -> None:
    """Voice faults mid-track (4006: a fresh session; 4015: a resume; op 31: a corrupt DAVE commit),
    the silence a listener hears."""
    stack, gid = warm.stack, warm.gid
    emulator = stack.emulator
    with phase(report, "reconnect gap"):
        _wait_idle(stack, gid)
        steady_from = time.monotonic()
        # Each close takes the spacing, the 3.2 s judged over and up to a poll: the tone outlasts them all.
        warm.enqueue(stack.tone_entry(440, 3 * faults * (RECONNECT_SPACING_S + 5.0) + 30))
        stack.wait_for_audio(gid, since=steady_from, timeout=20, packets=50)
        time.sleep(1.0)
        baseline_from = time.monotonic()
        time.sleep(RECONNECT_SPACING_S)
        steady = [p.time for p in stack.packets(gid, since=baseline_from)]
        baseline = max((b - a for a, b in itertools.pairwise(steady)), default=0.0)
        # 4006: a fresh voice session; 4015: a resume; op 31: a corrupt DAVE commit, answered with
        # op 31 and a new group (its target: heard again within 10 s)
        for code, target_s in ((4006, RECONNECT_P95_TARGET_S), (4015, RECONNECT_P95_TARGET_S),
                               ("op 31", DAVE_RECOVERY_TARGET_S)):  # fmt: skip
            samples: list[float] = []
            for _ in range(faults):
                warm.random_pause()
                fault_at = time.monotonic()
                injected = (emulator.inject_invalid_dave(warm.guild.id) if code == "op 31"
                            else emulator.close_voice(warm.guild.id, int(code)))  # fmt: skip
                if not injected:
                    raise PhaseError(f"no voice connection to fault with {code}")
                gap = None
                time.sleep(3.2)
                for _ in _deadline_loop(20, 0.5):
                    gap = audible_gap(stack.packets(gid, since=fault_at - 1.0), fault_at)
                    if gap is not None:
                        break
                if gap is None:
                    heard = len(stack.packets(gid, since=fault_at))
                    raise PhaseError(f"no audio for 3 s within 20 s of a {code} close ({heard} packets since); "
                                     f"log:\n{warm.task.log[-3000:]}")  # fmt: skip
                samples.append(gap)
                time.sleep(RECONNECT_SPACING_S)
            ok = percentile(samples, 95) <= target_s
            _latency_row(report, f"reconnect gap after {code} (silence heard)", samples,
                         f"p95 ≤ {target_s:g} s", ok)  # fmt: skip
        report.notes.append(f"reconnect baseline: the longest packet gap in {RECONNECT_SPACING_S:g} s of steady "
                            f"playback before the faults was {ms(baseline)}")  # fmt: skip
        stack.store.skip(gid)
        _wait_idle(stack, gid)


def voice_phases(report: Report, *, cold: int, plays: int, skips: int, changes: int, gap_seconds: float,
                 faults: int, controls: int = 0, filter_changes: int = 0) -> None:  # fmt: skip
    from tests.support.emulator import DiscordEmulator  # noqa: PLC0415
    from tests.support.media import MediaServer  # noqa: PLC0415
    from tests.support.voice_stack import VoiceStack  # noqa: PLC0415
    from timmybot.config import Settings  # noqa: PLC0415

    with contextlib.ExitStack() as cleanup:
        emulator: DiscordEmulator = cleanup.enter_context(DiscordEmulator())
        media: MediaServer = cleanup.enter_context(MediaServer())
        tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="timmybot-bench-voice-")))
        stack = VoiceStack(
            emulator,
            media,
            tmp,
            TIMMYBOT_TICK_S=str(Settings().tick_s),  # the shipped default, not the tests' faster tick
            TIMMYBOT_IDLE_TIMEOUT_S=HOUR_S,
            TIMMYBOT_ALONE_TIMEOUT_S=HOUR_S,
            TIMMYBOT_DATA_DIR=str(tmp),
        )
        cleanup.callback(stack.close)
        report.notes.append(f"voice task reconcile tick: {stack.settings.tick_s:g} s (the default)")

        if cold:
            cold_starts(report, stack, cold)
        warm: WarmGuild | None = None
        with phase(report, "warm task start"):
            warm = start_warm_task(stack)
        if warm is None:
            return
        if plays:
            warm_play(report, warm, tmp, plays)
        if skips:
            skip_latency(report, warm, skips)
        if controls:
            queue_controls(report, warm, controls)
        if filter_changes:
            filter_change_latency(report, warm, filter_changes)
        if changes:
            track_changes(report, warm, changes)
        if gap_seconds:
            packet_gaps_and_memory(report, warm, gap_seconds)
        if faults:
            reconnect_gaps(report, warm, faults)
        with phase(report, "warm task stop"):
            stack.store.stop(warm.gid)
            code = warm.task.wait(timeout=20)
            if code != 0:
                raise PhaseError(f"the warm task exited {code}")


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=10, help="/play samples (and as many baseline samples)")
    parser.add_argument("--skips", type=int, default=20, help="skip samples")
    parser.add_argument("--changes", type=int, default=20, help="track changes at a natural end")
    parser.add_argument("--cold", type=int, default=3, help="cold starts of python -m voice_task")
    parser.add_argument("--gap-seconds", type=float, default=30.0, help="steady playback measured for packet gaps")
    parser.add_argument("--cpu-runs", type=int, default=3, help="timed passes per CPU pipeline (median reported)")
    parser.add_argument("--faults", type=int, default=20, help="faults per kind (4006, 4015, op 31); 0 skips them")
    parser.add_argument("--controls", type=int, default=20,
                        help="samples of each queue control (play now, /skipto far); 0 skips them")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke sizes: --plays 2 --skips 3 --changes 3 "
                        "--cold 1 --gap-seconds 5 --cpu-runs 1 --faults 2 --controls 2")  # fmt: skip
    parser.add_argument("--filter-changes", type=int, default=20,
                        help="filter changes mid-track (nightcore on and off); 0 skips them")  # fmt: skip
    parser.add_argument("--bitrate", type=int, default=DEFAULT_BITRATE_KBPS,
                        help="kbps for every re-encoding pipeline (ours and the common one alike)")  # fmt: skip
    parser.add_argument("--only", choices=ONLY_CHOICES,
                        help="cpu: only the CPU per audio minute and the quality figure; "
                        "filters: those and the mid-track filter changes")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.plays, args.skips, args.cold, args.gap_seconds, args.cpu_runs, args.faults = 2, 3, 1, 5.0, 1, 2
        args.changes, args.controls, args.filter_changes = 3, 2, 3
    if args.controls < 0 or args.filter_changes < 0:
        parser.error("--controls and --filter-changes must be 0 or more")
    if min(args.plays, args.skips, args.changes, args.cpu_runs) < 1 or args.cold < 0 or args.gap_seconds < 1:
        parser.error("sizes must be positive (--cold may be 0)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    add_source_paths()
    started = time.monotonic()

    sizes = (
        f"--plays {args.plays} --skips {args.skips} --changes {args.changes} --cold {args.cold} "
        f"--gap-seconds {args.gap_seconds:g} "
        f"--cpu-runs {args.cpu_runs} --faults {args.faults} --controls {args.controls} "
        f"--filter-changes {args.filter_changes} --bitrate {args.bitrate}"
    )
    if args.only:
        sizes = f"--only {args.only} --cpu-runs {args.cpu_runs} --bitrate {args.bitrate}"
        if args.only == "filters":
            sizes += f" --filter-changes {args.filter_changes}"
    print_header("voice: warm /play, skip, packet gaps, memory, cold start, CPU per pipeline", sizes)
    report = Report()
    opus_problem = ensure_libopus()
    if opus_problem is not None:
        print(f"note: the common pipeline is unavailable: {opus_problem}")
    with phase(report, "CPU / audio min"):
        cpu_pipelines(report, args.cpu_runs, opus_problem, bitrate_kbps=args.bitrate)
    with phase(report, "quality"):
        quality(report, opus_problem, bitrate_kbps=args.bitrate)
    if args.only == "filters":
        voice_phases(report, cold=0, plays=0, skips=0, changes=0, gap_seconds=0, faults=0, controls=0,
                     filter_changes=args.filter_changes)  # fmt: skip
    elif args.only is None:
        voice_phases(report, cold=args.cold, plays=args.plays, skips=args.skips, changes=args.changes,
                     gap_seconds=args.gap_seconds, faults=args.faults, controls=args.controls,
                     filter_changes=args.filter_changes)  # fmt: skip

    print()
    table([["figure", "N", "result", "target", "verdict"], *report.rows])
    print()
    for note in report.notes:
        print(f"note: {note}")
    print(f"total time: {time.monotonic() - started:.1f} s")
    print_reproduce(f".venv/bin/python -m scripts.bench.voice {sizes}",
                    "python3 scripts/dev.py bench" + (" --quick" if args.quick else ""))  # fmt: skip
    if report.failed:
        print(f"FAIL: not measured: {', '.join(report.failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
