"""One exception hierarchy for everything ReaMaster refuses to do.

Every error has a stable ``code`` (a short snake_case string that the CLI prints,
the server sends and tests assert on) and a one-line message a musician can act
on. Never change an existing code; add a new class instead.
"""

from __future__ import annotations


class ReaMasterError(Exception):
    """Base class. ``str(err)`` is the one-line message."""

    code = "error"

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints it and the protocol carries it as is.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


# --- input audio -------------------------------------------------------------------------------

class InputError(ReaMasterError):
    """The input audio cannot be used."""

    code = "bad_input"


class FileMissingError(InputError):
    code = "file_missing"


class UnsupportedFormatError(InputError):
    code = "unsupported_format"


class CorruptFileError(InputError):
    code = "corrupt_file"


class EmptyAudioError(InputError):
    code = "empty_audio"


class TooShortError(InputError):
    code = "too_short"


class SilentAudioError(InputError):
    code = "silent_audio"


class NonFiniteAudioError(InputError):
    code = "non_finite_audio"


class ChannelCountError(InputError):
    code = "channel_count"


class SampleRateError(InputError):
    code = "sample_rate"


class LengthMismatchError(InputError):
    """Files that must line up (stems) have different lengths."""

    code = "length_mismatch"


# --- output ------------------------------------------------------------------------------------

class OutputError(ReaMasterError):
    """The result cannot be written where asked."""

    code = "bad_output"


class OutputExistsError(OutputError):
    code = "output_exists"


class OutputIsInputError(OutputError):
    code = "output_is_input"


class WriteFailedError(OutputError):
    code = "write_failed"


# --- settings and chains -----------------------------------------------------------------------

class ParameterError(ReaMasterError):
    """A processor or command parameter is out of range or of the wrong kind."""

    code = "bad_parameter"


class ProfileError(ParameterError):
    """A style profile file is malformed, of an unknown version or names an unknown style."""

    code = "bad_profile"


class ChainError(ReaMasterError):
    """A chain document is malformed, of an unknown version or names an unknown processor."""

    code = "bad_chain"


class TargetUnreachableError(ReaMasterError):
    """The loudness target cannot be met at the ceiling; the message says what was reached."""

    code = "target_unreachable"


class CodecError(ReaMasterError):
    """A lossy encoder or decoder used for the codec-safety check failed."""

    code = "codec_failed"


class CancelledError(ReaMasterError):
    """A job was cancelled through its progress callback."""

    code = "cancelled"
