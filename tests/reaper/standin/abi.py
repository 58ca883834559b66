"""The C boundary of the stand-in: C signatures, real ctypes callbacks, generated ``RPR_*`` wrappers.

REAPER's ``reaper_python.py`` calls every API function through ``_ft[name]``, a raw C function
address, with ctypes (REAPER_API.md 1.2/1.3). The stand-in does the same for real: each
implementation is registered with its C signature (as written in ``reaper_plugin_functions.h``),
wrapped in a ctypes callback whose address goes into ``_ft``, and the Python-side ``RPR_<Name>``
wrapper is generated as source text by the same rules REAPER's generator uses. So argument
marshalling (``c_int(1.5)`` raises TypeError, strings are 4 MiB buffers whose in-value is the initial
content, bools come back as int 0/1) and tuple shapes are those of the real module.
"""

from __future__ import annotations

import ctypes as ct
import re
import sys
import traceback
from dataclasses import dataclass
from typing import Callable

MAX_STRBUF = 4 * 1024 * 1024

_PRIMS = {"int": ct.c_int, "double": ct.c_double, "bool": ct.c_byte}
_OUT_PRIMS = {"int*": ct.c_int, "double*": ct.c_double, "bool*": ct.c_byte}
_SIG_RE = re.compile(r"^\s*(?P<ret>[\w ]+\*?)\s+(?P<name>\w+)\((?P<args>.*)\)\s*$")


@dataclass(frozen=True)
class Param:
    ctype: str   # "int", "double", "bool", "const char*", "char*", "int*", "double*", "bool*", "void*", "<Type>*"
    name: str

    @property
    def kind(self) -> str:
        if self.ctype in _PRIMS:
            return "prim"
        if self.ctype == "const char*":
            return "instr"
        if self.ctype == "char*":
            return "outstr"
        if self.ctype in _OUT_PRIMS:
            return "outprim"
        return "ptr"


@dataclass(frozen=True)
class Signature:
    ret: str
    name: str
    params: tuple[Param, ...]

    @property
    def has_outputs(self) -> bool:
        return any(p.kind in ("outstr", "outprim") for p in self.params)


def parse_signature(text: str) -> Signature:
    m = _SIG_RE.match(text)
    if not m:
        raise ValueError(f"bad C signature: {text!r}")
    params = []
    args = m.group("args").strip()
    if args and args != "void":
        for a in args.split(","):
            a = " ".join(a.replace("*", "* ").split())
            ctype, pname = a.rsplit(" ", 1)
            params.append(Param(ctype.replace(" *", "*"), pname))
    return Signature(m.group("ret").replace(" *", "*").strip(), m.group("name"), tuple(params))


# --- generated Python side (text, exec'd into the reaper_python module) ---------------------------

def _ctype_expr(ctype: str, for_return: bool = False) -> str:
    if ctype == "void":
        return "None"
    if ctype in _PRIMS:
        return {"int": "c_int", "double": "c_double", "bool": "c_byte"}[ctype]
    if ctype in ("const char*", "char*"):
        return "c_char_p"
    if ctype in _OUT_PRIMS:
        return "c_void_p"
    return "c_uint64"


def generate_wrapper(sig: Signature) -> str:
    """Python source of ``RPR_<name>`` exactly in the shape REAPER's generator writes it."""
    ps = [f"p{i}" for i in range(len(sig.params))]
    argtypes = [_ctype_expr(sig.ret, True)] + [_ctype_expr(p.ctype) for p in sig.params]
    packs, call, outs = [], [], []
    for i, p in enumerate(sig.params):
        k = p.kind
        if k == "prim":
            packs.append(f"{_ctype_expr(p.ctype)}(p{i})")
            call.append(f"t[{i}]")
            outs.append(f"p{i}")
        elif k == "instr":
            packs.append(f"rpr_packsc(p{i})")
            call.append(f"t[{i}]")
            outs.append(f"p{i}")
        elif k == "outstr":
            packs.append(f"rpr_packs(p{i})")
            call.append(f"t[{i}]")
            outs.append(f"rpr_unpacks(t[{i}])")
        elif k == "outprim":
            c = {"int*": "c_int", "double*": "c_double", "bool*": "c_byte"}[p.ctype]
            conv = "float" if p.ctype == "double*" else "int"
            packs.append(f"{c}(p{i})")
            call.append(f"byref(t[{i}])")
            outs.append(f"{conv}(t[{i}].value)")
        else:
            packs.append(f"rpr_packp('{p.ctype}',p{i})")
            call.append(f"t[{i}]")
            outs.append(f"p{i}")
    lines = [f"def RPR_{sig.name}({','.join(ps)}):",
             f"  a=_ft['{sig.name}']",
             f"  f=CFUNCTYPE({','.join(argtypes)})(a)"]
    if packs:
        lines.append(f"  t=({','.join(packs)}{',' if len(packs) == 1 else ''})")
    call_s = f"f({','.join(call)})"
    if sig.ret == "void":
        lines.append(f"  {call_s}")
        if sig.has_outputs:
            lines.append(f"  return ({','.join(outs)})")
        return "\n".join(lines) + "\n"
    lines.append(f"  r={call_s}")
    if sig.ret == "const char*" or sig.ret == "char*":
        rexpr = "str(r.decode())"
    elif sig.ret in _PRIMS:
        rexpr = "r"
    else:
        rexpr = f"rpr_unpackp('{sig.ret}',r)"
    if sig.has_outputs:
        lines.append(f"  return ({rexpr},{','.join(outs)})")
    else:
        lines.append(f"  return {rexpr}")
    return "\n".join(lines) + "\n"


