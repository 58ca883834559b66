"""dsp.io.audio_io: round trips, dither, atomic and safe writing, every refusal."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import errors
from dsp.io import audio_io, pcm
from dsp.io.audio_io import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    OUTPUT_FORMATS,
    SUPPORTED_READ,
    AudioInfo,
    AudioSource,
    AudioWriter,
    WriteResult,
    atomic_write_text,
    audio_info,
    check_audio,
    output_format_for,
    read_audio,
    write_audio,
)

RATES = (22050, 44100, 48000, 96000, 192000)
EXT = {"wav16": ".wav", "wav24": ".wav", "wav32f": ".wav", "flac16": ".flac", "flac24": ".flac"}
SUBTYPE = {"wav16": "PCM_16", "wav24": "PCM_24", "wav32f": "FLOAT", "flac16": "PCM_16", "flac24": "PCM_24"}
LSB = {"wav16": 2.0**-15, "wav24": 2.0**-23, "flac16": 2.0**-15, "flac24": 2.0**-23}


def music(channels: int, sample_rate: int, seconds: float = 0.5, seed: int = 0, amp: float = 0.5) -> np.ndarray:
    """A sine per channel plus seeded noise, float32 (channels, samples), peak < 1."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    x = np.stack([amp * np.sin(2 * np.pi * (220.0 * (c + 1)) * t) for c in range(channels)])
    x += 0.2 * rng.uniform(-1, 1, size=x.shape)
    return x.astype(np.float32)


def only_files(folder) -> list[str]:
    return sorted(os.listdir(folder))


def assert_one_line_naming(err: errors.ReaMasterError, name: str) -> None:
    msg = str(err)
    assert "\n" not in msg
    assert name in msg, msg


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(OUTPUT_FORMATS))
@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_every_format_and_rate(tmp_path, fmt, sample_rate, channels):
    x = music(channels, sample_rate, seed=sample_rate + channels)
    path = tmp_path / f"out{EXT[fmt]}"
    res = write_audio(path, x, sample_rate, fmt=fmt)
    assert res == WriteResult(
        path=str(path), fmt=fmt, sample_rate=sample_rate, channels=channels, frames=x.shape[1],
        clipped_samples=0, dithered=fmt.endswith("16"),
    )
    info = sf.info(str(path))
    assert info.subtype == SUBTYPE[fmt]
    assert info.format == ("FLAC" if fmt.startswith("flac") else "WAV")

    y, sr = read_audio(path, mono_as="single")
    assert sr == sample_rate
    assert y.shape == x.shape and y.dtype == np.float32 and y.flags.c_contiguous
    if channels == 1:  # by default a mono file is heard, measured and delivered as dual-mono
        dual, _ = read_audio(path)
        assert dual.shape == (2, x.shape[1]) and np.array_equal(dual[0], y[0]) and np.array_equal(dual[1], y[0])
    err = y.astype(np.float64) - x.astype(np.float64)
    if fmt == "wav32f":
        assert np.array_equal(y, x)
    elif fmt.endswith("24"):
        # no dither: exactly the nearest 24-bit step
        lsb = LSB[fmt]
        assert np.abs(err).max() <= 0.5 * lsb * (1 + 1e-6)
        assert np.array_equal(y.astype(np.float64) / lsb, np.rint(x.astype(np.float64) / lsb))
    else:
        # TPDF dither (|d| < 1 LSB) then rounding (<= 0.5 LSB)
        lsb = LSB[fmt]
        assert np.abs(err).max() <= 1.5 * lsb
        assert np.all(np.rint(y.astype(np.float64) / lsb) == y.astype(np.float64) / lsb)
        assert np.abs(err).max() > 0.5 * lsb  # the dither really is there


def test_float64_input_is_written(tmp_path):
    x = music(2, 48000).astype(np.float64)
    write_audio(tmp_path / "a.wav", x, 48000, fmt="wav24")
    y, _ = read_audio(tmp_path / "a.wav")
    assert np.abs(y - x).max() <= 0.5 * 2.0**-23 * (1 + 1e-6)


@pytest.mark.parametrize("ext", [".aif", ".aiff"])
def test_reads_aiff_written_by_soundfile(tmp_path, ext):
    x = music(2, 44100)
    path = tmp_path / f"in{ext}"
    sf.write(str(path), x.T, 44100, subtype="PCM_24", format="AIFF")
    y, sr = read_audio(path)
    assert sr == 44100 and y.shape == x.shape
    assert np.abs(y - x).max() <= 2.0**-23


