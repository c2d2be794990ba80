# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memory_facts' ``xfs_files`` suboptions, apart from the scanner (memory_facts compiles this file on every host
and imports the scanner only where it scans, as for the kernel log)."""


XFS_FILES_OPTIONS = dict(
    scan=dict(type="str", choices=["auto", "always"], default="auto"),
    paths=dict(type="list", elements="path", default=[]),
    min_extents=dict(type="int", default=10000),
    max_files=dict(type="int", default=1000000),
    time_limit=dict(type="float", default=30),
    max_results=dict(type="int", default=10),
)
