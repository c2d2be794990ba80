# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_meminfo: every corpus file parses; hand-checked values; malformed input names file and line."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.memfrag.linux.tests.collection_tree import corpus_dir

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo, read_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError

with open(os.path.join(os.path.dirname(__file__), "cases", "meminfo.yml")) as handle:
    CASES = yaml.safe_load(handle)

_CORPUS = corpus_dir()
CORPUS_FILES = sorted(os.listdir(os.path.join(_CORPUS, "meminfo"))) if _CORPUS else []


def _read(corpus, name):
    with open(os.path.join(corpus, "meminfo", name), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("name", CORPUS_FILES or ["corpus-absent"])
def test_every_corpus_file_parses(corpus, name):
    text = _read(corpus, name)
    fields, warnings = parse_meminfo(text, name)
    assert warnings == []
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(fields) == len(lines)
    for line in lines:
        # Independent of the parser: the raw number times 1024 when the line says kB.
        name_part, rest = line.split(":", 1)
        words = rest.split()
        expected = int(words[0]) * (1024 if words[-1] == "kB" else 1)
        assert fields[name_part] == expected, line
    assert 0 < fields["MemFree"] <= fields["MemTotal"]


@pytest.mark.parametrize("case", CASES["corpus"], ids=[case["file"] for case in CASES["corpus"]])
def test_corpus_values_checked_by_hand(corpus, case):
    fields, _warnings = parse_meminfo(_read(corpus, case["file"]))
    assert len(fields) == case["fields"]
    for key, value in case["expect"].items():
        assert fields[key] == value, key
    for key in case.get("absent", []):
        assert key not in fields


@pytest.mark.parametrize("case", CASES["wellformed"], ids=[case["name"] for case in CASES["wellformed"]])
def test_wellformed(case):
    fields, warnings = parse_meminfo(case["text"], "/x/meminfo")
    assert fields == case["expect"]
    assert len(warnings) == case["warnings"]
    if "warning_contains" in case:
        assert case["warning_contains"] in warnings[0]
        assert warnings[0].startswith("/x/meminfo ")


@pytest.mark.parametrize("case", CASES["malformed"], ids=[case["name"] for case in CASES["malformed"]])
def test_malformed_names_file_and_line(case):
    with pytest.raises(ProcFileError) as info:
        parse_meminfo(case["text"], "/host/proc/meminfo")
    error = info.value
    assert error.path == "/host/proc/meminfo"
    assert error.line_number == case["line"]
    assert case["message"] in error.message
    where = "/host/proc/meminfo" if case["line"] is None else "/host/proc/meminfo line %d" % case["line"]
    assert str(error).startswith(where + ": ")


def test_read_meminfo_from_fixture_tree(fixtures_dir):
    fields, warnings = read_meminfo(os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy"))
    assert warnings == []
    assert fields["MemTotal"] == 16777216 * 1024
    assert fields["SReclaimable"] == 13631488 * 1024


def test_read_meminfo_missing_file_is_marked_missing(tmp_path):
    with pytest.raises(ProcFileError) as info:
        read_meminfo(str(tmp_path))
    assert info.value.missing
    assert info.value.path == os.path.join(str(tmp_path), "meminfo")


def test_read_meminfo_refuses_symlink_out_of_root(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("MemTotal: 1 kB\nMemFree: 1 kB\n")
    root = tmp_path / "proc"
    root.mkdir()
    (root / "meminfo").symlink_to(outside)
    with pytest.raises(ProcFileError) as info:
        read_meminfo(str(root))
    assert "outside" in info.value.message and not info.value.missing


def test_read_meminfo_live_kernel():
    with open("/proc/meminfo") as handle:
        total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", handle.read(), re.M).group(1))
    fields, warnings = read_meminfo("/proc")
    assert warnings == []
    assert fields["MemTotal"] == total_kb * 1024


def test_mem_total_bytes(tmp_path):
    from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import mem_total_bytes
    (tmp_path / "meminfo").write_text("MemTotal:       24558784 kB\nMemFree: 1 kB\n")
    assert mem_total_bytes(str(tmp_path)) == (24558784 * 1024, None)
    (tmp_path / "meminfo").write_text("MemFree: 1 kB\n")
    total, why = mem_total_bytes(str(tmp_path))
    assert total is None and "MemTotal" in why
