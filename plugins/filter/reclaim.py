# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``reclaim_need``: the reclaim role's judgement (docs in reclaim_need.yml; logic in _reclaim_policy.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.policy import need


def reclaim_need(zones, order=4, target_mb=256, zone_names=("Normal", "DMA32"), log_scan=None,
                 guard_query_hit=False, guard_query=""):
    if isinstance(zones, dict) and "zones" in zones:
        zones = zones["zones"]
    if not isinstance(zones, list):
        raise AnsibleFilterError("reclaim_need: expected a list of zones (memfrag_buddyinfo.zones or a "
                                 "compact_memory/drop_caches before/after), got %s" % type(zones).__name__)
    if log_scan is not None and not isinstance(log_scan, dict):
        raise AnsibleFilterError("reclaim_need: log_scan must be a kernel_log_scan result (a dict)")
    try:
        return need(zones, int(order), int(target_mb), list(zone_names), log_scan, bool(guard_query_hit), str(guard_query or ""))
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
        raise AnsibleFilterError("reclaim_need: zones are not in the shape memfrag.linux modules return: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"reclaim_need": reclaim_need}
