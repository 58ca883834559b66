"""Block-wise measuring, rendering and writing equal their whole-signal counterparts, and the
streaming master's memory does not grow with the length of the audio.

Independent references: libebur128 (pyebur128) for loudness, scipy's resample_poly for true peak,
the whole-signal functions for everything else (themselves tested against references elsewhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyebur128
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from dsp.decide.presets import delivery
from dsp.errors import NonFiniteAudioError, OutputExistsError, SilentAudioError
from dsp.io.audio_io import AudioSource, AudioWriter, read_audio, write_audio
from dsp.measure.analysis import (
    AnalysisMeter,
    SampleStatsMeter,
    TruePeakMeter,
    analyze,
    analyze_source,
    sample_stats,
)
from dsp.measure.loudness import LoudnessMeter, measure_loudness
from dsp.measure.resonance import ResonanceMeter, find_resonances
from dsp.measure.spectrum import SpectrumMeter, third_octave_spectrum
from dsp.measure.truepeak import true_peak_dbtp
from dsp.process.chain import Chain, Stage, render, render_blocks
from dsp.process.eq import EqBand, EqParams
from dsp.process.limiter import LimiterParams

SR = 48000


def music_like(seconds: float, sample_rate: int = SR, seed: int = 7) -> np.ndarray:
    """Pink-ish stereo noise with loud and quiet sections, a ringing 2.5 kHz tone, a run of
    clipped samples and a stretch of silence: exercises gating, LRA, clipping and silence."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    white = rng.standard_normal((2, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    spec /= np.sqrt(np.maximum(f, 20.0))
    x = np.fft.irfft(spec, n, axis=1)
    x *= 0.1 / x.std()
    t = np.arange(n) / sample_rate
    x += 0.03 * np.sin(2 * np.pi * 2500.0 * t)
    level = np.where((t % 8) < 5, 1.0, 0.25)  # loud and quiet sections
    x *= level
    x[:, int(0.3 * n): int(0.3 * n) + sample_rate // 2] = 0.0  # silence
    x[0, n // 2: n // 2 + 6] = 1.0  # a clipped run
    return x.astype(np.float32)


def blocks_of(x: np.ndarray, size: int):
    return [x[:, i:i + size] for i in range(0, x.shape[1], size)]


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return music_like(30.0)


# --- meters --------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [4800 * 3 + 17, 1 << 16, 1 << 18])
def test_loudness_meter_equals_whole_signal_and_libebur128(clip, size):
    m = LoudnessMeter(2, SR)
    for b in blocks_of(clip, size):
        m.feed(b)
    got, whole = m.result(), measure_loudness(clip, SR)
    assert got.integrated_lufs == whole.integrated_lufs
    assert got.lra_lu == whole.lra_lu
    np.testing.assert_array_equal(got.short_term_lufs, whole.short_term_lufs)
    ref = pyebur128.R128State(2, SR, pyebur128.MeasurementMode.MODE_I)
    ref.add_frames(np.ascontiguousarray(clip.T, dtype=np.float64).ravel(), clip.shape[1])
    assert abs(got.integrated_lufs - pyebur128.get_loudness_global(ref)) < 0.01


@pytest.mark.parametrize("channels", [1, 2])
def test_spectrum_meter_equals_whole_signal(clip, channels):
    x = clip[:channels]
    m = SpectrumMeter(channels, SR)
    for b in blocks_of(x, 1 << 16):
        m.feed(b)
    got, whole = m.result(), third_octave_spectrum(x, SR)
    assert got.frames == whole.frames
    for name in ("level_db", "mid_db", "side_db", "side_mid_ratio_db", "correlation", "bin_db"):
        np.testing.assert_allclose(getattr(got, name), getattr(whole, name), rtol=0, atol=1e-9, err_msg=name)
    assert abs(got.correlation_overall - whole.correlation_overall) < 1e-12


def test_spectrum_meter_short_audio_takes_the_single_frame_path():
    x = music_like(0.1)
    m = SpectrumMeter(2, SR)
    m.feed(x[:, :1000])
    m.feed(x[:, 1000:])
    np.testing.assert_array_equal(m.result().level_db, third_octave_spectrum(x, SR).level_db)


def test_resonance_meter_finds_what_the_whole_signal_search_finds(clip):
    whole = find_resonances(clip, SR)
    m = ResonanceMeter(SR)
    for b in blocks_of(clip, 100_003):
        m.feed(b)
    got = m.result()
    assert [r.freq_hz for r in whole] == [r.freq_hz for r in got]
    assert any(abs(r.freq_hz - 2500.0) < 150 for r in got)  # the ringing tone is found
    for a, b in zip(whole, got, strict=True):
        assert abs(a.excess_db - b.excess_db) < 1e-9 and abs(a.persistence - b.persistence) < 1e-12


def test_sample_stats_meter_carries_clipped_runs_across_blocks(clip):
    x = clip.copy()
    x[1, 65536 - 2: 65536 + 3] = -1.0  # a five-sample run cut by the block boundary
    m = SampleStatsMeter(2, SR, x.shape[1])
    for b in blocks_of(x, 1 << 16):
        m.feed(b)
    got, whole = m.result(), sample_stats(x, SR)
    assert got == whole
    assert got.clipped_runs == 2 and got.clipped_samples == 11


@pytest.mark.parametrize("factor", [4, 8])
def test_true_peak_meter_equals_whole_signal_and_resample_poly(factor):
    # quiet noise everywhere, one inter-sample peak (fs/4 at 45 degrees) in the middle of a block:
    # most pieces are skipped by the bound, the peak's piece must not be
    rng = np.random.default_rng(3)
    x = (0.01 * rng.standard_normal((2, 300_000))).astype(np.float32)
    n0 = 150_001
    k = np.arange(64)
    x[:, n0:n0 + 64] = 0.7 * np.sin(np.pi / 2 * k + np.pi / 4)
    m = TruePeakMeter(2, factor=factor)
    for b in blocks_of(x, 70_000):
        m.feed(b)
    got = m.finish()
    assert got == true_peak_dbtp(x, factor=factor)
    assert m.skipped > m.pieces // 2  # the bound did its job on the quiet pieces
    ref = 20 * np.log10(np.abs(resample_poly(x.astype(np.float64), factor, 1, axis=1)).max())
    assert abs(got - ref) < 0.05
    sample_peak_db = 20 * np.log10(np.abs(x).max())  # 0.7 * sin(45 degrees): -6.1 dBFS
    assert got > sample_peak_db + 2.5  # an inter-sample peak, 3 dB over the samples


def test_true_peak_meter_with_bounds_finds_the_same_peak():
    # a caller's per-sample bounds (any valid upper bound, inf where unknown) only save work
    from dsp.measure.truepeak import true_peak_envelope

    rng = np.random.default_rng(8)
    levels = np.sort(rng.uniform(0.01, 0.5, 50))[::-1]  # the loudest first: later pieces can be skipped
    x = (rng.standard_normal((2, 200_000)) * np.repeat(levels, 4000)).astype(np.float32)
    env = true_peak_envelope(x, factor=8)
    loose = env * rng.uniform(1.0, 1.05, env.shape).astype(np.float32)
    loose[120_000:120_100] = np.inf  # unknown here
    m = TruePeakMeter(2, factor=8)
    for a in range(0, x.shape[1], 30_000):
        m.feed(x[:, a:a + 30_000], bound=loose[a:a + 30_000])
    assert m.finish() == pytest.approx(true_peak_dbtp(x, factor=8), abs=1e-4)
    plain = TruePeakMeter(2, factor=8)
    for a in range(0, x.shape[1], 30_000):
        plain.feed(x[:, a:a + 30_000])
    plain.finish()
    assert m.skipped > plain.skipped  # the bounds did spare work


def test_analysis_meter_equals_analyze(clip):
    m = AnalysisMeter(2, SR, clip.shape[1], true_peak_factor=8, resonances=True)
    for b in blocks_of(clip, 1 << 16):
        m.feed(b)
    got = m.result().to_dict(series=True)
    whole = analyze(clip, SR, true_peak_factor=8, resonances=True).to_dict(series=True)
    assert got == whole


def test_analyze_source_reads_once_and_refuses_like_read_audio(tmp_path, clip):
    p = tmp_path / "mix.wav"
    sf.write(p, clip.T, SR, subtype="FLOAT")
    x, sr = read_audio(p)
    assert analyze_source(AudioSource(p), resonances=True).to_dict() == analyze(x, sr, resonances=True).to_dict()
    bad = clip.copy()
    bad[0, 1000] = np.nan
    sf.write(tmp_path / "nan.wav", bad.T, SR, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError, match="1 invalid samples"):
        analyze_source(AudioSource(tmp_path / "nan.wav"))
    sf.write(tmp_path / "silent.wav", np.zeros((SR, 2), dtype=np.float32), SR, subtype="FLOAT")
    with pytest.raises(SilentAudioError):
        analyze_source(AudioSource(tmp_path / "silent.wav"))


# --- writing and rendering -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["wav16", "wav24", "wav32f", "flac24"])
def test_audio_writer_writes_the_file_write_audio_writes(tmp_path, clip, fmt):
    ext = ".flac" if fmt.startswith("flac") else ".wav"
    x = clip[:, :200_000] * 1.2  # some samples beyond full scale: clipping is counted the same
    whole = write_audio(tmp_path / f"a{ext}", x, SR, fmt=fmt)
    with AudioWriter(tmp_path / f"b{ext}", SR, 2, fmt=fmt) as w:
        for b in blocks_of(x, 30_011):
            w.write(b)
        streamed = w.commit()
    a, _ = sf.read(tmp_path / f"a{ext}", dtype="float32")
    b, _ = sf.read(tmp_path / f"b{ext}", dtype="float32")
    np.testing.assert_array_equal(a, b)  # the same dither sequence too
    assert (streamed.clipped_samples, streamed.frames, streamed.dithered) == \
        (whole.clipped_samples, whole.frames, whole.dithered)


def test_audio_writer_leaves_nothing_when_abandoned_and_refuses_existing(tmp_path, clip):
    dst = tmp_path / "out.wav"
    with AudioWriter(dst, SR, 2) as w:
        w.write(clip[:, :1000])  # no commit
    assert os.listdir(tmp_path) == []
    dst.write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        AudioWriter(dst, SR, 2)
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]


@pytest.mark.parametrize("split_hz", [0.0, 2000.0])
def test_render_blocks_equals_render(clip, split_hz):
    """The stream runs the limiter's detector a block ahead on another thread (not with the treble
    split); output, statistics and the output's metered true peak are render()'s exactly."""
    from dsp.process import limiter as lim

    chain = Chain((Stage("eq", EqParams(bands=(EqBand("band", freq_hz=300.0, gain_db=-3.0, bw_oct=1.0),))),
                   Stage("limiter", LimiterParams(threshold_db=-6.0, ceiling_dbtp=-1.0, treble_split_hz=split_hz))))
    whole_states: list = []
    whole = render(chain, clip, SR, states=whole_states)
    states: list = []
    got = np.concatenate(list(render_blocks(chain, blocks_of(clip, 77_777), SR, states=states)), axis=1)
    np.testing.assert_array_equal(got, whole)
    assert len(states) == 2
    assert lim.stats(states[-1])["max_reduction_db"] > 3.0  # it limits
    assert lim.stats(states[-1]) == lim.stats(whole_states[-1])
    assert lim.output_true_peak_dbtp(states[-1]) == lim.output_true_peak_dbtp(whole_states[-1])


# --- the streaming master ------------------------------------------------------------------------

@pytest.mark.parametrize(("limiter_only", "series_on_read"), [(False, True), (True, True), (True, False)])
def test_streamed_master_file_is_the_in_memory_master(tmp_path, clip, limiter_only, series_on_read, monkeypatch):
    from server.service import mastering
    from server.service.mastering import decide_and_master, master_file

    if not series_on_read:  # as for a file too long to hold the model's series beside the analysis
        monkeypatch.setattr(mastering, "SERIES_ON_READ_MAX_BYTES", 0)

    src = tmp_path / "mix.wav"
    write_audio(src, clip, SR, fmt="wav24")
    d = delivery("streaming")
    choices: dict = {"style": "auto"}
    if limiter_only:  # nothing before the limiter: its model comes from the analysis read, no pass of its own
        d = delivery("broadcast")  # -23 LUFS, no peak stage needed
        choices.update(tone_pct=0.0, dynamics_pct=0.0, width_pct=0.0)
    stages_seen: list[str] = []
    result, written = master_file(str(src), str(tmp_path / "streamed.wav"), d, fmt="wav24", force=False,
                                  choices=choices, progress=lambda stage, f: stages_seen.append(stage) or True)
    assert ("processing" in stages_seen) != (limiter_only and series_on_read)
    assert ([s.kind for s in result.chain.stages] == ["limiter"]) == limiter_only
    x, sr = read_audio(src)
    ref = decide_and_master(x, sr, d, choices=choices)
    write_audio(tmp_path / "whole.wav", ref.audio, sr, fmt="wav24")
    a, _ = sf.read(tmp_path / "streamed.wav", dtype="int32")
    b, _ = sf.read(tmp_path / "whole.wav", dtype="int32")
    np.testing.assert_array_equal(a, b)
    assert result.audio.shape == (2, 0) and written.frames == clip.shape[1]
    assert result.chain.to_dict() == ref.chain.to_dict()
    assert result.iterations == ref.iterations
    assert result.after.to_dict(series=True) == ref.after.to_dict(series=True)
    assert result.limiter == ref.limiter
    # the after true peak is the limiter's own metering of its output: a meter reads the file the same
    assert result.after.true_peak_dbtp == pytest.approx(true_peak_dbtp((a.T / 2**31).astype(np.float32), factor=8),
                                                        abs=1e-3)
    assert sorted(os.listdir(tmp_path)) == ["mix.wav", "streamed.wav", "whole.wav"]  # no temporary left


@pytest.mark.parametrize("with_clip", [False, True])
def test_a_given_chain_reports_the_written_files_true_peak(tmp_path, clip, with_clip):
    # a chain from the user (stages with their own latency before the limiter): the after true peak
    # the limiter meters is what a meter reads in the file, never under it
    from dsp.process.clipper import ClipperParams
    from server.service.mastering import master_file

    src = tmp_path / "mix.wav"
    write_audio(src, clip, SR, fmt="wav24")
    stages = [Stage("eq", EqParams(bands=(EqBand("high_shelf", 6000.0, 4.0),)))]
    if with_clip:
        stages.append(Stage("clipper", ClipperParams(ceiling_db=-3.0, knee_db=2.0, drive_db=2.0)))
    stages.append(Stage("limiter", LimiterParams(threshold_db=-8.0, ceiling_dbtp=-1.0)))
    result, _ = master_file(str(src), str(tmp_path / "out.wav"), delivery("streaming"), fmt="wav24", force=False,
                            chain=Chain(tuple(stages)))
    a, _ = sf.read(tmp_path / "out.wav", dtype="int32")
    measured = true_peak_dbtp((a.T / 2**31).astype(np.float32), factor=8)
    assert result.after.true_peak_dbtp == pytest.approx(measured, abs=1e-3)
    assert measured <= -1.0 + 1e-3


_PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, tracemalloc
    import numpy as np
    from dsp.decide.presets import delivery
    from dsp.io.audio_io import AudioWriter
    from server.service.mastering import master_file
    sys.path.insert(0, sys.argv[4])
    from test_streaming import music_like
    seconds, src, dst = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    piece = music_like(10.0)
    with AudioWriter(dst + ".warm.wav", 48000, 2, fmt="wav24") as w:
        w.write(piece)
        w.commit()
    with AudioWriter(src, 48000, 2, fmt="wav24") as w:
        for i in range(int(seconds // 10)):
            w.write(piece * (0.5 + 0.1 * (i % 5)))
        w.commit()
    del piece
    # loads the compiled kernels and the caches first, so only the master itself is traced
    master_file(dst + ".warm.wav", dst + ".warm.out.wav", delivery("streaming"), fmt="wav24", force=True)
    tracemalloc.start()
    master_file(src, dst, delivery("streaming"), fmt="wav24", force=True)
    print(json.dumps({"peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}))
""")


def _traced_peak_mb(tmp_path, seconds: float) -> float:
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(seconds), str(tmp_path / f"in{seconds:g}.wav"),
                          str(tmp_path / f"out{seconds:g}.wav"), os.path.dirname(__file__)],
                         capture_output=True, text=True, check=True, timeout=280)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


@pytest.mark.slow
def test_streaming_master_memory_does_not_grow_with_length(tmp_path):
    # Python/numpy allocations traced while mastering 20 s and 120 s of 48 kHz stereo: the longer
    # file's audio alone is 46 MB as float32, six times the shorter one's. Streaming holds a few
    # blocks and per-hop series, so the peak barely moves (about 0.3 MB more per minute).
    short, long = _traced_peak_mb(tmp_path, 20.0), _traced_peak_mb(tmp_path, 120.0)
    print(f"traced peak: 20 s {short:.1f} MB, 120 s {long:.1f} MB")
    assert long < 30.0, long  # under two thirds of the long file's float32 audio
    assert long - short < 5.0, (short, long)  # holding the audio would add 38 MB


def test_source_refuses_what_read_audio_refuses_and_reads_mono_alike(tmp_path):
    """AudioSource and read_audio agree on truncated files and on mono (dual by default)."""
    from dsp.errors import CorruptFileError

    rng = np.random.default_rng(11)
    x = (0.2 * rng.standard_normal((1, 44100))).astype(np.float32)
    write_audio(tmp_path / "mono.wav", x, 44100, fmt="wav24")
    for mono_as in ("dual", "single"):
        whole, _ = read_audio(tmp_path / "mono.wav", mono_as=mono_as)
        src = AudioSource(tmp_path / "mono.wav", mono_as=mono_as)
        streamed = np.concatenate(list(src.blocks(4096)), axis=1)
        assert src.channels == whole.shape[0] == (2 if mono_as == "dual" else 1)
        assert np.array_equal(streamed, whole)
    data = (tmp_path / "mono.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) - 3000])
    with pytest.raises(CorruptFileError, match="truncated"):
        read_audio(tmp_path / "cut.wav")
    with pytest.raises(CorruptFileError, match="truncated"):
        AudioSource(tmp_path / "cut.wav")


def test_writer_keeps_a_speaker_layout_like_write_audio(tmp_path):
    from dsp.io.audio_io import channel_mask

    x = (0.1 * np.random.default_rng(3).standard_normal((6, 30000))).astype(np.float32)
    write_audio(tmp_path / "whole.wav", x, 48000, fmt="wav24", channel_mask=0x60F)
    with AudioWriter(tmp_path / "blocks.wav", 48000, 6, fmt="wav24", channel_mask=0x60F) as w:
        for i in range(0, 30000, 7000):
            w.write(x[:, i:i + 7000])
        w.commit()
    assert channel_mask(tmp_path / "blocks.wav") == channel_mask(tmp_path / "whole.wav") == 0x60F
    assert (tmp_path / "blocks.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
