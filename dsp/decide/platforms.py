"""Platform preview: the gain each streaming service applies on playback, and what is heard.

Figures and rules follow ``shared/design/LANDSCAPE.md`` section 2. ``confidence`` says how
sure a rule is: ``published`` (the service documents it), ``third-party`` (measured or
reported by others; the service publishes no figure) or ``assumption`` (our own reading,
flagged so a musician does not take it as fact).

The model, per platform and mode, from the master's integrated loudness ``L`` (LUFS) and
true peak ``P`` (dBTP):

* ``gain_db = reference_lufs - L``;
* services that only turn down keep ``gain_db <= 0``;
* services with a peak-headroom rule raise quiet tracks only until the true peak reaches
  ``-peak_headroom_db`` dBTP (Spotify: a -20 LUFS track peaking at -5 dBTP gets +4 dB, so
  it plays at -16 LUFS, not -14);
* a playback limiter (Spotify Loud, at -1 dB) catches peaks that the gain pushes over its
  threshold: ``limited`` is then true and the peak heard is the threshold. The limiter also
  takes a little loudness off, which is not modelled: ``playback_lufs`` is always ``L + gain_db``.

Album normalisation (Spotify and Tidal play albums at one gain, set by the album) is not
modelled: this is the track-by-track (shuffle/playlist) view.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import ParameterError


@dataclasses.dataclass(frozen=True)
class Platform:
    platform: str
    mode: str
    reference_lufs: float  # playback reference the service normalises to
    turns_up: bool  # raises tracks quieter than the reference
    peak_headroom_db: float | None  # positive gain stops when the true peak reaches -this dBTP
    limiter_db: float | None  # playback limiter threshold (sample values, dBFS); None = none
    peak_guidance_dbtp: float  # what the service asks masters to peak below
    loud_peak_guidance_dbtp: float | None  # ... when the master is louder than the reference
    confidence: str  # "published" | "third-party" | "assumption"
    source: str
    note: str


PLATFORMS: tuple[Platform, ...] = (
    Platform("spotify", "normal", -14.0, True, 1.0, None, -1.0, -2.0, "published",
             "support.spotify.com/us/artists/article/loudness-normalization",
             "default setting; raises quiet tracks only up to 1 dB below 0 dBTP; asks for -2 dBTP "
             "on masters louder than -14 LUFS"),
    Platform("spotify", "loud", -11.0, True, None, -1.0, -1.0, -2.0, "published",
             "support.spotify.com/us/artists/article/loudness-normalization",
             "Premium 'Loud' setting; gain regardless of peaks, then a limiter at -1 dB "
             "(5 ms attack, 100 ms decay)"),
    Platform("spotify", "quiet", -19.0, True, 1.0, None, -1.0, -2.0, "published",
             "support.spotify.com/us/artists/article/loudness-normalization",
             "Premium 'Quiet' setting; same 1 dB peak-headroom rule as normal"),
    Platform("apple", "sound check", -16.0, True, 1.0, None, -1.0, None, "assumption",
             "apu.software, masteringthemix.com (third-party measurements of Sound Check)",
             "Apple publishes no LUFS figure (about -16 LUFS measured). ASSUMPTION: Sound Check "
             "turns up as well as down but never past -1 dBTP (modelled like Spotify's rule)"),
    Platform("youtube", "normal", -14.0, False, None, None, -1.0, None, "third-party",
             "charlesgaddis.com/youtubeloudness, tuberlife.com; no Google document",
             "turns loud uploads down to about -14 LUFS, never turns quiet ones up"),
    Platform("tidal", "normal", -14.0, False, None, None, -1.0, None, "third-party",
             "meterplugs.com 2016 (information from Tidal)",
             "-14 LUFS (BS.1770-4); in its original behaviour Tidal did not raise quiet tracks, "
             "modelled as turn-down only; normalisation can be switched off on mobile"),
    Platform("amazon", "normal", -14.0, False, None, None, -1.0, None, "assumption",
             "uptrack.pro, wavedisco (third-party, low confidence; no official spec)",
             "LOW CONFIDENCE: about -14 LUFS (some tables say -9 to -13); ASSUMPTION: turn-down only"),
    Platform("deezer", "normal", -15.0, False, None, None, -1.0, None, "assumption",
             "andres.audio, uptrack.pro (third-party; no official spec)",
             "about -15 LUFS; ASSUMPTION: turn-down only"),
)


@dataclasses.dataclass(frozen=True)
class PlaybackPrediction:
    platform: str
    mode: str
    reference_lufs: float
    gain_db: float  # applied on playback (negative = turned down)
    playback_lufs: float  # integrated loudness heard = master + gain_db
    playback_peak_dbtp: float  # peak heard (after a playback limiter, if any)
    limited: bool  # a playback limiter engages on this master
    note: str

    def to_dict(self) -> dict[str, float | str | bool]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def _check(name: str, value: float, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ParameterError(f"{name} = {value:g} is outside {lo:g} to {hi:g}")
    return float(value)


def predict(p: Platform, integrated_lufs: float, true_peak_dbtp: float) -> PlaybackPrediction:
    """Playback gain and level for one platform/mode (see the module docstring for the rules)."""
    lufs = _check("integrated_lufs", integrated_lufs, -70.0, 5.0)
    peak = _check("true_peak_dbtp", true_peak_dbtp, -200.0, 30.0)
    wanted = p.reference_lufs - lufs
    gain = wanted
    why = []
    if gain > 0 and not p.turns_up:
        gain = 0.0
        if wanted >= 0.05:
            why.append(f"quieter than {p.reference_lufs:g} LUFS and this service does not turn up: "
                       "plays as is")
    elif gain > 0 and p.peak_headroom_db is not None:
        room = max(0.0, -p.peak_headroom_db - peak)
        if room < gain:
            gain = room
            if wanted - room >= 0.05:
                why.append(f"raised only {gain:.1f} of {wanted:.1f} dB: "
                           f"peaks reach {-p.peak_headroom_db:g} dBTP")
    heard_peak = peak + gain
    limited = p.limiter_db is not None and heard_peak > p.limiter_db
    if limited and p.limiter_db is not None:  # (limited implies a limiter; this tells the type checker)
        why.append(f"the playback limiter takes about {heard_peak - p.limiter_db:.1f} dB off the peaks "
                   f"(and a little loudness)")
        heard_peak = p.limiter_db
    if gain <= -0.05:
        why.append(f"turned down {-gain:.1f} dB")
    if p.loud_peak_guidance_dbtp is not None and lufs > -14.0 and peak > p.loud_peak_guidance_dbtp:
        why.append(f"{p.platform.capitalize()} asks masters louder than -14 LUFS "
                   f"to peak below {p.loud_peak_guidance_dbtp:g} dBTP")
    if p.confidence != "published":
        why.append(f"{p.confidence} figures")
    return PlaybackPrediction(
        platform=p.platform, mode=p.mode, reference_lufs=p.reference_lufs, gain_db=gain,
        playback_lufs=lufs + gain, playback_peak_dbtp=heard_peak, limited=limited,
        note="; ".join(why) if why else "played at the reference level")


def platform_preview(integrated_lufs: float, true_peak_dbtp: float, *,
                     platforms: tuple[Platform, ...] = PLATFORMS) -> list[PlaybackPrediction]:
    """What each platform/mode plays for a master of this loudness (LUFS) and true peak (dBTP)."""
    return [predict(p, integrated_lufs, true_peak_dbtp) for p in platforms]


__all__ = ["PLATFORMS", "Platform", "PlaybackPrediction", "platform_preview", "predict"]
