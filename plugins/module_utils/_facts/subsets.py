# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one ``gather_subset`` grammar of the facts modules, the one ansible.builtin.setup users know.

``all`` means every optional part, a name adds it, ``!name`` removes it, and a list of exclusions only starts
from ``all``. The always-read part (buddyinfo, meminfo) may be named but never excluded.

Private to the collection. Module-side code: Python 3.6+.
"""

import typing as t


def resolve_subsets(requested: t.Iterable[t.Any], always: str, optional: t.Sequence[str]) -> t.List[str]:
    """The optional parts to read, in ``optional``'s order. Raises ValueError naming what is wrong."""
    known = (always,) + tuple(optional)
    include = set()  # type: t.Set[str]
    exclude = set()  # type: t.Set[str]
    for item in requested:
        name = str(item).strip()
        negate = name.startswith("!")
        if negate:
            name = name[1:].strip()
        if name == "all":
            (exclude if negate else include).update(optional)
            continue
        if name not in known:
            raise ValueError("unknown gather_subset %r; choose from all, %s (or !name)" % (item, ", ".join(known)))
        if name == always:
            if negate:
                raise ValueError("%s is always gathered; it cannot be excluded" % always)
            continue
        (exclude if negate else include).add(name)
    if not include and exclude:
        include.update(optional)  # only exclusions given: start from everything
    return [name for name in optional if name in include and name not in exclude]
