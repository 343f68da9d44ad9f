"""Go formatting semantics needed to reproduce Prometheus's text output byte for byte.

Alert annotations are rendered by Go's ``text/template`` and ``fmt``; promtool prints values with
``strconv.FormatFloat``. Python's ``repr``/``%g`` differ in small ways (``1e+06`` vs
``1000000.0``, ``NaN`` vs ``nan``, ``+Inf`` vs ``inf``), and on-call engineers compare texts, so
this module implements the Go rules: shortest round-trip digits, the exponent thresholds of
``%v``, two-digit exponents, Go's quoting, and the ``printf`` verbs alert templates use.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Sequence

__all__ = [
    "go_quote",
    "go_float_v",
    "go_float_E",
    "go_float_prec",
    "go_sprint",
    "go_sprintf",
    "go_type_name",
    "GoTemplateValue",
    "GoStringer",
    "go_parse_int",
    "go_labels_string",
]


class GoTemplateValue:
    """Base of template values that print like a Go struct (e.g. query-result samples)."""

    def go_string(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class GoStringer(GoTemplateValue):
    """A value with a Go ``String`` method (``time.Time``, ``time.Duration``): ``fmt`` prints
    ``go_string()`` for ``%v %s %q %x %X`` and the value itself for other verbs."""


def go_quote(s: str) -> str:
    """Return ``s`` quoted like Go's ``strconv.Quote`` (used for ``%q`` and label printing)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _shortest(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(v)`` (no trailing zeros) and the decimal
    point position ``dp`` such that ``abs(v) == 0.<digits> * 10**dp``."""
    if v == 0:
        return "0", 1
    sign, digits, exponent = Decimal(repr(abs(v))).as_tuple()
    ds = "".join(map(str, digits)).lstrip("0") or "0"
    # Recompute exponent after stripping leading zeros (only "0.x" inputs have them).
    lead = len(digits) - len(ds)
    nd_all = len(digits)
    dp = nd_all + int(exponent) - lead
    ds_stripped = ds.rstrip("0") or "0"
    return ds_stripped, dp


def _exp_str(e: int) -> str:
    sign = "-" if e < 0 else "+"
    e = abs(e)
    return f"{sign}{e:02d}"


def _special(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return None


def go_float_v(v: float) -> str:
    """Format like Go's ``%v`` / ``fmt.Sprint`` of a float64.

    Go uses the shortest round-trip digits and switches to exponent form when the decimal
    exponent is below -4 or at least 6 (``strconv``'s rule for shortest ``%g``).
    Examples: ``1`` -> ``"1"``, ``0.5`` -> ``"0.5"``, ``1e6`` -> ``"1e+06"``,
    ``123456`` -> ``"123456"``, ``1e-05`` -> ``"1e-05"``, NaN -> ``"NaN"``, inf -> ``"+Inf"``.
    """
    sp = _special(v)
    if sp is not None:
        return sp
    neg = v < 0 or (v == 0 and math.copysign(1.0, v) < 0)
    digits, dp = _shortest(v)
    nd = len(digits)
    exp = dp - 1
    if v != 0 and (exp < -4 or exp >= 6):
        body = digits[0] + ("." + digits[1:] if nd > 1 else "") + "e" + _exp_str(exp)
    else:
        body = _fixed(digits, dp, max(nd - dp, 0))
    return ("-" if neg else "") + body


def _fixed(digits: str, dp: int, decimals: int) -> str:
    """Render digits ``0.<digits> * 10**dp`` with ``decimals`` fractional digits (no rounding
    needed: callers pass enough digits)."""
    if dp <= 0:
        intpart = "0"
        frac = "0" * (-dp) + digits
    elif dp >= len(digits):
        intpart = digits + "0" * (dp - len(digits))
        frac = ""
    else:
        intpart = digits[:dp]
        frac = digits[dp:]
    frac = (frac + "0" * decimals)[:decimals]
    return intpart + ("." + frac if decimals > 0 else "")


def go_float_E(v: float) -> str:
    """Format like Go's ``strconv.FormatFloat(v, 'E', -1, 64)`` (promtool's sample printing):
    ``1E+00``, ``6.1E+01``, ``0E+00``, ``NaN``, ``+Inf``."""
    sp = _special(v)
    if sp is not None:
        return sp
    neg = v < 0 or (v == 0 and math.copysign(1.0, v) < 0)
    digits, dp = _shortest(v)
    exp = dp - 1 if v != 0 else 0
    body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "") + "E" + _exp_str(exp)
    return ("-" if neg else "") + body


def go_float_prec(v: float, verb: str, prec: int | None) -> str:
    """Format a float with an explicit verb (``e``, ``E``, ``f``, ``F``, ``g``, ``G``) and
    precision like Go's ``strconv.FormatFloat`` (``None`` precision = Go's default for fmt)."""
    sp = _special(v)
    if sp is not None:
        return sp
    if verb in "gG" and prec is None:
        s = go_float_v(v)
        return s.upper() if verb == "G" else s
    if prec is None:
        prec = 6
    if verb in "gG" and prec == 0:
        prec = 1
    # Python's printf-style rounding and %g trimming match strconv for explicit precisions.
    return f"%.{prec}{verb}" % v


def go_type_name(v: Any) -> str:
    """The Go type name of a template value, as ``fmt`` prints it in ``%!verb(type=value)``."""
    if v is None:
        return "<nil>"
    go_type = getattr(v, "go_type", None)
    if isinstance(go_type, str):
        return go_type
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]string" if all(isinstance(x, str) for x in v.values()) else "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return "*template.sample"


def go_sprint(v: Any, *, top: bool = True) -> str:
    """Format like Go's ``fmt.Sprint`` of one value (``%v``)."""
    if v is None:
        return "<nil>"
    if isinstance(v, GoTemplateValue):
        return v.go_string()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float_v(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k], top=False)}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_sprint(x, top=False) for x in v) + "]"
    return str(v)


