# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Units: the one home for byte sizes and how the collection prints them (KiB, MiB, GiB as `free -h` does).

Private to the collection. Module-side code: Python 3.6+.
"""

import typing as t

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(value: t.Optional[t.Union[int, float]], none: str = "unknown") -> str:
    """1536 -> '1.5 KiB', 32768 -> '32 KiB', 1.5 GiB -> '1.50 GiB', -2048 -> '-2 KiB', None -> ``none``.

    Whole numbers print without decimals; otherwise GiB and TiB get two decimals (a 0.01 GiB step is 10 MiB,
    the resolution an operator reads off `free -h`), KiB and MiB one.
    """
    if value is None:
        return none
    sign = "-" if value < 0 else ""
    size = abs(float(value))
    index = 0
    while size >= 1024 and index < len(_UNITS) - 1:
        size /= 1024.0
        index += 1
    unit = _UNITS[index]
    if unit == "B":
        return "%s%d B" % (sign, size)
    if size == int(size):
        return "%s%d %s" % (sign, size, unit)
    return "%s%s %s" % (sign, ("%.2f" if unit in ("GiB", "TiB") else "%.1f") % size, unit)


def format_mib(value: t.Union[int, float], signed: bool = False) -> str:
    """Whole MiB, the unit reclaim steps are reported in: '812 MiB', or '+96 MiB' with ``signed``."""
    return ("%+.0f MiB" if signed else "%.0f MiB") % (value / float(MIB))
