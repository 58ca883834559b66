"""Stand-in for REAPER's generated ``reaper_python.py`` (REAPER_API.md 1, 8.1).

The helpers below are written as REAPER's generator writes them; the ``RPR_*`` wrappers are
generated from the C signatures in :mod:`.api` and call the implementations through real C
function addresses in ``_ft``. Import it only through :func:`standin.install`.
"""

import re
from ctypes import *  # noqa: F401,F403 (the generated wrappers use the bare ctypes names)
from ctypes import CFUNCTYPE, c_byte, c_char_p, c_uint64, create_string_buffer

from . import api as _api

# lowercase rpr_ functions are for internal use

_ft = {}


def rpr_initft(ft):
    if (len(_ft) == 0):
        _ft.update(ft)


def rpr_getfp(fn):
    return _ft[fn]


def rpr_packp(t, v):
    m = re.match(r'^\((\w+\*|HWND)\)0x([0-9A-F]+)$', str(v))
    if (m != None):  # noqa: E711
        (_t, _v) = m.groups()
        if (_t == t or t == 'void*'):
            a = int(_v[:8], 16)
            b = int(_v[8:], 16)
            p = c_uint64((a << 32) | b).value
            if (RPR_ValidatePtr(p, t)):
                return p
    return 0


def rpr_unpackp(t, v):
    if (v == None):  # noqa: E711
        v = 0
    a = int(v >> 32)
    b = int(v & 0xFFFFFFFF)
    return '(%s)0x%08X%08X' % (t, a, b)


def RPR_ValidatePtr(p, t):
    a = _ft['ValidatePtr']
    f = CFUNCTYPE(c_byte, c_uint64, c_char_p)(a)
    return f(c_uint64(p), rpr_packsc(t))


def rpr_packsc(v):
    return c_char_p(str(v).encode("UTF-8"))


def rpr_packs(v):
    MAX_STRBUF = 4 * 1024 * 1024
    return create_string_buffer(str(v).encode("UTF-8"), MAX_STRBUF)


def rpr_unpacks(v):
    return str(v.value.decode())


_generated_rpr_packp = rpr_packp  # reapy replaces rpr_packp on import (without ValidatePtr)

_ft_built, _source = _api.B.build()
rpr_initft(_ft_built)
exec(compile(_source, "<reaper_python generated>", "exec"), globals())
del _ft_built