def _pad(s: str, flags: str, width: int | None, numeric: bool) -> str:
    """Pad to ``width`` as Go's fmt: ``-`` on the right with spaces, ``0`` on the left with
    zeros (after the sign of a number; text too, as in the Go promtool 2.42 is built with)."""
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags:
        sign = s[0] if numeric and s[:1] in "+- " else ""
        return sign + "0" * (width - len(s)) + s[len(sign):]
    return " " * (width - len(s)) + s


def _sign(s: str, neg: bool, flags: str) -> str:
    if neg:
        return "-" + s
    if "+" in flags:
        return "+" + s
    if " " in flags:
        return " " + s
    return s


def _bad(verb: str, flags: str, width: int | None, prec: int | None, v: Any) -> str:
    """Go's ``badVerb``: the type, and the value printed with ``%v`` and the directive's flags."""
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(v)}={_format_one('v', flags, width, prec, v)})"


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, v: Any) -> str:
    if verb == "T" or (verb == "v" and v is None):
        s = go_type_name(v)
        return _pad(s[:prec] if prec is not None else s, flags, width, False)
    if v is None:
        return _bad(verb, flags, width, prec, v)
    if isinstance(v, GoStringer) and verb in "vsqxX":
        return _format_one("s" if verb == "v" else verb, flags, width, prec, v.go_string())
    if verb in "vs" and not (verb == "s" and isinstance(v, (int, float, bool)) and not isinstance(v, str)):
        if verb == "v" and isinstance(v, float):
            return _format_float("g", flags, width, prec, v)
        if verb == "v" and isinstance(v, int) and not isinstance(v, bool):
            return _format_int("d", flags, width, prec, v)
        s = go_sprint(v)
        if prec is not None and isinstance(v, str):
            s = s[:prec]
        return _pad(s, flags, width, False)
    if verb == "q":
        if isinstance(v, str):
            return _pad(go_quote(v), flags, width, False)
        return _bad(verb, flags, width, prec, v)
    if verb == "t":
        if isinstance(v, bool):
            return _pad("true" if v else "false", flags, width, False)
        return _bad(verb, flags, width, prec, v)
    if verb in "dboxXc":
        if isinstance(v, int) and not isinstance(v, bool):
            return _format_int(verb, flags, width, prec, v)
        if verb in "xX" and isinstance(v, str):
            s = v.encode().hex()
            return _pad(s.upper() if verb == "X" else s, flags, width, False)
        if verb in "xX" and isinstance(v, float):
            return _format_float(verb, flags, width, prec, v)
        return _bad(verb, flags, width, prec, v)
    if verb in "eEfFgG":
        if isinstance(v, float):
            return _format_float(verb, flags, width, prec, v)
        return _bad(verb, flags, width, prec, v)
    return _bad(verb, flags, width, prec, v)