def test_reads_ogg_written_by_soundfile(tmp_path):
    t = np.arange(48000) / 48000
    x = np.stack([0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t + c)
                  for c in range(2)]).astype(np.float32)  # tonal: lossy coding keeps it
    path = tmp_path / "in.ogg"
    sf.write(str(path), x.T, 48000, format="OGG", subtype="VORBIS")
    y, sr = read_audio(path)
    assert sr == 48000 and y.shape == x.shape and y.dtype == np.float32
    # lossy: same signal, same level, not the same samples
    for c in range(2):
        corr = np.corrcoef(x[c], y[c])[0, 1]
        assert corr > 0.99
        rms_db = 20 * np.log10(np.sqrt(np.mean(y[c] ** 2)) / np.sqrt(np.mean(x[c] ** 2)))
        assert abs(rms_db) < 0.5


def test_wav_with_flac_content_is_read(tmp_path):
    x = music(1, 44100)
    path = tmp_path / "actually_flac.wav"
    sf.write(str(path), x.T, 44100, format="FLAC", subtype="PCM_24")
    y, _ = read_audio(path)
    assert np.abs(y - x).max() <= 2.0**-23


# --- dither --------------------------------------------------------------------------------------

def quiet_sine(sample_rate=44100, seconds=2.0, level_dbfs=-100.0, channels=1):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    amp = 10 ** (level_dbfs / 20)
    return np.stack([amp * np.sin(2 * np.pi * 997.0 * t + c) for c in range(channels)]).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav16", "flac16"])
def test_16_bit_tpdf_dither_decorrelates_the_error(tmp_path, fmt, monkeypatch):
    # -100 dBFS is a third of a 16-bit step: plain rounding gives digital silence.
    x = quiet_sine(channels=2)
    lsb = 2.0**-15
    assert not np.any(np.rint(x.astype(np.float64) / lsb))

    # read_audio would (rightly) call the result too quiet to master; read raw.
    path = tmp_path / f"q{EXT[fmt]}"
    res = write_audio(path, x, 44100, fmt=fmt, dither_seed=123)
    assert res.dithered
    y = sf.read(str(path), dtype="float64", always_2d=True)[0].T
    assert np.count_nonzero(y) > 0.3 * y.size

    e = (y - x) / lsb  # error in LSB
    n = e.shape[1]
    # Rounding (1/12) + TPDF of +-1 LSB (2/12): total variance 1/4 LSB^2, RMS 0.5 LSB.
    rms = np.sqrt(np.mean(e**2, axis=1))
    assert np.all(np.abs(rms - 0.5) < 0.1 * 0.5), rms
    assert np.all(np.abs(e.mean(axis=1)) < 5 * 0.5 / np.sqrt(n))
    assert np.abs(e).max() <= 1.5
    assert np.mean(np.abs(e) > 1.0) > 0.02  # triangular dither reaches past one step (~4.7 % here)
    for c in range(2):
        assert abs(np.corrcoef(e[c], x[c])[0, 1]) < 0.02  # error independent of the signal
        # ...so the sine survives, at its level, below one step
        ref = x[c] / np.sqrt(np.mean(x[c].astype(np.float64) ** 2))
        gain = np.mean(y[c] * ref) / np.sqrt(np.mean(x[c].astype(np.float64) ** 2))
        assert abs(gain - 1.0) < 0.05
    assert abs(np.corrcoef(e[0], e[1])[0, 1]) < 0.02  # independent dither per channel


def test_16_bit_dither_error_power_does_not_depend_on_the_signal(tmp_path):
    # TPDF's defining property: no noise modulation. With plain rounding or rectangular
    # dither the error power would depend on where the signal sits between two steps.
    lsb = 2.0**-15
    n = 4 * 44100
    x = (np.linspace(-3.0, 3.0, n) * lsb)[None, :].astype(np.float32)
    write_audio(tmp_path / "ramp.wav", x, 44100, fmt="wav16", dither_seed=5)
    y = sf.read(str(tmp_path / "ramp.wav"), dtype="float64", always_2d=True)[0].T
    e = ((y - x) / lsb)[0]
    frac = np.mod(x[0].astype(np.float64) / lsb, 1.0)
    bins = np.minimum((frac * 5).astype(int), 4)
    power = np.array([np.mean(e[bins == b] ** 2) for b in range(5)])
    assert np.all(np.abs(power - 0.25) < 0.1 * 0.25), power


def test_dither_is_reproducible_per_seed(tmp_path):
    x = music(2, 44100, amp=0.1)
    a = write_audio(tmp_path / "a.wav", x, 44100, fmt="wav16", dither_seed=7)
    write_audio(tmp_path / "b.wav", x, 44100, fmt="wav16", dither_seed=7)
    write_audio(tmp_path / "c.wav", x, 44100, fmt="wav16", dither_seed=8)
    write_audio(tmp_path / "d.wav", x, 44100, fmt="wav16", dither_seed=None)
    read = lambda name: sf.read(str(tmp_path / name), dtype="int16")[0]  # noqa: E731
    assert a.dithered
    assert np.array_equal(read("a.wav"), read("b.wav"))
    assert not np.array_equal(read("a.wav"), read("c.wav"))
    assert np.abs(read("d.wav").astype(int) - read("a.wav")).max() <= 2


