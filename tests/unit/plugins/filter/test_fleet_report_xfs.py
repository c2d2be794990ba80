# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's worst XFS files per host (memfrag_xfs_files)."""

from __future__ import annotations

from ansible_collections.memfrag.linux.plugins.filter.fleet_report import fleet_report, fleet_report_html

FACT = {"scanned": True, "found": 7, "min_extents": 10000, "era": "extent_list", "stopped_early": None,
        "files": [{"path": "/vm/<db01>.img", "mount": "/vm", "size": 1, "extents": 1048612, "alloc_bytes": 65552,
                   "alloc_order": 5, "open_by": [{"pid": 6902, "comm": "qemu-kvm", "write": True, "mapped": False}]}]}
VERDICT = {"severity": "critical", "summary": "x", "counts": {}}


def test_rows_carry_the_worst_files_and_html_shows_them_escaped():
    hostvars = {
        "vm1": {"memfrag_verdict": VERDICT, "ansible_facts": {"memfrag_xfs_files": FACT}},
        "vm2": {"memfrag_verdict": VERDICT, "memfrag_xfs_files": {"scanned": False, "reason": "no XFS deadlock"}},
        "vm3": {"memfrag_verdict": VERDICT},
    }
    report = fleet_report(hostvars, ["vm1", "vm2", "vm3"])
    rows = dict((row["host"], row) for row in report["hosts"])
    assert rows["vm1"]["xfs_files"] == {"files": [{"path": "/vm/<db01>.img", "extents": 1048612, "alloc_bytes": 65552,
                                                   "alloc_order": 5}], "found": 7, "stopped_early": False}
    assert rows["vm2"]["xfs_files"] is None and rows["vm3"]["xfs_files"] is None
    page = fleet_report_html(report)
    assert "XFS files with the most extents:" in page and "/vm/&lt;db01&gt;.img: 1048612 extents (map order 5)" in page
    assert page.count("XFS files with the most extents") == 1