def _format_int(verb: str, flags: str, width: int | None, prec: int | None, v: int) -> str:
    """Go's ``fmtInteger``: ``%05d`` pads the digits (before any ``0x`` prefix) with zeros, an
    explicit precision turns zero padding off, and ``%.0d`` of 0 prints only the padding."""
    if verb == "c":  # Go writes an invalid code point as U+FFFD (chr() raised out of the evaluator)
        return _pad(chr(v) if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF else "\ufffd", flags, width, False)
    neg = v < 0
    if prec == 0 and v == 0:
        return " " * (width or 0)
    if prec is None:
        prec = 0
        if "0" in flags and "-" not in flags and width is not None:
            prec = width - (1 if neg or "+" in flags or " " in flags else 0)
    s = format(abs(v), verb).rjust(prec, "0")
    if "#" in flags:
        if verb == "b":
            s = "0b" + s
        elif verb == "o" and s[0] != "0":
            s = "0" + s
        elif verb in "xX":
            s = "0" + verb + s
    return _pad(_sign(s, neg, flags), flags.replace("0", ""), width, False)


def _format_float(verb: str, flags: str, width: int | None, prec: int | None, v: float) -> str:
    sp = _special(v)
    if sp is not None:
        # Go keeps the sign of infinities and drops NaN's unless '+' or ' ' asks for one.
        if sp == "NaN":
            sp = ("+" if "+" in flags else " " if " " in flags else "") + sp
        return _pad(sp, flags.replace("0", ""), width, False)  # not a number: no zeros
    neg = v < 0 or (v == 0 and math.copysign(1.0, v) < 0)
    if verb in "xX":
        body = go_float_hex(abs(v), verb, prec)
        if "#" in flags:
            body = _sharp_hex(body, verb, prec)
    else:
        body = go_float_prec(abs(v), verb, prec)
    return _pad(_sign(body, neg, flags), flags, width, True)


