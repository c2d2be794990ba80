# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Locate the checkout, the shared corpus, and an ``ansible_collections/memfrag/linux`` tree for it.

Python imports and ansible-test need the collection at .../ansible_collections/memfrag/linux. A
checkout can live anywhere, so when it is not already inside such a tree we make one: a symlink
in a temporary folder, created once per process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The JSON stdout callback every ansible-playbook run of the tests uses (ANSIBLE_CALLBACK_PLUGINS).
CALLBACK_PLUGINS = os.path.join(REPO_ROOT, "tests", "callback_plugins")
CORPUS_SKIP_REASON = "corpus suite skipped: ../shared/corpus (or $MEMFRAG_CORPUS) does not exist on this machine"
_tree = None


def collections_root() -> str:
    """A directory whose ansible_collections/memfrag/linux is this checkout."""
    global _tree
    parts = REPO_ROOT.split(os.sep)
    if len(parts) >= 3 and parts[-3:-2] == ["ansible_collections"] and parts[-2:] == ["memfrag", "linux"]:
        return os.sep.join(parts[:-3])
    if _tree is None:
        _tree = tempfile.mkdtemp(prefix="memfrag-collections-")
        os.makedirs(os.path.join(_tree, "ansible_collections", "memfrag"))
        os.symlink(REPO_ROOT, os.path.join(_tree, "ansible_collections", "memfrag", "linux"))
        atexit.register(shutil.rmtree, _tree, True)
    return _tree


def corpus_dir():
    """The shared corpus of real kernel files (../shared/corpus beside the checkout), or None."""
    candidates = [os.environ.get("MEMFRAG_CORPUS", "")]
    real_repo = os.path.realpath(REPO_ROOT)
    candidates.append(os.path.join(os.path.dirname(real_repo), "shared", "corpus"))
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            return candidate
    return None


def corpus_params(cases):
    """Test parameters for a corpus suite: the case names, or one skipped parameter saying why."""
    if corpus_dir() is None:
        import pytest  # only the test suites call this; the module itself stays importable without pytest
        return [pytest.param("-", marks=pytest.mark.skip(reason=CORPUS_SKIP_REASON))]
    return sorted(cases)
