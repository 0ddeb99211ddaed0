"""Audio filters: the presets /filter offers, /speed and /pitch, and the one FFmpeg ``-af`` chain.

Everything here is plain data and pure functions, shared by the control plane (the commands, the
now-playing card) and the voice task (which hands ``audio_filter_chain`` to FFmpeg). The chain is
built in this one place, so the voice image's self-check can list every FFmpeg filter it may use
(``required_filters``).

Positions stay in source time. ``Filters.rate`` is how many seconds of the source one second of
wall time plays (speed × the preset's own tempo change): a 3:00 track at 1.5× ends after 2:00.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

#: The rate every chain works at (Discord's Opus is 48 kHz stereo).
SAMPLE_RATE = 48000
SPEED_MIN = 0.5
SPEED_MAX = 2.0
PITCH_MIN = -12
PITCH_MAX = 12
#: atempo takes 0.5–100 per instance; slower tempos are split over two instances.
_ATEMPO_MIN = 0.5
#: The limiter's ceiling (-1 dBFS): a boosted chain never clips, with headroom for Opus's overshoot.
LIMIT = 0.891
#: 8D: one full left-right-left swing takes this long.
EIGHT_D_PERIOD_S = 5.0
#: Karaoke: the side signal (left minus right) in both channels, in phase (the centre, where the
#: voice usually is, cancels out; a mono speaker still hears the rest). Half of each, so it never clips.
KARAOKE_PAN = "pan=stereo|c0=0.5*c0-0.5*c1|c1=0.5*c0-0.5*c1"
#: Bass boost: gains in dB of a low shelf at ``BASS_BOOST_HZ``.
BASS_BOOST_HZ = 110
#: Equalizer bands: (low shelf Hz, peaking centre Hz, high shelf Hz).
EQ_LOW_HZ = 200
EQ_MID_HZ = 1000
EQ_HIGH_HZ = 5000


class FilterPreset(enum.StrEnum):
    OFF = "off"
    BASS_LOW = "bass_low"
    BASS_MEDIUM = "bass_medium"
    BASS_HIGH = "bass_high"
    NIGHTCORE = "nightcore"
    VAPORWAVE = "vaporwave"
    EIGHT_D = "8d"
    KARAOKE = "karaoke"
    EQ_FLAT = "eq_flat"
    EQ_BASS = "eq_bass"
    EQ_TREBLE = "eq_treble"
    EQ_VOCAL = "eq_vocal"


LABELS: dict[FilterPreset, str] = {
    FilterPreset.OFF: "Off",
    FilterPreset.BASS_LOW: "Bass boost (low)",
    FilterPreset.BASS_MEDIUM: "Bass boost (medium)",
    FilterPreset.BASS_HIGH: "Bass boost (high)",
    FilterPreset.NIGHTCORE: "Nightcore",
    FilterPreset.VAPORWAVE: "Vaporwave",
    FilterPreset.EIGHT_D: "8D",
    FilterPreset.KARAOKE: "Karaoke",
    FilterPreset.EQ_FLAT: "EQ: flat",
    FilterPreset.EQ_BASS: "EQ: bass",
    FilterPreset.EQ_TREBLE: "EQ: treble",
    FilterPreset.EQ_VOCAL: "EQ: vocal",
}

#: What each preset does, as the README and /filter's reply say it.
DESCRIPTIONS: dict[FilterPreset, str] = {
    FilterPreset.OFF: "no filter",
    FilterPreset.BASS_LOW: "+4 dB below about 110 Hz, with a limiter",
    FilterPreset.BASS_MEDIUM: "+8 dB below about 110 Hz, with a limiter",
    FilterPreset.BASS_HIGH: "+12 dB below about 110 Hz, with a limiter",
    FilterPreset.NIGHTCORE: "1.25× faster and higher",
    FilterPreset.VAPORWAVE: "0.8× slower and lower",
    FilterPreset.EIGHT_D: f"the sound circles left and right every {EIGHT_D_PERIOD_S:g} s",
    FilterPreset.KARAOKE: "what is mixed in the centre (usually the voice) is removed; the rest plays in mono",
    FilterPreset.EQ_FLAT: "every band at 0 dB (the same as off)",
    FilterPreset.EQ_BASS: "lows +6 dB",
    FilterPreset.EQ_TREBLE: "highs +6 dB",
    FilterPreset.EQ_VOCAL: "lows −4 dB, mids +4 dB, highs −3 dB",
}

_BASS_DB: dict[FilterPreset, int] = {FilterPreset.BASS_LOW: 4, FilterPreset.BASS_MEDIUM: 8, FilterPreset.BASS_HIGH: 12}
#: Equalizer presets: dB for the (low, mid, high) bands.
EQ_GAINS_DB: dict[FilterPreset, tuple[int, int, int]] = {
    FilterPreset.EQ_FLAT: (0, 0, 0),
    FilterPreset.EQ_BASS: (6, 0, 0),
    FilterPreset.EQ_TREBLE: (0, 0, 6),
    FilterPreset.EQ_VOCAL: (-4, 4, -3),
}
#: The presets that change the sample rate (tempo and pitch together).
_RESAMPLE: dict[FilterPreset, float] = {FilterPreset.NIGHTCORE: 1.25, FilterPreset.VAPORWAVE: 0.8}


@dataclass(frozen=True)
class Filters:
    """What a guild asked for: one preset, a speed (tempo, pitch kept) and a pitch in semitones."""

    preset: FilterPreset = FilterPreset.OFF
    speed: float = 1.0
    pitch: int = 0

    @property
    def is_off(self) -> bool:
        """Nothing changes the sound (EQ flat is every band at 0 dB)."""
        return self.preset in (FilterPreset.OFF, FilterPreset.EQ_FLAT) and self.speed == 1.0 and self.pitch == 0

    @property
    def pitch_factor(self) -> float:
        return float(2 ** (self.pitch / 12))

    @property
    def rate(self) -> float:
        """Seconds of the source played per second of wall time."""
        return _RESAMPLE.get(self.preset, 1.0) * self.speed

    def describe(self) -> str:
        """``Nightcore · 1.5× · +3 semitones``, or ``off``."""
        parts = []
        if self.preset is not FilterPreset.OFF:
            parts.append(LABELS[self.preset])
        if self.speed != 1.0:
            parts.append(f"{self.speed:g}× speed")
        if self.pitch:
            parts.append(f"{self.pitch:+d} semitone{'s' if abs(self.pitch) != 1 else ''}")
        return " · ".join(parts) if parts else "off"


def normal_speed(value: float) -> float:
    """``value`` rounded to hundredths (what is stored), or ValueError outside 0.5–2.0."""
    if not math.isfinite(value) or not SPEED_MIN <= value <= SPEED_MAX:
        raise ValueError(f"speed {value!r} is outside {SPEED_MIN}–{SPEED_MAX}")
    return round(value, 2)


def _atempo(tempo: float) -> list[str]:
    if abs(tempo - 1.0) < 1e-9:
        return []
    stages = []
    while tempo < _ATEMPO_MIN:
        stages.append(f"atempo={_ATEMPO_MIN:g}")
        tempo /= _ATEMPO_MIN
    stages.append(f"atempo={tempo:.6g}")
    return stages


def audio_filter_chain(volume: int, filters: Filters) -> str:
    """The FFmpeg ``-af`` value for ``volume`` percent and ``filters``; "" when nothing is needed.

    Order: the input resampled once to 48 kHz (only when a stage needs a known rate), volume, the
    tone shaping (bass, EQ), the stereo effects (karaoke, 8D), rate and tempo (nightcore,
    vaporwave, pitch, speed), and last the limiter after any boost, so no sample ever clips.
    """
    stages: list[str] = []
    preset = filters.preset
    if volume != 100:
        stages.append(f"volume={volume / 100:.2f}")
    boosted = False
    if preset in _BASS_DB:
        stages.append(f"lowshelf=f={BASS_BOOST_HZ}:g={_BASS_DB[preset]}")
        boosted = True
    elif preset in EQ_GAINS_DB:
        low, mid, high = EQ_GAINS_DB[preset]
        if low:
            stages.append(f"lowshelf=f={EQ_LOW_HZ}:g={low}")
        if mid:
            stages.append(f"equalizer=f={EQ_MID_HZ}:t=o:w=1:g={mid}")
        if high:
            stages.append(f"highshelf=f={EQ_HIGH_HZ}:g={high}")
        boosted = max(low, mid, high) > 0
    elif preset is FilterPreset.KARAOKE:
        stages.append(KARAOKE_PAN)
    elif preset is FilterPreset.EIGHT_D:
        stages.append(f"apulsator=hz={1 / EIGHT_D_PERIOD_S:g}:amount=0.8")
    resample = _RESAMPLE.get(preset, 1.0) * filters.pitch_factor
    if abs(resample - 1.0) > 1e-9:
        # asetrate reinterprets the samples at another rate (faster and higher, or slower and
        # lower); aresample brings them back to 48 kHz; atempo then undoes the pitch's tempo change.
        stages.insert(0, f"aresample={SAMPLE_RATE}")
        stages.append(f"asetrate={round(SAMPLE_RATE * resample)}")
        stages.append(f"aresample={SAMPLE_RATE}")
    stages.extend(_atempo(filters.speed / filters.pitch_factor))
    if boosted or volume > 100:
        stages.append(f"alimiter=limit={LIMIT}:attack=5:release=50:level=0")
    return ",".join(stages)


def filter_names(chain: str) -> set[str]:
    """The FFmpeg filter names a chain uses."""
    return {stage.split("=", 1)[0] for stage in chain.split(",") if stage}


def required_filters() -> list[str]:
    """Every FFmpeg filter ``audio_filter_chain`` can use (what the voice image must have)."""
    names: set[str] = set()
    for preset in FilterPreset:
        for speed, pitch, volume in ((1.0, 0, 100), (SPEED_MIN, PITCH_MAX, 150), (SPEED_MAX, PITCH_MIN, 50)):
            names |= filter_names(audio_filter_chain(volume, Filters(preset, speed, pitch)))
    return sorted(names)
