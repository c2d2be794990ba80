# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``gfp_flags``: GFP flag names of a ``mode:0x...`` value for a kernel era (documentation in gfp_flags.yml)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.module_utils._mm.gfp import decode, parse_mode


def gfp_flags(mode: t.Any, kernel_release: t.Any) -> t.List[str]:
    try:
        value = parse_mode(mode)
    except ValueError as exc:
        raise AnsibleFilterError("gfp_flags: %s" % exc)
    if kernel_release is None or not str(kernel_release).strip():
        raise AnsibleFilterError("gfp_flags: kernel_release is required (e.g. ansible_facts['kernel'])")
    try:
        return decode(value, str(kernel_release))
    except ValueError as exc:
        raise AnsibleFilterError("gfp_flags: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"gfp_flags": gfp_flags}
