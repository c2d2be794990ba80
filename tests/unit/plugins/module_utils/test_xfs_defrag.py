# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""xfs_defrag's decisions with the file system and the commands faked (real runs: tests/e2e/test_xfs_extents.py)."""

from __future__ import annotations

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._xfs import defrag, walk
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.ioctl import FS_XFLAG_EXTSZINHERIT

TOOLS = {"timeout": "/usr/bin/timeout", "ionice": "/usr/bin/ionice", "xfs_fsr": "/usr/sbin/xfs_fsr", "xfs_io": "/usr/sbin/xfs_io"}


@pytest.mark.parametrize("text, size", [("1m", 1 << 20), ("16M", 16 << 20), ("64k", 65536), ("1048576", 1048576),
                                        (" 2 g ", 2 << 30), ("4MiB", 4 << 20), (4096, 4096)])
def test_parse_size(text, size):
    assert defrag.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1.5m", "-1m", "16t", "m", "1m; rm -rf /"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="extent size hint"):
        defrag.parse_size(text)


def test_commands_are_argument_lists():
    assert defrag.fsr_command(TOOLS, "/srv/a b.img", 599.7, "idle") == [
        "/usr/bin/timeout", "-k", "10", "599", "/usr/bin/ionice", "-c", "3", "/usr/sbin/xfs_fsr", "-v", "/srv/a b.img"]
    assert defrag.fsr_command(TOOLS, "/srv/x", 0.2, "none") == ["/usr/bin/timeout", "-k", "10", "1", "/usr/sbin/xfs_fsr", "-v", "/srv/x"]
    assert defrag.fsr_command(TOOLS, "/srv/x", 5, "best-effort")[4:8] == ["/usr/bin/ionice", "-c", "2", "-n"]
    assert defrag.extsize_command(TOOLS, "/srv/vm", 16 << 20) == ["/usr/sbin/xfs_io", "-c", "extsize 16777216", "/srv/vm"]


def test_tools_needed_name_their_packages():
    assert defrag.tools_needed(["/f"], [], "idle") == [("xfs_fsr", "xfsprogs"), ("timeout", "coreutils"), ("ionice", "util-linux")]
    assert defrag.tools_needed(["/f"], ["/d"], "none") == [("xfs_fsr", "xfsprogs"), ("timeout", "coreutils"), ("xfs_io", "xfsprogs")]
    assert defrag.tools_needed([], [], "idle") == []


def test_busy_reason_names_writers_only():
    assert defrag.busy_reason([{"pid": 1, "comm": "cat", "write": False}]) is None
    reason = defrag.busy_reason([{"pid": 6902, "comm": "qemu-kvm", "write": True, "mapped": False},
                                 {"pid": 7, "comm": "db", "write": True, "mapped": True}])
    assert reason.startswith("open for writing by qemu-kvm(6902), db(7) mapped shared")


class Fs(object):
    """inspect() results by path: a list per path, one per call (before, after)."""

    def __init__(self, **attrs):
        self.attrs = attrs
        self.calls = []

    def __call__(self, path, mounts):
        self.calls.append(path)
        value = self.attrs[path]
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, str):
            raise walk.PathRefused(path, value)
        return value


def _file(extents, **extra):
    attrs = {"nextents": extents, "xflags": 0, "extsize": 0, "dev": 1, "ino": 2, "size": 1, "directory": False,
             "mount": "/srv", "block_size": 4096}
    attrs.update(extra)
    return attrs


