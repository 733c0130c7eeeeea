"""bech32 (BIP 173) as age uses it for keys: ``age1...`` recipients and
``AGE-SECRET-KEY-1...`` identities (without BIP 173's 90-character limit)."""

from __future__ import annotations

from collections.abc import Sequence

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | Sequence[int], source: int, target: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    for value in data:
        acc = (acc << source) | value
        bits += source
        while bits >= target:
            bits -= target
            out.append((acc >> bits) & ((1 << target) - 1))
    if pad and bits:
        out.append((acc << (target - bits)) & ((1 << target) - 1))
    elif not pad and (bits >= source or (acc << (target - bits)) & ((1 << target) - 1)):
        raise ValueError("bad padding")
    return out


def encode(hrp: str, data: bytes) -> str:
    """``data`` as bech32 with human-readable part ``hrp`` (lower case)."""
    values = _convert(data, 8, 5, True)
    poly = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode(text: str, hrp: str) -> bytes:
    """The data of bech32 ``text`` whose human-readable part is ``hrp``; ValueError if not."""
    lowered = text.lower()
    if text not in (lowered, text.upper()):
        raise ValueError("mixed case")
    head, sep, tail = lowered.rpartition("1")
    if not sep or head != hrp.lower() or len(tail) < 6 or any(c not in _CHARSET for c in tail):
        raise ValueError("not bech32")
    values = [_CHARSET.index(c) for c in tail]
    if _polymod([*_hrp_expand(head), *values]) != 1:
        raise ValueError("bad checksum")
    return bytes(_convert(values[:-6], 5, 8, False))