# --- C side: ctypes callbacks around Python implementations ---------------------------------------

class StrBuf:
    """A ``char*`` output argument: ``value`` reads the C string; assigning writes it, truncated
    to ``size - 1`` bytes like REAPER's ``lstrcpyn`` (nothing is written when ``size <= 0``)."""

    def __init__(self, addr: int | None, size: int) -> None:
        self.addr, self.size = addr, size

    @property
    def value(self) -> str:
        if not self.addr:
            return ""
        return ct.string_at(self.addr).decode("utf-8", errors="replace")

    @value.setter
    def value(self, text: str) -> None:
        if not self.addr or self.size <= 0:
            return
        data = str(text).encode("utf-8")[: self.size - 1]
        while data:  # never cut a UTF-8 sequence in half
            try:
                data.decode("utf-8")
                break
            except UnicodeDecodeError:
                data = data[:-1]
        ct.memmove(self.addr, data + b"\0", len(data) + 1)


class Ref:
    """An ``int*``/``double*``/``bool*`` in-out argument."""

    def __init__(self, addr: int | None, ctype) -> None:
        self._cell = ctype.from_address(addr) if addr else None

    @property
    def value(self):
        return None if self._cell is None else self._cell.value

    @value.setter
    def value(self, v) -> None:
        if self._cell is not None:
            self._cell.value = type(self._cell.value)(v)


@dataclass
class Binding:
    sig: Signature
    impl: Callable
    wrap: bool = True
    callback: object = None
    address: int = 0


class Boundary:
    """Registry of implementations; builds ``_ft`` and the wrapper source.

    ``resolve(addr, ctype)`` turns an incoming pointer into a model object (``None`` = NULL/unknown),
    ``to_address(obj)`` the reverse; both are supplied by the model. Exceptions raised by an
    implementation are recorded in ``errors`` (the C side cannot raise) and the call returns 0.
    """

    def __init__(self) -> None:
        self.bindings: dict[str, Binding] = {}
        self.resolve: Callable[[int, str], object] = lambda addr, ctype: None
        self.to_address: Callable[[object], int] = lambda obj: 0
        self.errors: list[str] = []
        self._ret_bufs: dict[str, ct.Array] = {}

    def api(self, signature: str, *, wrap: bool = True):
        sig = parse_signature(signature)

        def deco(fn):
            self.bindings[sig.name] = Binding(sig, fn, wrap)
            return fn
        return deco

    def _adapter(self, b: Binding):
        sig = b.sig
        sizes = {p.name: i for i, p in enumerate(sig.params)}

        def call(*raw):
            try:
                args = []
                for i, p in enumerate(sig.params):
                    v = raw[i]
                    k = p.kind
                    if k == "prim":
                        args.append(bool(v) if p.ctype == "bool" else v)
                    elif k == "instr":
                        args.append(None if v is None else v.decode("utf-8", errors="replace"))
                    elif k == "outstr":
                        j = sizes.get(p.name + "_sz")
                        args.append(StrBuf(v, raw[j] if j is not None else MAX_STRBUF))
                    elif k == "outprim":
                        args.append(Ref(v, _OUT_PRIMS[p.ctype]))
                    elif p.ctype == "void*":
                        args.append(v or 0)
                    else:
                        args.append(self.resolve(v or 0, p.ctype))
                r = b.impl(*args)
                return self._ret(sig, r)
            except Exception:  # the C side cannot raise: record, return 0 like a crash-free no-op
                self.errors.append(f"{sig.name}: {traceback.format_exc()}")
                print(self.errors[-1], file=sys.stderr)
                return None if sig.ret == "void" else 0
        return call

    def _ret(self, sig: Signature, r):
        if sig.ret == "void":
            return None
        if sig.ret == "bool":
            return 1 if r else 0
        if sig.ret == "int":
            return int(r or 0)
        if sig.ret == "double":
            return float(r or 0.0)
        if sig.ret in ("const char*", "char*"):
            data = ("" if r is None else str(r)).encode("utf-8")
            buf = ct.create_string_buffer(data)
            self._ret_bufs[sig.name] = buf  # valid until the next call, like REAPER's static buffers
            return ct.addressof(buf)
        return self.to_address(r) if r is not None else 0

    def build(self) -> tuple[dict[str, int], str]:
        """Create the callbacks; return (``_ft``, generated wrapper source)."""
        ft, src = {}, []
        for name, b in sorted(self.bindings.items()):
            if b.callback is None:
                restype = {"void": None, "int": ct.c_int, "double": ct.c_double, "bool": ct.c_byte,
                           "const char*": ct.c_void_p, "char*": ct.c_void_p}.get(b.sig.ret, ct.c_uint64)
                argtypes = []
                for p in b.sig.params:
                    if p.kind == "prim":
                        argtypes.append(_PRIMS[p.ctype])
                    elif p.kind == "instr":
                        argtypes.append(ct.c_char_p)
                    elif p.kind in ("outstr", "outprim"):
                        argtypes.append(ct.c_void_p)
                    else:
                        argtypes.append(ct.c_uint64)
                b.callback = ct.CFUNCTYPE(restype, *argtypes)(self._adapter(b))
                b.address = ct.cast(b.callback, ct.c_void_p).value
            ft[name] = b.address
            if b.wrap:
                src.append(generate_wrapper(b.sig))
        return ft, "\n".join(src)