@pytest.mark.parametrize("fmt", ["wav24", "flac24", "wav32f"])
def test_no_dither_above_16_bit(tmp_path, fmt):
    x = quiet_sine(level_dbfs=-100.0)
    path = tmp_path / f"q{EXT[fmt]}"
    res = write_audio(path, x, 44100, fmt=fmt, dither_seed=123)
    assert not res.dithered
    y = sf.read(str(path), dtype="float64", always_2d=True)[0].T
    if fmt == "wav32f":
        assert np.array_equal(y, x)
    else:
        # deterministic rounding, identical for any seed
        assert np.array_equal(y * 2**23, np.rint(x.astype(np.float64) * 2**23))
        write_audio(tmp_path / f"r{EXT[fmt]}", x, 44100, fmt=fmt, dither_seed=999)
        assert np.array_equal(sf.read(str(tmp_path / f"r{EXT[fmt]}"), dtype="int32")[0],
                              sf.read(str(path), dtype="int32")[0])


# --- clipping ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["wav16", "wav24", "flac16", "flac24"])
def test_integer_formats_clip_and_count(tmp_path, fmt):
    x = music(2, 44100, amp=0.3)
    x[0, 100:110] = 1.5
    x[1, 200:203] = -2.0
    x[0, 300] = 1.0  # exactly full scale: not clipping
    x[1, 301] = -1.0
    path = tmp_path / f"c{EXT[fmt]}"
    res = write_audio(path, x, 44100, fmt=fmt)
    assert res.clipped_samples == 13
    y = sf.read(str(path), dtype="float64", always_2d=True)[0].T
    top = 1.0 - LSB[fmt]
    assert np.all(y[0, 100:110] == top) and np.all(y[1, 200:203] == -1.0)
    assert y.max() <= top and y.min() >= -1.0


def test_float_keeps_overs_unclipped(tmp_path):
    x = music(1, 44100)
    x[0, 10] = 3.0
    res = write_audio(tmp_path / "f.wav", x, 44100, fmt="wav32f")
    assert res.clipped_samples == 0
    y, _ = read_audio(tmp_path / "f.wav")
    assert y[0, 10] == 3.0


# --- WAV sample bytes converted by dsp.io.pcm, against libsndfile's own conversions ---------------

def edge_samples(channels: int, n: int, dtype, seed: int = 0) -> np.ndarray:
    """Seeded noise with overs, full scale, and values half an LSB either side of a step."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((channels, n)) * 0.4).astype(dtype)
    edges = [1.0, -1.0, 1.2, -1.3, 0.99999, -0.999999, 0.5 / 8388608, -0.5 / 8388608, 1.5 / 8388608,
             0.5 / 32768, -1.5 / 32768, 0.0]
    x[:, :len(edges)] = np.asarray(edges, dtype=dtype)
    return x


@pytest.mark.parametrize("container", ["WAV", "WAVEX", "RF64"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_wav_samples_read_as_libsndfile_converts_them(tmp_path, container, subtype, channels):
    path = tmp_path / "in.wav"
    x = edge_samples(channels, 70001, np.float64, seed=channels)
    sf.write(str(path), x.T, 48000, subtype=subtype, format=container)
    with sf.SoundFile(str(path)) as f:
        assert pcm.raw_width(f) > 0  # the bytes pass raw: the kernels are what is tested here
    expected = sf.read(str(path), dtype="float32", always_2d=True)[0].T
    whole, _ = read_audio(path, mono_as="single")
    source = AudioSource(path, mono_as="single")
    blocks = np.concatenate(list(source.blocks(9999)), axis=1)
    assert np.array_equal(whole, expected)
    assert np.array_equal(blocks, expected)
    assert np.array_equal(source.section(12345, 777), expected[:, 12345:12345 + 777])


def test_wav_with_a_chunk_after_its_samples_reads_only_the_samples(tmp_path):
    path = tmp_path / "in.wav"
    x = edge_samples(2, 30000, np.float64)
    sf.write(str(path), x.T, 44100, subtype="PCM_24")
    data = bytearray(path.read_bytes())
    chunk = b"LIST" + (8).to_bytes(4, "little") + b"INFOjunk"
    data += chunk
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    expected = sf.read(str(path), dtype="float32", always_2d=True)[0].T
    assert expected.shape == (2, 30000)
    assert np.array_equal(np.concatenate(list(AudioSource(path).blocks(7000)), axis=1), expected)


@pytest.mark.parametrize("fmt", ["wav16", "wav24"])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wav_samples_written_as_libsndfile_writes_them(tmp_path, monkeypatch, fmt, channels, dtype):
    # the same file, byte for byte, with libsndfile converting (the raw calls switched off)
    x = edge_samples(channels, 150001, dtype, seed=channels)
    made = {}
    for raw in (True, False):
        monkeypatch.setattr(pcm, "_RAW_IO", raw)
        whole = write_audio(tmp_path / f"whole{raw}.wav", x, 48000, fmt=fmt)
        streamed = write_streamed(tmp_path / f"streamed{raw}.wav", x.astype(np.float32), 48000, fmt=fmt)
        made[raw] = ((tmp_path / f"whole{raw}.wav").read_bytes(), (tmp_path / f"streamed{raw}.wav").read_bytes(),
                     whole.clipped_samples, streamed.clipped_samples)
    assert made[True] == made[False]
    assert made[True][2] > 0


# --- atomicity -----------------------------------------------------------------------------------

@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """A real write failure: the kernel refuses to grow any file of this process past ``nbytes``
    (EFBIG, "File too large"), as a full disk refuses with ENOSPC."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def write_streamed(path, x, sample_rate, *, fmt="wav24", force=False) -> WriteResult:
    with AudioWriter(path, sample_rate, x.shape[0], fmt=fmt, force=force) as w:
        for i in range(0, x.shape[1], 40000):
            w.write(x[:, i:i + 40000])
        return w.commit()


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("writer", [write_audio, write_streamed])
@pytest.mark.parametrize("fmt", ["wav16", "wav24", "wav32f", "flac24"])
def test_failure_mid_write_leaves_nothing(tmp_path, fmt, writer):
    x = music(2, 44100, seconds=4.0)  # several blocks, 0.7-1.4 MB
    out = tmp_path / f"out{EXT[fmt]}"
    with file_size_limit(200_000), pytest.raises(errors.WriteFailedError) as ei:
        writer(out, x, 44100, fmt=fmt)
    assert_one_line_naming(ei.value, out.name)
    assert only_files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("writer", [write_audio, write_streamed])
