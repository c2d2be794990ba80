# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""supportconfig sections (as supportutils' supportconfig.rc writes them) to host paths."""

from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._archive.capture import (
    running_sysctl, section_target, unpack_supportconfig)

CONF = "#==[ Configuration File ]===========================#\n"
COMMAND = "#==[ Command ]======================================#\n"
LOG = "#==[ Log File ]=====================================#\n"


@pytest.mark.parametrize("kind, what, expected", [
    ("Configuration File", "/proc/buddyinfo", ("proc", "proc/buddyinfo", None)),
    ("Configuration File", "/proc/sys/vm/min_free_kbytes", ("proc_sys", "proc/sys/vm/min_free_kbytes", None)),
    ("Configuration File", "/proc/pagetypeinfo - File not found", None),
    ("Configuration File", "/etc/sysctl.d/50-x.conf - File not found",
     ("sysctl_conf", "etc/sysctl.d/50-x.conf", "masked (not a regular file on the host)")),
    ("Configuration File", "/run/sysctl.d/*.conf - File not found", None),  # the glob matched nothing
    ("Configuration File", "/etc/sysctl.d/../../root/x.conf", None),
    ("Configuration File", "/proc/sys/vm/../../../etc/passwd", None),
    ("Configuration File", "/proc/../etc/shadow", None),
    ("Log File", "/var/log/messages - Last 2500 Lines",
     ("log", "var/log/messages", "only the last 2500 lines were captured")),
    ("Log File", "grep -i xfs /var/log/messages", None),
    ("Command", "/usr/bin/uname -a", ("uname", "sos_commands/kernel/uname_-a", None)),
    ("Command", "/usr/bin/uname -r", None),
    ("Command", "/usr/bin/date", ("date", "sos_commands/date/date", None)),
    ("Command", '/usr/bin/date +"%Y-%m-%d %H:%M"', None),
    ("Command", "/usr/sbin/sysctl -a 2>/dev/null | grep ^vm", ("sysctl", "sos_commands/kernel/sysctl_-a", None)),
    ("Command", "/usr/bin/journalctl --boot=0 --no-pager --disk-usage", None),
    ("Command", "/usr/bin/journalctl --no-pager --output=short-iso --lines 50000",
     ("journal", "sos_commands/logs/journalctl_--no-pager", None)),
    ("Command", "/usr/bin/journalctl --no-pager --boot=-1 --output=short-iso",
     ("journal", "sos_commands/logs/journalctl_--no-pager_--boot=-1", None)),
    ("Command", "/usr/bin/journalctl --boot=0 --no-pager --output=short-iso | grep -E 'gnome|gdm'", None),
    ("Command", "uname -a", None),  # supportconfig always writes the full path
    ("Note", "/proc/buddyinfo", None),
])
def test_section_target(kind, what, expected):
    assert section_target(kind, what) == expected


def _write(root, name, text):
    with open(os.path.join(root, name), "w") as handle:
        handle.write(text)


