"""gguf_io.py - a minimal GGUF v3 writer and reader for the demo family.

Owns the byte layout of the family's .gguf files (written from scratch for
this project; it follows the published GGUF v3 format):

  header   "GGUF", u32 version=3, u64 n_tensors, u64 n_kv
  kv       n_kv x (string key, u32 type, value)
  infos    n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type,
           u64 offset relative to the data section)
  padding  to general.alignment (32)
  data     each tensor at its offset, every offset a multiple of 32

Strings are u64 length + UTF-8 bytes, little-endian throughout. ne[0] is the
fastest-varying dimension, so a torch (rows, cols) matrix has ne = (cols,
rows). Only F32 (type 0) and F16 (type 1) tensors are used here.
"""
import struct

import numpy as np

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, \
    T_U64, T_I64, T_F64 = range(13)
GGML_F32, GGML_F16 = 0, 1
ALIGN = 32

_SCALAR = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I",
           T_I32: "<i", T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q",
           T_F64: "<d"}


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(vtype, v):
    if vtype == T_STR:
        return _str(v)
    if vtype == T_ARR:
        etype, items = v
        out = [struct.pack("<IQ", etype, len(items))]
        out.extend(_value(etype, x) for x in items)
        return b"".join(out)
    return struct.pack(_SCALAR[vtype], v)


def write(path, kvs, tensors):
    """kvs: list of (key, type, value); array values are (elem_type, list).
    tensors: list of (name, np.ndarray float32/float16), numpy shape order
    (slowest first) -- reversed into GGUF ne order here."""
    head = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kvs))]
    for k, t, v in kvs:
        head.append(_str(k) + struct.pack("<I", t) + _value(t, v))
    off, blobs = 0, []
    for name, a in tensors:
        gt = GGML_F16 if a.dtype == np.float16 else GGML_F32
        a = np.ascontiguousarray(a, dtype=np.float16 if gt else np.float32)
        ne = list(reversed(a.shape))
        head.append(_str(name) + struct.pack("<I", len(ne)) +
                    struct.pack("<%dQ" % len(ne), *ne) +
                    struct.pack("<IQ", gt, off))
        blob = a.tobytes()
        pad = (-len(blob)) % ALIGN
        blobs.append(blob + b"\0" * pad)
        off += len(blob) + pad
    h = b"".join(head)
    h += b"\0" * ((-len(h)) % ALIGN)
    with open(path, "wb") as f:
        f.write(h)
        for b in blobs:
            f.write(b)


class Reader:
    """Parses a GGUF file into .kv (key -> python value) and .tensors
    (name -> numpy array in numpy shape order, i.e. ne reversed)."""

    def __init__(self, path):
        self.buf = open(path, "rb").read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError("%s: not a GGUF file" % path)
        self.pos = 4
        ver, nt, nkv = self._u("<IQQ")
        if ver != 3:
            raise ValueError("%s: GGUF version %d, want 3" % (path, ver))
        self.kv = {}
        for _ in range(nkv):
            k = self._s()
            (t,) = self._u("<I")
            self.kv[k] = self._val(t)
        infos = []
        for _ in range(nt):
            name = self._s()
            (nd,) = self._u("<I")
            ne = self._u("<%dQ" % nd)
            gt, off = self._u("<IQ")
            infos.append((name, ne, gt, off))
        align = self.kv.get("general.alignment", ALIGN)
        base = self.pos + (-self.pos) % align
        self.tensors = {}
        for name, ne, gt, off in infos:
            dt = {GGML_F32: np.float32, GGML_F16: np.float16}[gt]
            n = int(np.prod(ne))
            a = np.frombuffer(self.buf, dtype=dt, count=n, offset=base + off)
            self.tensors[name] = a.reshape(tuple(reversed(ne)))

    def _u(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def _s(self):
        (n,) = self._u("<Q")
        s = self.buf[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return s

    def _val(self, t):
        if t == T_STR:
            return self._s()
        if t == T_ARR:
            et, n = self._u("<IQ")
            return [self._val(et) for _ in range(n)]
        return self._u(_SCALAR[t])[0]