def test_failure_keeps_the_old_file_when_forcing(tmp_path, writer):
    old = music(1, 44100, seed=1)
    write_audio(tmp_path / "out.wav", old, 44100)
    before = (tmp_path / "out.wav").read_bytes()
    with file_size_limit(200_000), pytest.raises(errors.WriteFailedError, match="(?i)too large"):
        writer(tmp_path / "out.wav", music(1, 44100, seconds=4.0, seed=2), 44100, force=True)
    assert only_files(tmp_path) == ["out.wav"]
    assert (tmp_path / "out.wav").read_bytes() == before


def test_interrupt_mid_write_cleans_up_and_propagates(tmp_path, monkeypatch):
    real = audio_io._BlockWriter.__call__
    calls = []

    def write(self, x):
        calls.append(x.shape[1])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(self, x)

    monkeypatch.setattr(audio_io._BlockWriter, "__call__", write)
    with pytest.raises(KeyboardInterrupt):
        write_audio(tmp_path / "out.flac", music(2, 44100, seconds=4.0), 44100, fmt="flac24")
    assert len(calls) == 2
    assert only_files(tmp_path) == []


def test_destination_appearing_during_the_write_is_not_overwritten(tmp_path, monkeypatch):
    real = audio_io._BlockWriter.__call__

    def write(self, x):
        (tmp_path / "out.wav").write_bytes(b"someone else's file")
        return real(self, x)

    monkeypatch.setattr(audio_io._BlockWriter, "__call__", write)
    with pytest.raises(errors.OutputExistsError):
        write_audio(tmp_path / "out.wav", music(1, 44100), 44100)
    assert (tmp_path / "out.wav").read_bytes() == b"someone else's file"
    assert only_files(tmp_path) == ["out.wav"]


