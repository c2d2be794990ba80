# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report directory: file names from untrusted host names, and the new directory swapped in whole."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.memfrag.linux.plugins.plugin_utils import _fleet_files
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_files import (
    MARKER,
    NewReportDir,
    ReportDirError,
    safe_file_stem,
    write_report,
)
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import fleet_report

HOSTILE = ["../../x", "a/b", "..", ".", ".hidden", "", "/", "/etc/passwd", "x\0y", "~", "%2F", "a%2Fb", "web\u00e9",
           "\ud800", "con", "x" * 300, "y" * 300, "x" * 299 + "y", "-rf", " ", "\n", "Web1", "web1"]


def _contained(stem):
    name = stem + ".prom"
    return ("/" not in name and "\0" not in name and not name.startswith(".") and stem not in ("", ".", "..")
            and len(name.encode("utf-8")) <= 255)


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_name_is_one_contained_component(name):
    stem = safe_file_stem(name)
    assert _contained(stem), (name, stem)
    assert os.path.basename(stem + ".prom") == stem + ".prom"
    assert safe_file_stem(name) == stem  # deterministic


def test_names_people_use_stay_readable():
    assert safe_file_stem("web-01.example.com") == "web-01.example.com"
    assert safe_file_stem("db_7") == "db_7"
    assert safe_file_stem("../../x") == "%2E.%2F..%2Fx"
    assert safe_file_stem("a/b") == "a%2Fb"


def test_hostile_names_never_collide():
    stems = [safe_file_stem(n) for n in HOSTILE]
    assert len(set(stems)) == len(HOSTILE)


# Hypothesis with a fixed seed and a small budget (the suite's time); the property: two different names never
# give one file name, and every name gives one contained path component.
@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_safe_file_stem_is_injective_and_contained(a, b):
    sa, sb = safe_file_stem(a), safe_file_stem(b)
    assert _contained(sa) and _contained(sb)
    assert (sa == sb) == (a == b)


def _report(names, tmp_hostvars=None):
    hostvars = tmp_hostvars or {}
    return fleet_report(hostvars, names, 4, None, "2026-11-21T00:00:00Z")


