# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    # The root every reading module takes, so the same code analyses a live host, an extracted
    # sosreport or a test tree.
    DOCUMENTATION = r"""
options:
  proc_root:
    description:
      - Directory that stands for C(/proc).
      - Point it at the C(proc/) folder of an extracted sosreport, or at a test tree, to analyse
        files captured elsewhere. Paths that resolve outside this directory are refused.
    type: path
    default: /proc
"""
