# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Numbers read from kernel text (/proc files, captures), bounded before they are converted.

Private to the collection. The kernel prints its counters with ``%lu``/``%llu``/``%ld``/``%d``: at
most 20 ASCII digits and a value that fits 64 bits. Text from a capture or a crafted tree can hold
anything else: a 5,000-digit number (past Python's 4,300-digit ``int()`` limit on 3.11+, and
quadratic to convert on older Pythons), digits of other scripts that ``\\d`` and ``int()`` accept
(``"٣"``), or ``"²"``, which ``str.isdigit()`` calls a digit and ``int()`` rejects. Every parser
converts through ``parse_count`` / ``parse_signed`` so such a value is refused the same way
everywhere, with a ``NumberError`` the parser turns into a bad line (optional file: warning, line
skipped) or a bad file (required file: ProcFileError naming file and line).
"""


import re
import typing as t

# 2**64 - 1 has 20 digits: the widest value the kernel's %lu/%llu prints on any architecture.
MAX_DIGITS = 20
MAX_UNSIGNED = (1 << 64) - 1
MIN_SIGNED = -(1 << 63)

# ASCII digits only: Python's \d and int() also take other scripts' digits, which the kernel never writes.
_UNSIGNED = re.compile(r"[0-9]+\Z")
_SIGNED = re.compile(r"-?[0-9]+\Z")


class NumberError(ValueError):
    """A number in kernel text that the kernel cannot have written (not ASCII digits, or past 64 bits)."""


def _shown(text: str) -> str:
    # A 5,000-digit value must not make a 5,000-character message.
    return repr(text) if len(text) <= 32 else "%r... (%d characters)" % (text[:24], len(text))


def _parse(text: str, what: str, pattern: t.Pattern, low: int) -> int:
    digits = len(text) - text.startswith("-")
    if pattern.match(text) is None:
        raise NumberError("%s %s is not a number of ASCII digits" % (what, _shown(text)))
    if digits > MAX_DIGITS:
        # Refused before int(): converting 5,000 digits raises on Python 3.11+ and is quadratic before.
        raise NumberError("%s %s has %d digits; the kernel prints at most %d (64 bits)"
                          % (what, _shown(text), digits, MAX_DIGITS))
    value = int(text)
    if not low <= value <= MAX_UNSIGNED:
        raise NumberError("%s %s is outside 64 bits, more than the kernel can print" % (what, _shown(text)))
    return value


def parse_count(text: str, what: str = "number") -> int:
    """An unsigned kernel value (``%lu``): ASCII digits, 0 .. 2**64 - 1. Raises NumberError."""
    return _parse(text, what, _UNSIGNED, 0)


def parse_signed(text: str, what: str = "number") -> int:
    """A value that may be negative (``%ld``, a drifted per-cpu counter): -2**63 .. 2**64 - 1. Raises NumberError."""
    return _parse(text, what, _SIGNED, MIN_SIGNED)


def parse_counts(fields: t.Iterable[str], what: str = "number") -> t.List[int]:
    """``parse_count`` over whitespace-split fields; the first bad one raises NumberError."""
    return [parse_count(field, what) for field in fields]
