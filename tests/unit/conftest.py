# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit test set-up: importable collection, the shared corpus, and our own fixtures."""

from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.tests.collection_tree import CORPUS_SKIP_REASON, corpus_dir as _corpus_dir, REPO_ROOT

FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")


@pytest.fixture
def corpus():
    """Path of ../shared/corpus; the test is skipped with the reason when it is absent."""
    path = _corpus_dir()
    if path is None:
        pytest.skip(CORPUS_SKIP_REASON)
    return path


@pytest.fixture
def fixtures_dir():
    return FIXTURES
