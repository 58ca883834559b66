"""The embedded default demo song, synthesised in code (no audio files shipped).

A 120 BPM A-minor song (Am F C G) with drums, bass, a wide detuned pad and a lead
melody, in three sections: a 4-bar intro without drums, an 8-bar verse and a louder
8-bar chorus; it loops for longer lengths. It is left **unmastered on purpose** so the
mastering chain has something to fix:

* quiet: about -22 LUFS integrated, sample peak about -6.5 dBFS (never above -3.5 dBFS);
* dull top: pad and lead are low-passed, hats are soft and band-limited;
* muddy low-mid: pad voicings double the bass an octave or two up and the bus has a
  resonant bump near 300 Hz;
* dynamic: unlimited drum transients (peak-to-loudness ratio about 15.5 dB) and a
  loudness range of about 6.5 LU.

Kick, snare, bass and lead sit near the centre; pad voices, hats, the lead echo and a
small reverb are spread, for an L/R correlation of about 0.75.

Everything is deterministic for a given ``(sample_rate, seconds, seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import signal

from .errors import ParameterError, SampleRateError
from .params import check_range

DEMO_SAMPLE_RATE = 44100
DEMO_SECONDS = 40.0

_MIN_RATE_HZ = 22050
_MAX_RATE_HZ = 192000
_MIN_SECONDS = 1.0
_MAX_SECONDS = 600.0

_BPM = 120.0
_STEPS_PER_BAR = 16  # sixteenth notes
_STEP_S = 60.0 / _BPM / 4.0
_BAR_S = _STEP_S * _STEPS_PER_BAR
_INTRO_BARS = 4
_VERSE_BARS = 8
_CHORUS_BARS = 8
_SONG_BARS = _INTRO_BARS + _VERSE_BARS + _CHORUS_BARS  # 20 bars = 40 s
_FADE_OUT_S = 0.010
_PEAK_GUARD = 10.0 ** (-3.5 / 20.0)
_OUTPUT_GAIN = 0.173  # sets the integrated loudness near -22 LUFS
_TAIL_S = 3.0  # longest note tail past its bar
_TABLE_SIZE = 4096  # wavetable length (power of two: wrapping is a bit mask)
_REVERB_WET = 0.1

# One chord per bar, in MIDI note numbers. The low notes (87-131 Hz) double the bass
# an octave or two up: their harmonics are the low-mid build-up.
_BASS_ROOTS = (33, 29, 36, 31)  # A1 F1 C2 G1
_PAD_CHORDS = (
    (45, 57, 60, 64),  # Am: A2 A3 C4 E4
    (41, 57, 60, 65),  # F:  F2 A3 C4 F4
    (48, 55, 60, 64),  # C:  C3 G3 C4 E4
    (43, 55, 59, 62),  # G:  G2 G3 B3 D4
)

# Lead melodies as (start step, length in steps, MIDI note) per bar.
_VERSE_LEAD = (
    ((0, 4, 69), (6, 2, 72), (8, 6, 76)),
    ((0, 4, 72), (6, 2, 69), (8, 6, 65)),
    ((0, 4, 67), (6, 2, 72), (8, 6, 76)),
    ((0, 4, 74), (6, 2, 71), (8, 6, 67)),
)
_CHORUS_LEAD = (
    ((0, 4, 76), (4, 2, 72), (6, 2, 74), (8, 4, 76), (12, 4, 69)),
    ((0, 6, 72), (6, 2, 69), (8, 4, 72), (12, 4, 74)),
    ((0, 4, 76), (4, 4, 79), (8, 2, 76), (10, 2, 74), (12, 4, 72)),
    ((0, 8, 74), (8, 4, 71), (12, 4, 67)),
    ((0, 4, 76), (4, 2, 72), (6, 2, 74), (8, 4, 76), (12, 4, 79)),
    ((0, 6, 81), (6, 2, 79), (8, 4, 77), (12, 4, 76)),
    ((0, 4, 76), (4, 4, 74), (8, 4, 72), (12, 4, 74)),
    ((0, 8, 71), (8, 8, 74)),
)

# Per-section levels (linear) of each instrument; the chorus is the loud part.
_LEVELS = {
    "intro": {"pad": 0.65, "bass": 0.5, "drums": 0.0, "lead": 0.0},
    "verse": {"pad": 0.6, "bass": 0.8, "drums": 0.8, "lead": 0.5},
    "chorus": {"pad": 0.8, "bass": 1.0, "drums": 1.0, "lead": 0.75},
}
_RANDOM_PER_BAR = 128  # humanisation draws per bar, fixed so shorter renders are prefixes


def demo_mix(
    sample_rate: int = DEMO_SAMPLE_RATE, *, seconds: float = DEMO_SECONDS, seed: int = 2026
) -> np.ndarray:
    """Return the demo song as float32 ``(2, n)`` with ``n = round(seconds * sample_rate)``.

    ``sample_rate`` 22050-192000 Hz; ``seconds`` 1-600 (the 40-s song loops or is cut,
    the last 10 ms fade out); ``seed`` >= 0 drives noise and humanisation.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise SampleRateError(f"sample_rate must be an integer in Hz, got {sample_rate!r}")
    sr = int(sample_rate)
    if not _MIN_RATE_HZ <= sr <= _MAX_RATE_HZ:
        raise SampleRateError(f"sample_rate = {sr} Hz is outside {_MIN_RATE_HZ} to {_MAX_RATE_HZ} Hz")
    check_range("seconds", seconds, _MIN_SECONDS, _MAX_SECONDS)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")

    rng = np.random.default_rng(int(seed))
    n = int(round(float(seconds) * sr))
    bar_n = _BAR_S * sr
    n_bars = int(math.ceil(n / bar_n))
    buf = np.zeros((2, n + int(_TAIL_S * sr) + 1), dtype=np.float64)

    kit = _Kit(sr, rng)
    pads = [_pad_chord(chord, sr) for chord in _PAD_CHORDS]
    pads_mono = [p[0] + p[1] for p in pads]
    snares_mono = [h[0] + h[1] for h in kit.snares]
    lead_bus = np.zeros_like(buf)
    send = np.zeros(buf.shape[1])  # mono reverb send
    bass_cache: dict[tuple[int, float], np.ndarray] = {}
    lead_cache: dict[tuple[int, int], np.ndarray] = {}

    def at(bar: int, step: float) -> int:
        return int(round((bar * _STEPS_PER_BAR + step) * _STEP_S * sr))

    for bar in range(n_bars):
        song_bar = bar % _SONG_BARS
        if song_bar < _INTRO_BARS:
            section = "intro"
        elif song_bar < _INTRO_BARS + _VERSE_BARS:
            section = "verse"
        else:
            section = "chorus"
        lv = _LEVELS[section]
        chord = song_bar % 4
        rnd = rng.random(_RANDOM_PER_BAR)
        r = iter(rnd)

        _add(buf, at(bar, 0), pads[chord], lv["pad"])
        _add(send, at(bar, 0), pads_mono[chord], 0.5 * lv["pad"])

        root = _BASS_ROOTS[chord]
        bass_notes: tuple[tuple[int, float, int], ...]  # (step, length in steps, MIDI note)
        if section == "intro":
            bass_notes = ((0, 16, root),)
        elif section == "verse":
            bass_notes = ((0, 5, root), (6, 2, root), (8, 5, root), (14, 2, root + 12))
        else:
            bass_notes = tuple((s, 1.6, root + (12 if s in (6, 14) else 0)) for s in range(0, 16, 2))
        for step, length, midi in bass_notes:
            if (midi, length) not in bass_cache:
                bass_cache[midi, length] = _bass_note(midi, length * _STEP_S, sr)
            _add(buf, at(bar, step), bass_cache[midi, length], lv["bass"] * (0.92 + 0.08 * next(r)))

        if section != "intro":
            d = lv["drums"]
            kicks = (0, 8, 10) if section == "verse" else (0, 4, 8, 12) + ((10,) if bar % 2 else ())
            for step in kicks:
                _add(buf, at(bar, step), kit.kick, d * (0.9 + 0.1 * next(r)))
            snares = [(4, 1.0), (12, 1.0)]
            if song_bar == _INTRO_BARS + _VERSE_BARS - 1:  # fill into the chorus
                snares += [(13, 0.45), (14, 0.6), (15, 0.8)]
            for step, vel in snares:
                which = int(next(r) * len(kit.snares))
                start, gain = at(bar, step + 0.04 * next(r)), d * vel * (0.9 + 0.1 * next(r))
                _add(buf, start, kit.snares[which], gain)
                _add(send, start, snares_mono[which], 0.5 * gain)
            hat_steps = range(0, 16, 2) if section == "verse" else range(16)
            for step in hat_steps:
                accent = 1.0 if step % 4 == 0 else 0.75 if step % 2 == 0 else 0.5
                hit = kit.hats[int(next(r) * len(kit.hats))]
                _add(buf, at(bar, step + 0.06 * next(r)), hit, d * accent * (0.8 + 0.2 * next(r)))

        if section != "intro":
            phrase = _VERSE_LEAD[song_bar % 4] if section == "verse" else _CHORUS_LEAD[song_bar % 8]
            for step, length, midi in phrase:
                if (midi, length) not in lead_cache:
                    lead_cache[midi, length] = _lead_note(midi, length * _STEP_S, sr)
                _add(lead_bus, at(bar, step), lead_cache[midi, length], lv["lead"] * (0.9 + 0.1 * next(r)))

    # Ping-pong dotted-eighth echo of the lead (left, then right) gives it some space.
    echo = int(round(3 * _STEP_S * sr))
    buf += lead_bus
    lead_mono = lead_bus[0] + lead_bus[1]
    buf[0, echo:] += 0.25 * lead_mono[:-echo]
    buf[1, 2 * echo:] += 0.12 * lead_mono[:-2 * echo]
    send += 0.4 * lead_mono
    del lead_bus, lead_mono

    y = buf[:, :n]
    y += _reverb(send[:n], sr)
    y = signal.sosfilt(_peaking_sos(300.0, 5.0, 0.9, sr), y, axis=1)  # the mud
    y *= _OUTPUT_GAIN
    peak = float(np.max(np.abs(y)))
    if peak > _PEAK_GUARD:
        y *= _PEAK_GUARD / peak
    fade = min(int(round(_FADE_OUT_S * sr)), n)
    y[:, n - fade:] *= np.linspace(1.0, 0.0, fade)
    return np.ascontiguousarray(y, dtype=np.float32)


