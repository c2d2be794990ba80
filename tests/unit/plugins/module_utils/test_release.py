# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one kernel-release parser and osrelease reader."""

from __future__ import annotations

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import (
    parse_release, read_release, require_release)


@pytest.mark.parametrize("text, version", [
    ("3.10.0-1160.el7.x86_64", (3, 10, 0)), ("4.18.0-80.el8.x86_64", (4, 18, 0)), ("6.18", (6, 18, 0)),
    ("6.18.44-fc-v595", (6, 18, 44)), (" 2.6.32-754.el6.x86_64\n", (2, 6, 32)), ("5.10.0-32-amd64", (5, 10, 0)),
    ("", None), ("linux", None), (None, None), (3.10, None), ("1" * 5000 + ".1", None), ("4.", None),
])
def test_parse_release(text, version):
    assert parse_release(text) == version


def test_require_release_says_what_it_expected():
    with pytest.raises(ValueError, match="expected something like 5.10.0-32-amd64"):
        require_release("garbage")


def test_read_release(tmp_path):
    assert read_release(str(tmp_path)) is None
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "osrelease").write_text("5.14.0-362.el9.x86_64\n")
    assert read_release(str(tmp_path)) == "5.14.0-362.el9.x86_64"
    (tmp_path / "sys" / "kernel" / "osrelease").write_text("\n")
    assert read_release(str(tmp_path)) is None