@pytest.fixture
def make(monkeypatch, tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text("40 1 253:2 / /srv rw - xfs /dev/vdb rw\n")

    def _make(fs, runs=(), holders=(), check_mode=False, time_limit=600, clock=None, allow_busy=False):
        monkeypatch.setattr(defrag, "inspect", fs)
        commands = []
        results = list(runs)

        def runner(command):
            commands.append(command)
            return results.pop(0)

        run = defrag.Defrag(TOOLS, runner, str(tmp_path), time_limit, "idle", allow_busy, 2, check_mode,
                            clock or (lambda: 0.0))
        monkeypatch.setattr(run, "_holders", lambda attrs, path: list(holders))
        return run, commands

    return _make


def test_defragmented_with_both_counts(make):
    run, commands = make(Fs(**{"/srv/a": [_file(40852), _file(2)]}), runs=[(0, "", "")])
    entry = run.file("/srv/a")
    assert (entry["action"], entry["extents_before"], entry["extents_after"], entry["changed"]) == ("defragmented", 40852, 2, True)
    assert commands == [entry["command"]] and commands[0][-2:] == ["-v", "/srv/a"]
    assert defrag.summary_lines([entry], []) == ["/srv/a: 40852 -> 2 extents (defragmented)"]


def test_writer_is_refused_and_nothing_runs(make):
    run, commands = make(Fs(**{"/srv/a": _file(40852)}), holders=[{"pid": 6902, "comm": "qemu-kvm", "write": True, "mapped": False}])
    entry = run.file("/srv/a")
    assert entry["action"] == "refused" and "qemu-kvm(6902)" in entry["reason"] and commands == []
    assert entry["extents_after"] == entry["extents_before"] == 40852


def test_allow_busy_runs_a_written_file(make):
    run, commands = make(Fs(**{"/srv/a": [_file(500), _file(3)]}), runs=[(0, "", "")],
                         holders=[{"pid": 1, "comm": "w", "write": True}], allow_busy=True)
    assert run.file("/srv/a")["action"] == "defragmented" and len(commands) == 1


def test_readers_do_not_block(make):
    run, _commands = make(Fs(**{"/srv/a": [_file(500), _file(3)]}), runs=[(0, "", "")],
                          holders=[{"pid": 1, "comm": "backup", "write": False}])
    assert run.file("/srv/a")["action"] == "defragmented"


def test_check_mode_runs_nothing(make):
    run, commands = make(Fs(**{"/srv/a": _file(40852)}), check_mode=True)
    entry = run.file("/srv/a")
    assert entry["action"] == "would_defragment" and commands == [] and not entry["changed"]


def test_time_limit_leaves_later_files_unstarted(make):
    now = [0.0]
    run, commands = make(Fs(**{"/srv/a": [_file(900), _file(1)], "/srv/b": _file(900)}), runs=[(124, "", "")],
                         time_limit=100, clock=lambda: now[0])

    def slow(command):
        commands.append(command)
        now[0] += 100
        return 124, "", ""

    run.runner = slow
    first = run.file("/srv/a")
    second = run.file("/srv/b")
    assert first["action"] == "timed_out" and commands[0][:4] == ["/usr/bin/timeout", "-k", "10", "100"]
    assert second["action"] == "not_started" and len(commands) == 1


def test_unchanged_and_failed(make):
    run, _commands = make(Fs(**{"/srv/a": [_file(900), _file(900)], "/srv/b": [_file(900), _file(900)]}),
                          runs=[(0, "", ""), (1, "", "xfs_fsr: cannot open")])
    unchanged = run.file("/srv/a")
    failed = run.file("/srv/b")
    assert unchanged["action"] == "unchanged" and "syslog" in unchanged["reason"] and not unchanged["changed"]
    assert failed["action"] == "failed" and failed["reason"] == "xfs_fsr: cannot open"


def test_below_min_extents_symlink_and_directory(make):
    run, commands = make(Fs(**{"/srv/one": _file(1), "/srv/link": "is a symbolic link; symlinks are never followed",
                               "/srv/dir": _file(0, directory=True)}))
    assert run.file("/srv/one")["action"] == "unchanged"
    assert run.file("/srv/link")["reason"].startswith("is a symbolic link")
    assert run.file("/srv/dir")["action"] == "refused"
    assert commands == []


def test_hint_set_read_back(make):
    before = _file(0, directory=True)
    after = _file(0, directory=True, xflags=FS_XFLAG_EXTSZINHERIT, extsize=16 << 20)
    run, commands = make(Fs(**{"/srv/vm": [before, after]}), runs=[(0, "", "")])
    entry = run.hint("/srv/vm", 16 << 20)
    assert (entry["action"], entry["extsize_before"], entry["extsize_after"], entry["changed"]) == ("set", 0, 16 << 20, True)
    assert commands == [["/usr/sbin/xfs_io", "-c", "extsize 16777216", "/srv/vm"]]


def test_hint_already_set_unaligned_or_on_a_file(make):
    current = _file(0, directory=True, xflags=FS_XFLAG_EXTSZINHERIT, extsize=1 << 20)
    run, commands = make(Fs(**{"/srv/vm": current, "/srv/f": _file(3)}))
    assert run.hint("/srv/vm", 1 << 20)["action"] == "unchanged"
    assert "multiple of the block size" in run.hint("/srv/vm", 6000)["reason"]
    assert "not a directory" in run.hint("/srv/f", 1 << 20)["reason"]
    assert commands == []


def test_hint_that_does_not_stick_fails(make):
    before = _file(0, directory=True)
    run, _commands = make(Fs(**{"/srv/vm": [before, before]}), runs=[(0, "", "")])
    entry = run.hint("/srv/vm", 1 << 20)
    assert entry["action"] == "failed" and "reads back as 0" in entry["reason"]
