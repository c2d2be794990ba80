# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gfp_flags: the same tables as the module, and clear errors for bad input."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter.gfp_flags import FilterModule


gfp_flags = FilterModule().filters()["gfp_flags"]


@pytest.mark.parametrize("mode,release,expected", [
    ("0x250", "3.10.0-1160.el7.x86_64", ["GFP_NOFS", "__GFP_NOWARN"]),
    (0xd0, "2.6.32-754.el6.x86_64", ["GFP_KERNEL"]),
    ("mode:0xd0", "3.10.0", ["GFP_KERNEL"]),
    (3264, "6.1.0-18-amd64", ["GFP_KERNEL"]),
    ("0x2d40", "5.18.0", ["GFP_NOFS", "__GFP_NOWARN", "__GFP_ZERO"]),
])
def test_gfp_flags(mode, release, expected):
    assert gfp_flags(mode, release) == expected


@pytest.mark.parametrize("mode,release,message", [
    ("0xzz", "6.1.0", "hex string"),
    (-4, "6.1.0", "negative"),
    ("0x250", "", "kernel_release is required"),
    ("0x250", None, "kernel_release is required"),
    ("0x250", "linux", "not a kernel release"),
])
def test_gfp_flags_errors(mode, release, message):
    with pytest.raises(AnsibleFilterError) as info:
        gfp_flags(mode, release)
    assert message in str(info.value)
