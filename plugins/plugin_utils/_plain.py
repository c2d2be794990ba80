# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host variables as plain Python data, for the controller-side code that writes or queries them.

Host variables come as ansible-core's own types (lazy templating containers and tagged strings on 2.19, unsafe
text on 2.16). JSON written by the report must not carry them, and jmespath rejects the str/dict/list subclasses
(its functions compare type names), so both take a copy made of dict, list, str, int, float, bool and None.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping


class TooDeep(ValueError):
    """Data nested deeper than the caller allows (raised only when it asked not to cut)."""


def plain(value: t.Any, max_depth: int, cut: bool = True, depth: int = 0) -> t.Any:
    """A plain copy of ``value``. Containers nested deeper than ``max_depth`` become None when ``cut``, else
    raise TooDeep; any other type becomes its text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if depth >= max_depth:
        if cut:
            return None
        raise TooDeep("data nested more than %d levels deep" % max_depth)
    if isinstance(value, Mapping):
        return dict((str(k), plain(v, max_depth, cut, depth + 1)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v, max_depth, cut, depth + 1) for v in value]
    return str(value)