def go_float_hex(v: float, verb: str, prec: int | None) -> str:
    """Go's ``strconv.FormatFloat(v, 'x', prec, 64)`` of a finite ``v >= 0``: ``0x1.8p+00``;
    a precision rounds the hexadecimal fraction half to even."""
    digits = "0123456789ABCDEF" if verb == "X" else "0123456789abcdef"
    mask = 2**64 - 1
    if v == 0:
        mant, exp = 0, 0
    else:
        m, e = math.frexp(v)
        mant, exp = int(m * 2**61), e - 1  # leading 1 at bit 60: v == mant / 2**60 * 2**exp
    if prec is not None and prec < 15:
        shift = prec * 4
        extra = (mant << shift) & (2**60 - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 2**59:
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    out = ["0", verb, str((mant >> 60) & 1)]
    mant = (mant << 4) & mask
    if prec is None and mant:
        out.append(".")
        while mant:
            out.append(digits[(mant >> 60) & 15])
            mant = (mant << 4) & mask
    elif prec:
        out.append(".")
        for _ in range(prec):
            out.append(digits[(mant >> 60) & 15])
            mant = (mant << 4) & mask
    out.append(("P" if verb == "X" else "p") + ("-" if exp < 0 else "+") + f"{abs(exp):02d}")
    return "".join(out)


def _sharp_hex(num: str, verb: str, prec: int | None) -> str:
    """Go's ``%#x`` of a float: always a point, and for ``x`` (not ``X``) trailing zeros up to the
    precision (6 by default), where fmt counts the ``x`` of ``0x`` as a digit."""
    digits = (6 if prec is None else prec) if verb == "x" else 0
    p = num.find("p" if verb == "x" else "P")
    mantissa, tail = num[:p], num[p:]
    seen_nonzero = False
    for c in mantissa:
        if c != ".":
            seen_nonzero = seen_nonzero or c != "0"
            digits -= seen_nonzero
    if "." not in mantissa:
        mantissa += "."
    return mantissa + "0" * max(digits, 0) + tail


def _parse_num(fmt: str, i: int, end: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: digits from ``i``; (None, end) when there are none or too many."""
    num, start = 0, i
    while i < end and "0" <= fmt[i] <= "9":
        if num > 1_000_000:
            return None, end
        num = num * 10 + ord(fmt[i]) - 48
        i += 1
    return (num if i > start else None), i


def _int_arg(args: Sequence[Any], argi: int) -> tuple[int | None, int]:
    """Go's ``intFromArg``: a ``*`` width or precision; None when it is not an integer."""
    if argi >= len(args):
        return None, argi
    v = args[argi]
    ok = isinstance(v, int) and not isinstance(v, bool) and -1_000_000 <= v <= 1_000_000
    return (int(v) if ok else None), argi + 1


class _Directive:
    """Go's printf state for one directive: flags, width, precision, argument cursor."""

    def __init__(self, fmt: str, args: Sequence[Any], argi: int) -> None:
        self.fmt, self.args, self.argi = fmt, args, argi
        self.good_index = True
        self.reordered = False
        self.out: list[str] = []

    def arg_index(self, i: int) -> tuple[int, bool]:
        """Go's ``argNumber``: an explicit ``[n]`` at ``i`` moves the cursor to argument n."""
        fmt = self.fmt
        if i >= len(fmt) or fmt[i] != "[":
            return i, False
        self.reordered = True
        close = fmt.find("]", i + 1) if len(fmt) - i >= 3 else -1
        if close < 0:
            self.good_index = False
            return i + 1, False
        n, j = _parse_num(fmt, i + 1, close)
        if n is None or j != close:
            self.good_index = False
            return close + 1, False
        if 1 <= n <= len(self.args):
            self.argi = n - 1
        else:
            self.good_index = False
        return close + 1, True


def go_sprintf(fmt: str, args: Sequence[Any]) -> str:
    """Format like Go's ``fmt.Sprintf`` for the verbs alert templates use.

    Supported verbs: ``%v %s %q %d %b %o %x %X %c %t %e %E %f %F %g %G %T %%`` with the flags
    ``+ - # 0 space``, width and precision, ``*`` and explicit argument indexes (``%[2]d``).
    Type mismatches, missing and extra arguments, bad indexes and widths are reported inline
    exactly as Go does (``%!d(float64=1.5)``, ``%!s(MISSING)``, ``%!(EXTRA ...)``,
    ``%!d(BADINDEX)``), because Prometheus renders those into the alert text too.
    """
    out: list[str] = []
    end = len(fmt)
    state = _Directive(fmt, args, 0)
    i = 0
    while i < end:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        state.good_index = True
        flags = ""
        while i < end and fmt[i] in "#0+- ":
            flags += fmt[i]
            i += 1
        i, after_index = state.arg_index(i)
        width: int | None = None
        if i < end and fmt[i] == "*":
            i += 1
            width, state.argi = _int_arg(args, state.argi)
            if width is None:
                out.append("%!(BADWIDTH)")
            elif width < 0:
                width, flags = -width, flags + "-"
            after_index = False
        else:
            width, i = _parse_num(fmt, i, end)
            if after_index and width is not None:  # "%[3]2d"
                state.good_index = False
        prec: int | None = None
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:  # "%[3].2d"
                state.good_index = False
            i, after_index = state.arg_index(i)
            if i < end and fmt[i] == "*":
                i += 1
                prec, state.argi = _int_arg(args, state.argi)
                if prec is not None and prec < 0:
                    prec = None
                if prec is None:
                    out.append("%!(BADPREC)")
                after_index = False
            else:
                prec, i = _parse_num(fmt, i, end)
                prec = prec or 0
        if not after_index:
            i, after_index = state.arg_index(i)
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not state.good_index:
            out.append(f"%!{verb}(BADINDEX)")
        elif state.argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":  # Go keeps '+' for struct field names only
                flags = flags.replace("+", "")
            out.append(_format_one(verb, flags, width, prec, args[state.argi]))
            state.argi += 1
    if not state.reordered and state.argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type_name(a)}={go_sprint(a)}" for a in args[state.argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def go_parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``: base prefixes, legacy leading-zero octal, and
    underscores only after a base prefix."""
    sign = ""
    body = text
    if body[:1] in "+-":
        sign, body = body[0], body[1:]
    low = body.lower()
    try:
        if low.startswith(("0x", "0o", "0b")):
            v = int(body, 0)
        elif "_" in body:
            return None
        elif len(body) > 1 and body.startswith("0"):
            if not re.fullmatch(r"0[0-7]+", body):
                return None
            v = int(body, 8)
        elif re.fullmatch(r"[0-9]+", body):
            v = int(body)
        else:
            return None
    except ValueError:
        return None
    v = -v if sign == "-" else v
    if not -(2**63) <= v < 2**63:
        return None
    return v


def go_labels_string(labels: "dict[str, str] | Sequence[tuple[str, str]]") -> str:
    """Prometheus's ``labels.Labels.String()``: ``{a="1", b="x"}`` sorted by name."""
    items = sorted(labels.items()) if isinstance(labels, dict) else sorted(labels)
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in items) + "}"
