# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnose finding that names the XFS files, and when memory_facts' XFS scan runs at all."""

from __future__ import annotations

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import host_findings, verdict, xfs_file_findings
from ansible_collections.memfrag.linux.plugins.module_utils._findings.remedies import remedy
from ansible_collections.memfrag.linux.plugins.module_utils._xfs import scan

QEMU = {"comm": "qemu-kvm", "pid": 6902, "events": 12, "size": 65552, "matched_by": "pid", "pids": [6902]}


def _fact(files, era="extent_list", found=None, stopped=None, processes=(QEMU,)):
    return {"scanned": True, "files": files, "found": len(files) if found is None else found, "min_extents": 10000,
            "era": era, "kernel_release": "3.10.0-1160.el7.x86_64", "log_processes": list(processes), "stopped_early": stopped}


IMAGE = {"path": "/var/lib/libvirt/images/db01.img", "mount": "/var/lib/libvirt/images", "size": 10 ** 11,
         "extents": 1048612, "alloc_bytes": 65552, "alloc_order": 5,
         "open_by": [{"pid": 6902, "comm": "qemu-kvm", "write": True, "mapped": False}]}


def test_a_file_whose_map_needs_the_order_that_matters_is_critical():
    finding, = xfs_file_findings(_fact([IMAGE]))
    assert finding["severity"] == "critical" and finding["code"] == "xfs_fragmented_files"
    assert finding["message"].startswith("XFS deadlock messages name qemu-kvm(6902); the XFS files with the most extents are "
                                         "/var/lib/libvirt/images/db01.img (1048612 extents; map needs 65552 bytes, order 5; open by qemu-kvm(6902)).")
    assert "65552-byte allocation is the extent index of a file with 1048577-1048832 extents" in finding["message"]
    assert finding["message"].endswith("extent index of a file with 1048577-1048832 extents.")
    assert remedy(finding, "db01").startswith("ansible db01 -b -m memfrag.linux.xfs_defrag -a '{\"files\":[\"/var/lib/libvirt/images/db01.img\"]}' (xfs_fsr")
    assert finding["numbers"]["files"][0]["alloc_order"] == 5


def test_below_the_order_is_a_warning_and_the_threshold_decides():
    small = dict(IMAGE, extents=20000, alloc_bytes=4096, alloc_order=0)
    assert xfs_file_findings(_fact([small]))[0]["severity"] == "warning"
    assert xfs_file_findings(_fact([IMAGE]), {"order": 6})[0]["severity"] == "warning"


def test_on_iext_tree_kernels_the_files_are_not_the_looping_allocation():
    tree_file = dict(IMAGE, alloc_bytes=256, alloc_order=0)
    finding, = xfs_file_findings(_fact([tree_file], era="iext_btree"))
    assert finding["severity"] == "warning"
    assert "On this kernel (4.15+) an extent map needs nothing above order 0" in finding["message"]
    assert "extent index of a file" not in finding["message"]


def test_more_files_partial_scan_and_no_process():
    files = [dict(IMAGE, path="/v/%d" % index, open_by=[]) for index in range(4)]
    finding, = xfs_file_findings(_fact(files, found=9, stopped={"reason": "time_limit"}, processes=()))
    assert finding["message"].startswith("XFS deadlock messages; the XFS files with the most extents are /v/0 ")
    assert " and 6 more (the scan stopped early: time_limit)." in finding["message"]


def test_none_found_is_info_and_no_scan_is_nothing():
    finding, = xfs_file_findings(_fact([]))
    assert finding["severity"] == "info" and finding["code"] == "xfs_files_not_found"
    assert xfs_file_findings({"scanned": False, "reason": "no XFS allocation deadlock in the kernel log"}) == []
    assert xfs_file_findings(None) == []


def test_part_of_the_host_verdict():
    findings = host_findings(None, None, {"counts": {"xfs_alloc_deadlock": 12}}, None, "vm host 1", _fact([IMAGE]))
    assert [item["code"] for item in findings] == ["xfs_alloc_deadlock_logged", "xfs_fragmented_files"]
    assert verdict(findings)["severity"] == "critical"
    # the inventory name is untrusted: quoted for the shell
    assert findings[1]["remedy"].startswith("ansible 'vm host 1' -b -m memfrag.linux.xfs_defrag")


def test_host_files_scans_only_when_asked():
    not_scanned, warnings = scan.host_files({"scan": "auto"}, {"counts": {"xfs_alloc_deadlock": 0}}, "/proc")
    assert not_scanned == {"scanned": False, "reason": "no XFS allocation deadlock in the kernel log"} and warnings == []
    assert scan.host_files({"scan": "auto"}, None, "/proc")[0]["reason"] == "no kernel log was scanned"
    capture = scan.host_files({"scan": "always"}, None, "/srv/sos/proc")[0]
    assert capture["scanned"] is False and "capture" in capture["reason"]


@pytest.mark.parametrize("params, text", [
    ({"min_extents": 0}, "min_extents must be at least 1"),
    ({"max_files": -1}, "max_files must be at least 1"),
    ({"time_limit": 0}, "time_limit must be more than 0"),
    ({"time_limit": 10 ** 6}, "at most 86400"),
    ({"method": "fiemap"}, "method must be one of auto, stat"),
])
def test_limits_that_bound_nothing_are_refused(params, text):
    with pytest.raises(ValueError, match=text):
        scan.check_limits(params)