# --- building blocks ---------------------------------------------------------------------------

def _add(buf: np.ndarray, start: int, seg: np.ndarray, gain: float) -> None:
    """Mix ``seg`` (mono or stereo) into ``buf`` at ``start``; buf is padded past the song end."""
    buf[..., start:start + seg.shape[-1]] += gain * seg


def _midi_hz(midi: float) -> float:
    hz: float = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    return hz


def _pan(p: float) -> tuple[float, float]:
    """Equal-power pan gains for position ``p`` in -1 (left) .. +1 (right)."""
    a = (p + 1.0) * math.pi / 4.0
    return math.cos(a), math.sin(a)


def _wavetable(f0_hz: float, sr: int, amp_of_harmonic: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """One period of a harmonic waveform, band-limited below 0.45*sr, with a wrap sample."""
    k_max = max(1, min(int(0.45 * sr / f0_hz), _TABLE_SIZE // 2 - 1))
    k = np.arange(1, k_max + 1, dtype=np.float64)
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1:k_max + 1] = -0.5j * _TABLE_SIZE * amp_of_harmonic(k, k * f0_hz)
    table = np.fft.irfft(spectrum, n=_TABLE_SIZE)  # sum of amps[k] * sin(2 pi k x)
    return np.append(table, table[0])


def _read(table: np.ndarray, phase_cycles: np.ndarray) -> np.ndarray:
    """Linear-interpolated table read at ``phase_cycles`` (>= 0, in periods)."""
    idx = phase_cycles * _TABLE_SIZE
    i = idx.astype(np.int64)
    frac = idx - i
    i &= _TABLE_SIZE - 1  # wrap; the table carries one extra sample for i + 1
    lo = table[i]
    out: np.ndarray = lo + frac * (table[i + 1] - lo)
    return out


def _lowpass_mag(f_hz: np.ndarray, fc_hz: float, order: int = 2) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (f_hz / fc_hz) ** (2 * order))


def _envelope(n_hold: int, n_release: int, sr: int, attack_s: float,
              decay_s: float = 0.0, sustain: float = 1.0) -> np.ndarray:
    """Smooth attack, optional decay to ``sustain``, cosine release to exactly zero."""
    n = n_hold + n_release
    t = np.arange(n) / sr
    a = np.clip(t / attack_s, 0.0, 1.0)
    env = a * a * (3.0 - 2.0 * a)
    if decay_s > 0.0:
        env *= sustain + (1.0 - sustain) * np.exp(-t / decay_s)
    x = np.arange(1, n_release + 1) / n_release
    env[n_hold:] *= 0.5 * (1.0 + np.cos(np.pi * x))
    return env


def _perc_envelope(n: int, sr: int, decay_s: float, attack_s: float = 0.001) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(t / attack_s, 1.0) * np.exp(-t / decay_s)
    tail = max(1, n // 10)
    env[n - tail:] *= 0.5 * (1.0 + np.cos(np.pi * np.arange(1, tail + 1) / tail))
    return env


def _pad_chord(notes: tuple[int, ...], sr: int) -> np.ndarray:
    """One bar of a detuned three-voice pad (plus release), voices spread across the image."""
    n_hold = int(round(_BAR_S * sr))
    n_rel = int(round(0.35 * sr))
    n = n_hold + n_rel
    t = np.arange(n) / sr
    out = np.zeros((2, n))
    voices = ((-9.0, -1.0, 1.0), (0.0, 0.1, 0.3), (8.0, 1.0, 1.0))  # (detune cents, pan, level)
    for j, midi in enumerate(notes):
        f0 = _midi_hz(midi)
        low = j == 0
        table = _wavetable(f0, sr, lambda k, f: (1.0 / k) * _lowpass_mag(f, 1600.0, 2))
        level = 0.16 if low else 0.11
        for v, (cents, pan, gain) in enumerate(voices):
            f = f0 * 2.0 ** (cents / 1200.0)
            wave = _read(table, f * t + 0.37 * (j + 3 * v))
            gl, gr = _pan(pan * (0.7 if low else 1.0))
            out[0] += gl * gain * level * wave
            out[1] += gr * gain * level * wave
    out *= _envelope(n_hold, n_rel, sr, attack_s=0.12, decay_s=0.8, sustain=0.75)
    return out


def _bass_note(midi: int, dur_s: float, sr: int) -> np.ndarray:
    """Sub sine plus a few low harmonics, centred."""
    f0 = _midi_hz(midi)
    n_hold = int(round(dur_s * sr))
    n_rel = int(round(0.03 * sr))
    t = np.arange(n_hold + n_rel) / sr
    table = _wavetable(f0, sr, lambda k, f: np.where(k == 1, 1.0, 0.45 / k) * _lowpass_mag(f, 700.0, 2))
    wave = _read(table, f0 * t) * _envelope(n_hold, n_rel, sr, attack_s=0.006, decay_s=0.25, sustain=0.8)
    return np.stack([wave, wave]) * 0.35


def _lead_note(midi: int, dur_s: float, sr: int) -> np.ndarray:
    """Soft square-ish lead with delayed vibrato, low-passed, a little right of centre."""
    f0 = _midi_hz(midi)
    n_hold = int(round(dur_s * sr))
    n_rel = int(round(0.09 * sr))
    t = np.arange(n_hold + n_rel) / sr
    depth = 0.006 * np.clip((t - 0.15) / 0.2, 0.0, 1.0)
    freq = f0 * (1.0 + depth * np.sin(2.0 * np.pi * 5.5 * t))
    phase = np.cumsum(freq) / sr
    table = _wavetable(f0 * 1.01, sr,
                       lambda k, f: np.where(k % 2 == 1, 1.0, 0.3) / k * _lowpass_mag(f, 2200.0, 2))
    wave = _read(table, phase) * _envelope(n_hold, n_rel, sr, attack_s=0.015)
    gl, gr = _pan(0.2)
    return np.stack([gl * wave, gr * wave]) * 0.42


class _Kit:
    """One-shot drum sounds rendered once per call (a few noise variants per piece)."""

    def __init__(self, sr: int, rng: np.random.Generator) -> None:
        self.kick = self._kick(sr, rng)
        self.snares = [self._snare(sr, rng) for _ in range(3)]
        self.hats = [self._hat(sr, rng) for _ in range(4)]

    @staticmethod
    def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
        n = int(round(0.45 * sr))
        t = np.arange(n) / sr
        freq = 48.0 + 110.0 * np.exp(-t / 0.03)  # pitch sweep 158 -> 48 Hz
        body = np.sin(2.0 * np.pi * np.cumsum(freq) / sr)
        body = np.tanh(1.2 * body) / np.tanh(1.2) * _perc_envelope(n, sr, 0.12, 0.0015)
        click = rng.standard_normal(n) * _perc_envelope(n, sr, 0.002, 0.0002)
        click = signal.sosfilt(signal.butter(2, 2500.0, "lowpass", fs=sr, output="sos"), click)
        mono = 0.85 * body + 0.12 * click
        return np.stack([mono, mono])

    @staticmethod
    def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
        n = int(round(0.3 * sr))
        t = np.arange(n) / sr
        tone = (0.5 * np.sin(2.0 * np.pi * 185.0 * t) + 0.3 * np.sin(2.0 * np.pi * 330.0 * t))
        tone *= _perc_envelope(n, sr, 0.045)
        sos = signal.butter(2, (900.0, min(4500.0, 0.45 * sr)), "bandpass", fs=sr, output="sos")
        noise = signal.sosfilt(sos, rng.standard_normal(n)) * _perc_envelope(n, sr, 0.09)
        mono = 0.55 * (tone + 0.9 * noise)
        gl, gr = _pan(-0.05)
        return np.stack([gl * mono, gr * mono])

    @staticmethod
    def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
        n = int(round(0.08 * sr))
        sos = signal.butter(2, (min(6500.0, 0.3 * sr), min(10000.0, 0.45 * sr)), "bandpass",
                            fs=sr, output="sos")
        noise = signal.sosfilt(sos, rng.standard_normal((3, n)), axis=1)
        common, left, right = noise
        env = _perc_envelope(n, sr, 0.015, 0.0005)
        gl, gr = _pan(0.35)
        out: np.ndarray = 0.05 * env * np.stack([gl * common + 0.6 * left, gr * common + 0.6 * right])
        return out


def _reverb(x: np.ndarray, sr: int) -> np.ndarray:
    """Small dark Schroeder room: mono in, decorrelated stereo out (about 1.4 s RT60)."""
    x = signal.sosfilt(signal.butter(2, (150.0, 3500.0), "bandpass", fs=sr, output="sos"), x)
    rt60_s = 1.4
    tank = np.zeros_like(x)
    for delay_ms in (31.3, 37.9, 41.3, 45.7):
        d = int(round(delay_ms * 1e-3 * sr))
        tank += _comb(x, d, 10.0 ** (-3.0 * d / (rt60_s * sr)))
    tank *= _REVERB_WET
    out = np.empty((2, x.size))
    for ch, delays_ms in enumerate(((12.7, 19.1), (14.3, 17.3))):
        y = tank
        for delay_ms in delays_ms:
            y = _allpass(y, int(round(delay_ms * 1e-3 * sr)), 0.6)
        out[ch] = y
    return out


def _comb(x: np.ndarray, d: int, g: float) -> np.ndarray:
    """y[n] = x[n] + g*y[n-d], vectorised over blocks of d samples."""
    y = x.copy()
    for s in range(d, x.size, d):
        e = min(s + d, x.size)
        y[s:e] += g * y[s - d:e - d]
    return y


def _allpass(x: np.ndarray, d: int, g: float) -> np.ndarray:
    """Schroeder all-pass y[n] = -g*x[n] + x[n-d] + g*y[n-d], vectorised over blocks of d samples."""
    y = -g * x
    y[d:] += x[:-d]
    for s in range(d, x.size, d):
        e = min(s + d, x.size)
        y[s:e] += g * y[s - d:e - d]
    return y


def _peaking_sos(freq_hz: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """RBJ peaking biquad as one sos section."""
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sr
    alpha = math.sin(w0) / (2.0 * q)
    b = np.array([1.0 + alpha * a_lin, -2.0 * math.cos(w0), 1.0 - alpha * a_lin])
    a = np.array([1.0 + alpha / a_lin, -2.0 * math.cos(w0), 1.0 - alpha / a_lin])
    return np.concatenate([b / a[0], a / a[0]])[None, :]
