# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of the capture_extract module: the module run, and one clear message when the host's Python cannot run it."""

from __future__ import annotations

from ansible_collections.memfrag.linux.plugins.plugin_utils._target_python import TargetPythonAction


class ActionModule(TargetPythonAction):
    pass