def test_works_where_hard_links_are_not_supported(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    x = music(2, 44100)
    write_audio(tmp_path / "out.wav", x, 44100, fmt="wav32f")
    assert np.array_equal(read_audio(tmp_path / "out.wav")[0], x)
    with pytest.raises(errors.OutputExistsError):
        write_audio(tmp_path / "out.wav", x, 44100, fmt="wav32f")
    assert only_files(tmp_path) == ["out.wav"]


def test_text_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(errors.WriteFailedError, match="report.json"):
        atomic_write_text(tmp_path / "report.json", "{}")
    assert only_files(tmp_path) == []


def test_success_leaves_only_the_output(tmp_path):
    write_audio(tmp_path / "a.wav", music(2, 44100), 44100, fmt="wav16")
    atomic_write_text(tmp_path / "a.json", "{}\n")
    assert only_files(tmp_path) == ["a.json", "a.wav"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_new_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_audio(tmp_path / "a.wav", music(1, 44100), 44100)
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.wav").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


# --- refusing to overwrite -----------------------------------------------------------------------

def test_refuses_existing_without_force_allows_with_force(tmp_path):
    path = tmp_path / "out.wav"
    write_audio(path, music(1, 44100, seed=1), 44100)
    before = path.read_bytes()
    with pytest.raises(errors.OutputExistsError) as ei:
        write_audio(path, music(1, 44100, seed=2), 44100)
    assert_one_line_naming(ei.value, "out.wav")
    assert path.read_bytes() == before

    x2 = music(1, 44100, seed=2)
    write_audio(path, x2, 44100, force=True)
    y, _ = read_audio(path)
    assert np.abs(y - x2).max() <= 0.5 * 2.0**-23 * (1 + 1e-6)
    assert only_files(tmp_path) == ["out.wav"]


def test_text_refuses_existing_without_force(tmp_path):
    path = tmp_path / "chain.json"
    atomic_write_text(path, "first")
    with pytest.raises(errors.OutputExistsError):
        atomic_write_text(path, "second")
    assert path.read_text() == "first"
    atomic_write_text(path, "second", force=True)
    assert path.read_text() == "second"


def test_text_is_exact_utf8(tmp_path):
    text = '{"title": "Café – Ünïcode ♪"}\r\nline two\n'
    atomic_write_text(tmp_path / "r.json", text)
    assert (tmp_path / "r.json").read_bytes() == text.encode("utf-8")


def make_input(tmp_path, name="in.wav"):
    path = tmp_path / name
    sf.write(str(path), music(2, 44100).T, 44100, subtype="PCM_24")
    return path, path.read_bytes()


def test_never_writes_over_the_input_even_with_force(tmp_path):
    inp, before = make_input(tmp_path)
    for force in (False, True):
        with pytest.raises(errors.OutputIsInputError) as ei:
            write_audio(inp, music(2, 44100, seed=5), 44100, force=force, protect=[inp])
        assert_one_line_naming(ei.value, "in.wav")
        with pytest.raises(errors.OutputIsInputError):
            atomic_write_text(inp, "oops", force=force, protect=[str(inp)])
    assert inp.read_bytes() == before
    assert only_files(tmp_path) == ["in.wav"]


def test_input_protected_through_other_spellings(tmp_path, monkeypatch):
    inp, before = make_input(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    x = music(2, 44100, seed=5)
    # relative output, absolute protect
    with pytest.raises(errors.OutputIsInputError):
        write_audio("../in.wav", x, 44100, force=True, protect=[inp])
    # absolute output, relative and roundabout protect; a lone path rather than a list
    with pytest.raises(errors.OutputIsInputError):
        write_audio(inp, x, 44100, force=True, protect="../sub/./../in.wav")
    assert inp.read_bytes() == before


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_input_protected_through_symlink_and_hard_link(tmp_path):
    inp, before = make_input(tmp_path)
    x = music(2, 44100, seed=5)
    link = tmp_path / "link.wav"
    link.symlink_to(inp)
    with pytest.raises(errors.OutputIsInputError):
        write_audio(link, x, 44100, force=True, protect=[inp])
    with pytest.raises(errors.OutputIsInputError):
        write_audio(inp, x, 44100, force=True, protect=[link])
    hard = tmp_path / "hard.wav"
    os.link(inp, hard)
    with pytest.raises(errors.OutputIsInputError):
        write_audio(hard, x, 44100, force=True, protect=[inp])
    assert inp.read_bytes() == before


def test_protect_only_blocks_the_input(tmp_path):
    inp, before = make_input(tmp_path)
    res = write_audio(tmp_path / "out.wav", music(2, 44100), 44100, protect=[inp, tmp_path / "other.wav"])
    assert res.path == str(tmp_path / "out.wav")
    assert inp.read_bytes() == before


def test_missing_or_wrong_destination_folder(tmp_path):
    x = music(1, 44100)
    with pytest.raises(errors.OutputError, match="does not exist") as ei:
        write_audio(tmp_path / "nope" / "out.wav", x, 44100)
    assert_one_line_naming(ei.value, "out.wav")
    with pytest.raises(errors.OutputError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "r.json", "{}")
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.OutputError, match="not a folder"):
        write_audio(tmp_path / "file" / "out.wav", x, 44100)
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(errors.OutputError, match="is a folder"):
        write_audio(tmp_path / "dir.wav", x, 44100, force=True)
    assert only_files(tmp_path) == ["dir.wav", "file"]


def test_write_refuses_bad_arguments_and_audio(tmp_path):
    x = music(2, 44100)
    with pytest.raises(errors.ParameterError, match="wav16"):
        write_audio(tmp_path / "a.wav", x, 44100, fmt="mp3")
    with pytest.raises(errors.ParameterError, match=r"\.flac"):
        write_audio(tmp_path / "a.wav", x, 44100, fmt="flac24")
    with pytest.raises(errors.ParameterError):
        write_audio(tmp_path / "a.wav", x, 44100, dither_seed=1.5)
    bad = x.copy()
    bad[1, 5] = np.nan
    with pytest.raises(errors.NonFiniteAudioError, match="1 invalid"):
        write_audio(tmp_path / "a.wav", bad, 44100)
    with pytest.raises(errors.ChannelCountError, match=r"\(channels, samples\)"):
        write_audio(tmp_path / "a.wav", np.ascontiguousarray(x.T), 44100)
    with pytest.raises(errors.SampleRateError):
        write_audio(tmp_path / "a.wav", x, 8000)
    with pytest.raises(errors.EmptyAudioError):
        write_audio(tmp_path / "a.wav", np.zeros((2, 0), np.float32), 44100)
    assert only_files(tmp_path) == []


# --- output_format_for ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, bits, float_output, expected",
    [
        ("a.wav", None, False, "wav24"), ("a.WAV", 16, False, "wav16"), ("a.wav", 24, False, "wav24"),
        ("a.wav", 32, False, "wav32f"), ("a.wav", None, True, "wav32f"), ("a.wav", 32, True, "wav32f"),
        ("a.flac", None, False, "flac24"), ("a.flac", 16, False, "flac16"), ("dir/a.FLAC", 24, False, "flac24"),
    ],
)
def test_output_format_for(name, bits, float_output, expected):
    assert output_format_for(name, bits, float_output=float_output) == expected
    assert expected in OUTPUT_FORMATS


@pytest.mark.parametrize(
    "name, bits, float_output, needle",
    [
        ("a.mp3", None, False, ".wav"), ("a.aiff", 24, False, ".flac"), ("a", None, False, ".wav"),
        ("a.flac", 32, False, "FLAC"), ("a.flac", None, True, "FLAC"), ("a.wav", 16, True, "float"),
        ("a.wav", 20, False, "16, 24"), ("a.wav", 8, False, "16, 24"), ("a.wav", True, False, "16, 24"),
    ],
)
def test_output_format_for_refusals(name, bits, float_output, needle):
    with pytest.raises(errors.ParameterError, match=needle):
        output_format_for(name, bits, float_output=float_output)


# --- read errors ---------------------------------------------------------------------------------

def wav_bytes(tmp_path, seconds=1.0, sample_rate=44100, channels=2) -> bytes:
    p = tmp_path / "_src.wav"
    sf.write(str(p), music(channels, sample_rate, seconds=seconds).T, sample_rate, subtype="PCM_24")
    data = p.read_bytes()
    p.unlink()
    return data


def expect_read_error(path, cls, *, code=None, match=None):
    with pytest.raises(cls) as ei:
        read_audio(path)
    err = ei.value
    assert type(err) is cls
    assert_one_line_naming(err, os.path.basename(str(path)))
    if code:
        assert err.code == code
    if match:
        assert match in str(err), str(err)
    return err


def test_missing_file(tmp_path):
    expect_read_error(tmp_path / "x.wav", errors.FileMissingError, code="file_missing", match="file not found")
    with pytest.raises(errors.FileMissingError):
        audio_info(tmp_path / "x.wav")


def test_directory(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    expect_read_error(tmp_path / "folder.wav", errors.FileMissingError, match="folder")


@pytest.mark.parametrize("name", ["song.mp3", "notes.txt", "noext"])
def test_unknown_extension_lists_what_is_supported(tmp_path, name):
    (tmp_path / name).write_bytes(wav_bytes(tmp_path))  # valid WAV inside: the name decides
    err = expect_read_error(tmp_path / name, errors.UnsupportedFormatError, code="unsupported_format")
    for ext in SUPPORTED_READ:
        assert ext in str(err)


def test_text_file_renamed_wav_is_corrupt(tmp_path):
    (tmp_path / "text.wav").write_text("this is not audio\n" * 20)
    expect_read_error(tmp_path / "text.wav", errors.CorruptFileError, code="corrupt_file")
    with pytest.raises(errors.CorruptFileError):
        audio_info(tmp_path / "text.wav")


def test_zero_byte_file_is_corrupt(tmp_path):
    (tmp_path / "zero.flac").write_bytes(b"")
    expect_read_error(tmp_path / "zero.flac", errors.CorruptFileError)


@pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without MP3")
def test_mp3_renamed_wav_is_refused(tmp_path):
    sf.write(str(tmp_path / "a.mp3"), music(2, 44100).T, 44100, format="MP3")
    os.rename(tmp_path / "a.mp3", tmp_path / "a.wav")
    expect_read_error(tmp_path / "a.wav", errors.UnsupportedFormatError, match="MP3")


def test_header_only_wav_is_truncated(tmp_path):
    (tmp_path / "hdr.wav").write_bytes(wav_bytes(tmp_path)[:44])
    expect_read_error(tmp_path / "hdr.wav", errors.CorruptFileError, match="truncated")


def test_wav_cut_inside_header_is_corrupt(tmp_path):
    data = wav_bytes(tmp_path)
    for cut in (20, 40):
        (tmp_path / f"cut{cut}.wav").write_bytes(data[:cut])
        expect_read_error(tmp_path / f"cut{cut}.wav", errors.CorruptFileError)


@pytest.mark.parametrize("missing_bytes", [1, 6, 30000 * 6])
def test_truncated_wav_is_refused_not_mastered_quietly(tmp_path, missing_bytes):
    data = wav_bytes(tmp_path, seconds=1.0)
    (tmp_path / "full.wav").write_bytes(data)
    (tmp_path / "trunc.wav").write_bytes(data[: len(data) - missing_bytes])
    assert read_audio(tmp_path / "full.wav")[0].shape == (2, 44100)
    expect_read_error(tmp_path / "trunc.wav", errors.CorruptFileError, match="truncated")


def test_truncated_flac_is_refused(tmp_path):
    x = music(2, 44100, seed=5)
    write_audio(tmp_path / "full.flac", x, 44100, fmt="flac24")
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "trunc.flac").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises((errors.CorruptFileError,)) as ei:
        read_audio(tmp_path / "trunc.flac")
    assert "trunc.flac" in str(ei.value)


@pytest.mark.parametrize("channels, mask", [(6, None), (6, 0x60F), (4, 0x33), (8, None)])
def test_multichannel_layout_survives(tmp_path, channels, mask):
    from dsp.io.audio_io import DEFAULT_CHANNEL_MASKS, audio_info

    x = np.stack([music(1, 48000, seed=c)[0] for c in range(channels)])
    write_audio(tmp_path / "in.wav", x, 48000, fmt="wav24", channel_mask=mask)
    want = mask if mask is not None else DEFAULT_CHANNEL_MASKS[channels]
    info = audio_info(tmp_path / "in.wav")
    assert info.channel_mask == want
    # read, then write with the input's mask: the layout is kept (libsndfile reads it back too)
    y, sr = read_audio(tmp_path / "in.wav")
    write_audio(tmp_path / "out.wav", y, sr, fmt="wav24", channel_mask=info.channel_mask)
    assert audio_info(tmp_path / "out.wav").channel_mask == want
    assert sf.info(str(tmp_path / "out.wav")).format == "WAVEX"
    assert np.array_equal(read_audio(tmp_path / "out.wav")[0], y)


def test_garbage_after_valid_header_is_read(tmp_path):
    data = wav_bytes(tmp_path)
    garbage = np.random.default_rng(3).integers(0, 256, size=len(data) - 44, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.wav").write_bytes(data[:44] + garbage)  # as long as the header says
    y, sr = read_audio(tmp_path / "garbage.wav")
    assert sr == 44100 and y.shape[0] == 2
    assert np.all(np.abs(y) <= 1.0) and np.std(y) > 0.3  # uniform noise, as garbage would be


@pytest.mark.parametrize("name, container", [("empty.wav", "WAV"), ("empty.aiff", "AIFF")])
def test_zero_frames_is_empty(tmp_path, name, container):
    sf.write(str(tmp_path / name), np.zeros((0, 2), np.float32), 44100, format=container)
    expect_read_error(tmp_path / name, errors.EmptyAudioError, match="0 samples")


def test_too_many_channels(tmp_path):
    sf.write(str(tmp_path / "nine.wav"), np.full((44100, 9), 0.1, np.float32), 44100)
    expect_read_error(tmp_path / "nine.wav", errors.ChannelCountError, match="9 channels")
    assert audio_info(tmp_path / "nine.wav").channels == 9  # info describes, it does not judge


@pytest.mark.parametrize("rate", [8000, 16000, 22049, 192001, 384000])
def test_sample_rate_out_of_range(tmp_path, rate):
    sf.write(str(tmp_path / "r.wav"), np.full((rate, 1), 0.1, np.float32), rate, subtype="PCM_16")
    expect_read_error(tmp_path / "r.wav", errors.SampleRateError, match=f"{rate} Hz")


def test_non_finite_samples_counted(tmp_path):
    x = music(2, 44100).T.copy()
    x[10, 0] = np.nan
    x[20, 1] = np.inf
    x[30, 0] = -np.inf
    sf.write(str(tmp_path / "nan.wav"), x, 44100, subtype="FLOAT")
    expect_read_error(tmp_path / "nan.wav", errors.NonFiniteAudioError, match="3 invalid samples")


def test_too_short(tmp_path):
    sf.write(str(tmp_path / "short.wav"), music(2, 44100, seconds=0.25).T, 44100, subtype="PCM_24")
    err = expect_read_error(tmp_path / "short.wav", errors.TooShortError, match="0.25 s")
    assert "0.4 s" in str(err) and "loudness" in str(err)


@pytest.mark.parametrize("level_dbfs", [None, -95.0])
def test_silent(tmp_path, level_dbfs):
    x = np.zeros((2, 44100), np.float32) if level_dbfs is None else quiet_sine(channels=2, level_dbfs=level_dbfs)
    sf.write(str(tmp_path / "silent.wav"), x.T, 44100, subtype="FLOAT")
    expect_read_error(tmp_path / "silent.wav", errors.SilentAudioError, code="silent_audio", match="-90 dBFS")


def test_audio_info(tmp_path):
    path = tmp_path / "i.flac"
    write_audio(path, music(2, 96000, seconds=0.75), 96000, fmt="flac16")
    info = audio_info(path)
    assert info == AudioInfo(path=str(path), sample_rate=96000, channels=2, frames=72000,
                             duration_s=0.75, format="FLAC", subtype="PCM_16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.frames = 1  # type: ignore[misc]


# --- check_audio ---------------------------------------------------------------------------------

def test_check_audio_accepts_good_audio():
    for ch in (1, 2, MAX_CHANNELS):
        for sr in (MIN_SAMPLE_RATE, 44100, MAX_SAMPLE_RATE):
            check_audio(music(ch, sr, seconds=0.4), sr)
    check_audio(music(2, 48000).astype(np.float64), np.int64(48000))


@pytest.mark.parametrize(
    "x, sr, cls, needle",
    [
        (np.full(44100, 0.1, np.float32), 44100, errors.InputError, "2-D"),
        (np.full((1, 2, 44100), 0.1, np.float32), 44100, errors.InputError, "2-D"),
        ([[0.1] * 44100], 44100, errors.InputError, "2-D"),
        (np.full((1, 44100), 1000, np.int16), 44100, errors.InputError, "int16"),
        (np.zeros((0, 44100), np.float32), 44100, errors.ChannelCountError, "no channels"),
        (np.full((9, 44100), 0.1, np.float32), 44100, errors.ChannelCountError, "9 channels"),
        (np.full((44100, 2), 0.1, np.float32), 44100, errors.ChannelCountError, "(samples, channels)"),
        (np.full((1, 44100), 0.1, np.float32), 22049, errors.SampleRateError, "22049 Hz"),
        (np.full((1, 200000), 0.1, np.float32), 192001, errors.SampleRateError, "192001 Hz"),
        (np.full((1, 44100), 0.1, np.float32), 44100.0, errors.SampleRateError, "whole number"),
        (np.full((1, 44100), 0.1, np.float32), True, errors.SampleRateError, "whole number"),
        (np.zeros((2, 0), np.float32), 44100, errors.EmptyAudioError, "0 samples"),
        (np.zeros((1, 44100), np.float32), 44100, errors.SilentAudioError, "all samples are zero"),
    ],
)
def test_check_audio_refusals(x, sr, cls, needle):
    with pytest.raises(cls) as ei:
        check_audio(x, sr, what="take3.wav")
    assert needle in str(ei.value) and "take3.wav" in str(ei.value)
    assert "\n" not in str(ei.value)


def test_check_audio_counts_non_finite_and_names_default():
    x = music(2, 44100)
    x[0, :5] = np.nan
    x[1, -2:] = np.inf
    with pytest.raises(errors.NonFiniteAudioError, match=r"the audio contains 7 invalid samples"):
        check_audio(x, 44100)


def test_check_audio_silence_threshold_is_minus_90_dbfs():
    check_audio(quiet_sine(channels=1, level_dbfs=-89.5), 44100)
    with pytest.raises(errors.SilentAudioError, match=r"-90\.5 dBFS"):
        check_audio(quiet_sine(channels=1, level_dbfs=-90.5), 44100)
    # one loud sample in an otherwise silent channel is enough
    x = np.zeros((2, 44100), np.float32)
    x[1, 123] = -0.5
    check_audio(x, 44100)


@settings(max_examples=40, deadline=None)
@given(
    sr=st.sampled_from(RATES + (32000, 88200, 176400)),
    frames_off=st.integers(-3, 3),
)
def test_check_audio_minimum_duration_is_0_4_s(sr, frames_off):
    n = int(np.ceil(0.4 * sr)) + frames_off
    x = np.full((1, n), 0.1, np.float32)
    if n / sr < 0.4:
        with pytest.raises(errors.TooShortError) as ei:
            check_audio(x, sr)
        shown = str(ei.value).split(" s long")[0].split()[-1]
        assert float(shown) < 0.4  # never claims 0.4 s for something shorter
    else:
        check_audio(x, sr)