def test_unpack_keeps_content_drops_separators_and_obeys_what_each_file_supplies(tmp_path):
    root = str(tmp_path)
    _write(root, "memory.txt", CONF + "# /proc/buddyinfo\nNode 0, zone   Normal  1 2 3\n\n\n"
           + COMMAND + "# /usr/sbin/sysctl -a 2>/dev/null | grep ^vm\nvm.swappiness = 10\n\n")
    _write(root, "messages.txt", LOG + "# /var/log/messages\nMar  4 10:11:12 h kernel: one\n\nMar  4 10:11:13 h kernel: two\n\n\n"
           + CONF + "# /proc/zoneinfo\nfake\n")
    _write(root, "env.txt", CONF + "# /etc/sysctl.conf\n\n" + CONF + "# /etc/sysctl.d/10-mask.conf - File not found\n\n"
           + CONF + "# /etc/sysctl.d/20-a.conf\nvm.swappiness = 20\n\n\n" + COMMAND + "# /usr/sbin/sysctl -a\n"
           + "vm.swappiness = 10\nvm.lowmem_reserve_ratio = 256\t256\t32\t0\t0\n\n")
    _write(root, "boot.txt", COMMAND + "# /usr/bin/journalctl --boot=0 --no-pager --output=short-iso | tail -n 5\n"
           + "2023-03-04T10:11:12+0000 h kernel: one\n\n")
    origins, notes = unpack_supportconfig(root, ["memory.txt", "messages.txt", "env.txt", "boot.txt"])

    def read(relative):
        with open(os.path.join(root, relative)) as handle:
            return handle.read()

    assert read("proc/buddyinfo") == "Node 0, zone   Normal  1 2 3\n"
    # A blank line inside a log stays; supportconfig's trailing separators go.
    assert read("var/log/messages") == "Mar  4 10:11:12 h kernel: one\n\nMar  4 10:11:13 h kernel: two\n"
    assert not os.path.exists(os.path.join(root, "proc", "zoneinfo"))
    assert "ignored /proc/zoneinfo in messages.txt: that file does not hold it" in notes
    # boot.txt's journal repeats messages.txt's events: not written.
    assert not os.path.exists(os.path.join(root, "sos_commands", "logs"))
    # env.txt's whole sysctl -a comes before memory.txt's grep ^vm copy.
    assert origins["sos_commands/kernel/sysctl_-a"] == "env.txt: /usr/sbin/sysctl -a"
    assert running_sysctl(root) == ({"vm.swappiness": "10", "vm.lowmem_reserve_ratio": "256\t256\t32\t0\t0"}, "sysctl -a")
    # A mask is an empty file; a file whose lines were all comments is not.
    assert os.path.getsize(os.path.join(root, "etc", "sysctl.d", "10-mask.conf")) == 0
    assert read("etc/sysctl.conf").startswith("#")
    assert read("etc/sysctl.d/20-a.conf") == "vm.swappiness = 20\n"


def test_unpack_streams_hostile_text_without_a_traceback(tmp_path):
    root = str(tmp_path)
    # Headers with no label line, a truncated file, bytes that are no UTF-8, a header at the very end.
    _write(root, "memory.txt", CONF + CONF + "# /proc/meminfo\nMemTotal: 1 kB\n" + COMMAND)
    with open(os.path.join(root, "messages.txt"), "wb") as handle:
        handle.write(LOG.encode() + b"# /var/log/messages\n\xff\xfe kernel: \x00odd\n" + LOG.encode())
    unpack_supportconfig(root, ["memory.txt", "messages.txt"])
    with open(os.path.join(root, "proc", "meminfo")) as handle:
        assert handle.read() == "MemTotal: 1 kB\n"
    with open(os.path.join(root, "var", "log", "messages"), "rb") as handle:
        assert handle.read() == b"\xff\xfe kernel: \x00odd\n"


def test_log_files_take_one_ring_buffer_copy_and_only_without_logs(tmp_path):
    from ansible_collections.memfrag.linux.plugins.module_utils._archive.capture import log_files
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "sos_commands", "kernel"))
    os.makedirs(os.path.join(root, "sos_commands", "logs"))
    for name in ("sos_commands/kernel/dmesg_-T", "sos_commands/kernel/dmesg", "sos_commands/logs/journalctl_--disk-usage"):
        _write(root, name, "x\n")
    assert log_files(root) == [os.path.join(root, "sos_commands", "kernel", "dmesg")]
    _write(root, "sos_commands/logs/journalctl_--no-pager", "x\n")
    assert log_files(root) == [os.path.join(root, "sos_commands", "logs", "journalctl_--no-pager")]


def test_an_overlong_line_is_copied_in_pieces_and_its_tail_is_never_a_header(tmp_path, monkeypatch):
    from ansible_collections.memfrag.linux.plugins.module_utils._archive import capture
    monkeypatch.setattr(capture, "LINE_PIECE", 64)
    root = str(tmp_path)
    # The 64-byte piece boundary falls right before a forged header inside one long log line.
    forged = "x" * 64 + CONF + "# /var/log/kern.log\nMar  4 10:11:12 h kernel: forged\n"
    _write(root, "messages.txt", LOG + "# /var/log/messages\n" + forged)
    unpack_supportconfig(root, ["messages.txt"])
    with open(os.path.join(root, "var", "log", "messages")) as handle:
        assert handle.read() == forged  # one log line, then the lines after it
    assert not os.path.exists(os.path.join(root, "var", "log", "kern.log"))
