# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two XFS module shells: what they refuse before touching anything."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils import basic
from ansible_collections.memfrag.linux.plugins.modules import xfs_defrag, xfs_extent_scan

try:  # ansible-core 2.19+
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # pragma: no cover - older ansible-core
    patch_module_args = None


class Exit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def run(monkeypatch):
    def exit_json(self, **kwargs):
        raise Exit("exit", kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise Exit("fail", kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def _run(module, args):
        if patch_module_args is not None:
            with patch_module_args(args):
                with pytest.raises(Exit) as info:
                    module.main()
        else:  # pragma: no cover
            monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
            with pytest.raises(Exit) as info:
                module.main()
        return info.value.kind, info.value.result

    return _run


def test_missing_xfsprogs_fails_naming_the_package(run, monkeypatch, tmp_path):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: None if name == "xfs_fsr" else "/usr/bin/" + name)
    kind, result = run(xfs_defrag, {"files": ["/srv/a.img"], "lock_dir": str(tmp_path / "lock")})
    assert kind == "fail"
    assert result["msg"].startswith("xfs_fsr not found on this host: install xfsprogs")
    assert (result["missing"], result["package"]) == ("xfs_fsr", "xfsprogs")
    assert not (tmp_path / "lock").exists()  # failed before the lock: nothing created


@pytest.mark.parametrize("args, text", [
    ({"dirs": ["/srv"]}, "dirs needs extsize"),
    ({"dirs": ["/srv"], "extsize": "lots"}, "extsize: an extent size hint is bytes"),
    ({"dirs": ["/srv"], "extsize": "0"}, "extsize must be more than 0"),
    ({"files": ["/srv/a"], "time_limit": 0}, "time_limit must be at least 1 second"),
])
def test_defrag_refuses_bad_values(run, args, text):
    kind, result = run(xfs_defrag, args)
    assert kind == "fail" and result["msg"].startswith(text)


def test_scan_refuses_limits_that_bound_nothing(run):
    kind, result = run(xfs_extent_scan, {"time_limit": 0})
    assert kind == "fail" and result["msg"].startswith("time_limit must be more than 0")


def test_scan_of_a_tree_without_xfs(run, tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n")
    kind, result = run(xfs_extent_scan, {"proc_root": str(tmp_path)})
    assert kind == "exit" and result["changed"] is False
    assert result["files"] == [] and result["skipped_paths"] == [{"path": "/", "reason": "ext4 file system, not XFS"}]
    assert result["ansible_facts"]["memfrag_xfs_files"]["scanned"] is True


def test_scan_without_a_mount_table_fails_clearly(run, tmp_path):
    kind, result = run(xfs_extent_scan, {"proc_root": str(tmp_path)})
    assert kind == "fail" and result["msg"].startswith("cannot read the mount table:") and "does not exist" in result["msg"]
