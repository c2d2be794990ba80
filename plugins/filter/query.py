# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``query``: a JMESPath expression over facts (documentation in query.yml beside this file)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.plugin_utils._plain import TooDeep, plain

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError:  # reported when the filter is used, not when the collection loads
    jmespath = None
    JMESPathError = Exception


def query(data: t.Any, expression: str) -> t.Any:
    if jmespath is None:
        raise AnsibleFilterError("query: the jmespath Python package is not installed on the controller "
                                 "(pip install jmespath)")
    if not isinstance(expression, str) or not expression.strip():
        raise AnsibleFilterError("query: the expression must be a non-empty string, got %r" % (expression,))
    shown = str(expression) if len(expression) <= 200 else "%s... (%d characters)" % (expression[:200], len(expression))
    try:
        compiled = jmespath.compile(str(expression))
    except RecursionError:
        # jmespath's parser recurses once per nesting level: "((((...a))))" thousands deep.
        raise AnsibleFilterError("query: JMESPath expression %r is nested too deeply" % shown)
    except JMESPathError as exc:
        raise AnsibleFilterError("query: invalid JMESPath expression %r: %s" % (shown, exc))
    try:
        data = plain(data, 100, cut=False)
    except TooDeep:
        raise AnsibleFilterError("query: data nested more than 100 levels deep")
    try:
        return compiled.search(data)
    except RecursionError:
        raise AnsibleFilterError("query: JMESPath expression %r is nested too deeply for the data" % shown)
    except JMESPathError as exc:
        raise AnsibleFilterError("query: JMESPath expression %r failed on the data: %s" % (shown, exc))


class FilterModule(object):
    def filters(self):
        return {"query": query}