def _tree(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for name in files + dirs:
            path = os.path.join(base, name)
            out[os.path.relpath(path, root)] = None if os.path.isdir(path) else open(path, "rb").read()
    return out


def test_write_report_keeps_every_file_inside_and_maps_hosts(tmp_path):
    dest = tmp_path / "site" / "report"
    names = ["web1", "../../x", "a/b", "..", ".hidden", "x" * 300]
    written = write_report(str(dest), _report(names))
    assert written["dest"] == str(dest)
    # Everything under tmp_path is the report: nothing escaped beside or above it.
    assert sorted(os.listdir(str(tmp_path))) == ["site"] and sorted(os.listdir(str(tmp_path / "site"))) == ["report"]
    assert sorted(os.listdir(str(dest))) == sorted([MARKER, "index.html", "metrics", "report.json"])
    files = written["prometheus_files"]
    assert sorted(files) == sorted(names)
    assert len(set(files.values())) == len(names)
    for host, rel in files.items():
        assert os.path.dirname(rel) == "metrics" and rel == "metrics/" + safe_file_stem(host) + ".prom"
        with open(os.path.join(str(dest), rel)) as f:
            assert f.read().startswith("# HELP memfrag_up ")
    assert sorted(os.listdir(str(dest / "metrics"))) == sorted(os.path.basename(r) for r in files.values())
    assert written["bytes"]["prometheus"] == sum(os.path.getsize(os.path.join(str(dest), r)) for r in files.values())
    assert oct(os.stat(str(dest)).st_mode & 0o777) == "0o755"
    assert all(oct(os.stat(os.path.join(str(dest), r)).st_mode & 0o777) == "0o644" for r in files.values())
    with open(str(dest / "report.json")) as f:
        assert [r["host"] for r in json.load(f)["hosts"]] == sorted(names)


def test_a_file_system_that_folds_case_gets_a_hash_suffix_not_an_overwrite(tmp_path):
    new = NewReportDir(str(tmp_path / "r"))
    try:
        new.makedirs("metrics")
        new.write("metrics/web1.prom", "taken\n")  # what WEB1 finds on a case-folding file system
        rel = new.write_named("metrics", "web1", ".prom", "mine\n")
        assert rel.startswith("metrics/web1~") and rel.endswith(".prom")
        assert open(os.path.join(new.path, "metrics/web1.prom")).read() == "taken\n"
        assert open(os.path.join(new.path, rel)).read() == "mine\n"
    finally:
        new.abort()
    assert not os.path.exists(new.path)


def test_previous_report_stays_until_the_swap_and_nothing_is_left_behind(tmp_path):
    dest = str(tmp_path / "report")
    write_report(dest, _report(["old1", "old2"]))
    before = _tree(dest)
    new = NewReportDir(dest)
    new.makedirs("metrics")
    new.write("metrics/new.prom", "x\n")
    assert _tree(dest) == before  # half-way: readers still see the whole previous report
    assert oct(os.stat(new.path).st_mode & 0o777) == "0o700"
    new.write("index.html", "<p>new</p>\n")
    assert new.commit() == dest
    after = _tree(dest)
    assert after["index.html"] == b"<p>new</p>\n" and "metrics/old1.prom" not in after and "metrics/new.prom" in after
    assert sorted(os.listdir(str(tmp_path))) == ["report"]  # the previous report and the new dir's name are gone


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_swap_with_and_without_rename_exchange(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(_fleet_files, "_exchange", lambda a, b: False)
    dest = str(tmp_path / "report")
    write_report(dest, _report(["a"]))
    write_report(dest, _report(["b", "c"]))
    assert sorted(os.listdir(os.path.join(dest, "metrics"))) == ["b.prom", "c.prom"]
    assert sorted(os.listdir(str(tmp_path))) == ["report"]


def test_renameat2_exchange_swaps_two_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "in-a").write_text("a")
    (b / "in-b").write_text("b")
    if not _fleet_files._exchange(str(a), str(b)):
        pytest.skip("this kernel or file system has no RENAME_EXCHANGE")
    assert os.listdir(str(a)) == ["in-b"] and os.listdir(str(b)) == ["in-a"]


def test_a_failure_while_writing_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    dest = str(tmp_path / "report")
    write_report(dest, _report(["old"]))
    before = _tree(dest)

    def broken(row, generated=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_fleet_files, "prometheus_text", broken)
    with pytest.raises(OSError):
        write_report(dest, _report(["new"]))
    assert _tree(dest) == before
    assert sorted(os.listdir(str(tmp_path))) == ["report"]


def test_a_directory_that_is_not_a_report_is_refused_untouched(tmp_path):
    site = tmp_path / "www"
    site.mkdir()
    (site / "index.php").write_text("<?php ?>")
    with pytest.raises(ReportDirError, match="not a memfrag report"):
        write_report(str(site), _report(["a"]))
    assert sorted(os.listdir(str(site))) == ["index.php"]
    assert sorted(os.listdir(str(tmp_path))) == ["www"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportDirError, match="not a directory"):
        write_report(str(tmp_path / "file"), _report(["a"]))
    with pytest.raises(ReportDirError, match="cannot be a report directory"):
        write_report("/", _report(["a"]))
    with pytest.raises(ReportDirError, match="non-empty path"):
        write_report("", _report(["a"]))


def test_an_earlier_report_and_an_empty_directory_may_be_replaced(tmp_path):
    earlier = tmp_path / "earlier"
    (earlier / "metrics").mkdir(parents=True)
    (earlier / "index.html").write_text("old")
    (earlier / "metrics" / "h.prom").write_text("old")
    write_report(str(earlier), _report(["h"]))
    assert (earlier / MARKER).exists() and (earlier / "index.html").read_text() != "old"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_report(str(empty), _report(["h"]))
    assert (empty / MARKER).exists()


def test_a_symlinked_report_directory_is_followed_and_the_link_kept(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    written = write_report(str(link), _report(["h"]))
    assert written["dest"] == str(real)
    assert link.is_symlink() and (link / "index.html").exists()


def test_formats_choose_the_files(tmp_path):
    written = write_report(str(tmp_path / "r"), _report(["h"]), formats=["json"])
    assert sorted(os.listdir(str(tmp_path / "r"))) == [MARKER, "report.json"]
    assert written["files"] == {"json": "report.json"} and written["prometheus_files"] == {}
    with pytest.raises(ReportDirError, match="unknown report formats"):
        write_report(str(tmp_path / "r"), _report(["h"]), formats=["pdf"])
