# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drop-in parsing and rendering (cases/sysctl_dropin.yml)."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import (
    HEADER, dotted_key, is_managed, key_path, logical_lines, parse_line, parse_sysctl_conf, plan_dropin)
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.validation import TRIGGERS

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "sysctl_dropin.yml")
with open(CASES_FILE) as _handle:
    CASES = yaml.safe_load(_handle)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_plan_dropin(case):
    text, persisted, notes = plan_dropin(case["existing"], case["settings"], case["state"], never_persist=TRIGGERS)
    if case["lines"] is None:
        assert text is None
        assert persisted == {}
    else:
        assert text == "\n".join(list(HEADER) + case["lines"]) + "\n"
        assert is_managed(text)
        # What we persist is exactly what a boot-time applier reads back from the text.
        reparsed = {a.key: a.value for a in parse_sysctl_conf(text)[0] if not a.glob and not a.exclude}
        assert persisted == reparsed
        # Idempotent: planning again on our own output changes nothing.
        again, _persisted, again_notes = plan_dropin(text, case["settings"], case["state"], never_persist=TRIGGERS)
        assert again == text and again_notes == []
    for fragment in case.get("notes") or []:
        assert any(fragment in note for note in notes), (fragment, notes)
    if not case.get("notes"):
        assert notes == []


@pytest.mark.parametrize("name,dotted,path", [
    ("vm.min_free_kbytes", "vm.min_free_kbytes", "vm/min_free_kbytes"),
    ("vm/min_free_kbytes", "vm.min_free_kbytes", "vm/min_free_kbytes"),
    ("net/ipv4/conf/eth0.100/forwarding", "net.ipv4.conf.eth0/100.forwarding", "net/ipv4/conf/eth0.100/forwarding"),
    ("net.ipv4.conf.eth0/100.forwarding", "net.ipv4.conf.eth0/100.forwarding", "net/ipv4/conf/eth0.100/forwarding"),
    ("  vm.page-cluster ", "vm.page-cluster", "vm/page-cluster"),
])
def test_key_spellings(name, dotted, path):
    assert dotted_key(name) == dotted
    assert key_path(dotted_key(name)) == path


def test_parse_flags():
    assignments, invalid = parse_sysctl_conf("-vm.a = 1\n-vm.b\nvm.c*=2\n=3\nnoequals\n")
    a, b, c = assignments
    assert (a.key, a.value, a.ignore_failure, a.exclude) == ("vm.a", "1", True, False)
    assert (b.key, b.value, b.exclude) == ("vm.b", None, True)
    assert c.glob and c.value == "2"
    assert invalid == [4, 5]


def test_foreign_file_is_not_managed():
    assert not is_managed("vm.swappiness = 10\n")
    assert not is_managed(None)


@pytest.mark.parametrize("text,systemd,procps", [
    # (line number, text) each applier parses; systemd ends lines at \r and NUL too, procps only at \n.
    ("a = 1\nb = 2\n", [(1, "a = 1"), (2, "b = 2")], [(1, "a = 1\n"), (2, "b = 2\n")]),
    ("a = 1\r\nb = 2", [(1, "a = 1"), (2, "b = 2")], [(1, "a = 1\r\n"), (2, "b = 2")]),
    ("# x\rb = 2\n", [(1, "# x"), (1, "b = 2")], [(1, "# x\rb = 2\n")]),
    ("a = 1\x00b = 2\n", [(1, "a = 1"), (1, "b = 2")], [(1, "a = 1")]),
    ("# x\fb = 2\u2028c\x85d\n", [(1, "# x\fb = 2\u2028c\x85d")], [(1, "# x\fb = 2\u2028c\x85d\n")]),
    ("\n\nx\n", [(1, ""), (2, ""), (3, "x")], [(3, "x\n")]),
])
def test_logical_lines(text, systemd, procps):
    assert logical_lines(text, "systemd") == systemd
    assert logical_lines(text, "procps") == procps


@pytest.mark.parametrize("line,applier,target,value,exclude", [
    ("vm//min_free_kbytes = 5", "systemd", "vm/min_free_kbytes", "5", False),
    ("vm//min_free_kbytes = 5\n", "procps", "vm/min_free_kbytes", "5", False),
    ("vm..swappiness = 5", "systemd", "vm/swappiness", "5", False),
    ("vm.swappiness. = 5", "systemd", "vm/swappiness", "5", False),
    ("vm.swappiness. = 5\n", "procps", None, "5", False),
    ("vm/../vm/swappiness = 5", "systemd", None, "5", False),
    ("vm/../vm/swappiness = 5\n", "procps", "vm/swappiness", "5", False),
    ("- vm.swappiness\n", "procps", " vm/swappiness", None, True),
    ("- vm.swappiness", "systemd", "vm/swappiness", None, True),
    ("--vm.swappiness = 1\n", "procps", "vm/swappiness", "1", False),
    ("\fvm.swappiness = 1\v\n", "procps", "vm/swappiness", "1", False),
    ("\fvm.swappiness = 1\v", "systemd", "\fvm/swappiness", "1\v", False),
    ("vm.min_free_kbytes = 65536 # keep", "systemd", "vm/min_free_kbytes", "65536 # keep", False),
])
def test_parse_line_per_applier(line, applier, target, value, exclude):
    parsed = parse_line(1, line, applier)
    assert (parsed.target, parsed.value, parsed.exclude) == (target, value, exclude)


def test_systemd_stops_at_a_line_of_one_mib():
    # read_line(LONG_LINE_MAX) in systemd-sysctl: 1048575 bytes pass, 1048576 end the file there (checked
    # against the real program in tests/fixtures/sysctl_oracle/trees.yml); procps reads any length.
    fits = "vm.swappiness = 1\n#" + "x" * 1048574 + "\nvm.dirty_ratio = 2\n"
    assert [a.key for a in parse_sysctl_conf(fits, "systemd")[0]] == ["vm.swappiness", "vm.dirty_ratio"]
    too_long = "vm.swappiness = 1\n#" + "\u00e9" * 524288 + "\nvm.dirty_ratio = 2\n"  # 2 bytes a character
    assert [a.key for a in parse_sysctl_conf(too_long, "systemd")[0]] == ["vm.swappiness"]
    assert [a.key for a in parse_sysctl_conf(too_long, "procps")[0]] == ["vm.swappiness", "vm.dirty_ratio"]
