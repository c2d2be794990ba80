# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one byte formatter every message, explanation and report uses."""

from __future__ import annotations

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._units import GIB, KIB, MIB, format_bytes, format_mib


@pytest.mark.parametrize("value, text", [
    (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (32768, "32 KiB"), (5 * MIB, "5 MiB"),
    (68.3 * MIB, "68.3 MiB"), (3 * GIB // 2, "1.50 GiB"), (3 * GIB, "3 GiB"), (int(13.25 * GIB), "13.25 GiB"),
    (5 * 1024 * GIB, "5 TiB"), (5 * 1024 ** 5, "5120 TiB"), (-2048, "-2 KiB"), (-1536 * MIB, "-1.50 GiB"),
    (None, "unknown"), (1.5 * KIB, "1.5 KiB"),
])
def test_format_bytes(value, text):
    assert format_bytes(value) == text


def test_format_bytes_none_text_is_the_callers():
    assert format_bytes(None, none="-") == "-"


@pytest.mark.parametrize("value, signed, text", [(812 * MIB, False, "812 MiB"), (96 * MIB, True, "+96 MiB"),
                                                 (-3 * MIB, True, "-3 MiB"), (0, True, "+0 MiB")])
def test_format_mib(value, signed, text):
    assert format_mib(value, signed=signed) == text
