# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tree walk without XFS: symlinks, mount points, bounds, the top-N heap. (Real XFS: tests/e2e/test_xfs_extents.py.)"""

from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._xfs import walk


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_extents(monkeypatch):
    """Every file has as many 'extents' as KiB of size; what was opened is recorded."""
    opened = []

    def count_extents(dir_fd, name, expect=None):
        fd, info = walk.open_file(dir_fd, name, expect)
        os.close(fd)
        opened.append(name)
        return info.st_size // 1024, info

    monkeypatch.setattr(walk, "count_extents", count_extents)
    return opened


def _file(path, kib):
    with open(str(path), "wb") as handle:
        handle.write(b"x" * (kib * 1024))


def _scan(top, min_extents=4, budget=None, candidates=None, limit=10):
    found = walk.Found(limit)
    info = os.stat(str(top))
    tree = walk.TreeScan(str(top), info.st_dev, 4096, min_extents, budget or walk.Budget(10 ** 6, 60), found,
                         lambda path, mount, extents, stat: {"path": path, "extents": extents}, candidates)
    fd = os.open(str(top), os.O_RDONLY | os.O_DIRECTORY)
    tree.walk(fd, str(top))
    return tree, found


def test_files_worst_first_small_ones_never_opened(tmp_path, fake_extents):
    (tmp_path / "a" / "b").mkdir(parents=True)
    _file(tmp_path / "small", 1)             # 1 KiB: cannot hold 4 one-KiB extents
    _file(tmp_path / "a" / "big", 64)
    _file(tmp_path / "a" / "b" / "bigger", 128)
    tree, found = _scan(tmp_path)
    assert [item["path"] for item in found.worst_first()] == [str(tmp_path / "a" / "b" / "bigger"), str(tmp_path / "a" / "big")]
    assert "small" not in fake_extents
    assert tree.counts["too_small"] == 1 and tree.counts["opened"] == 2 and tree.counts["directories"] == 3


def test_symlinks_are_never_followed(tmp_path, fake_extents):
    outside = tmp_path / "outside"
    outside.mkdir()
    _file(outside / "target", 64)
    top = tmp_path / "top"
    top.mkdir()
    os.symlink(str(outside), str(top / "dirlink"))
    os.symlink(str(outside / "target"), str(top / "filelink"))
    tree, found = _scan(top)
    assert found.total == 0 and fake_extents == []
    with pytest.raises(walk.PathRefused) as refused:
        walk.resolve(str(top / "dirlink" / "target"))
    assert "dirlink is a symbolic link" in refused.value.reason
    with pytest.raises(walk.PathRefused) as refused:
        walk.resolve(str(top / "filelink"))
    assert "symbolic link" in refused.value.reason


def test_hard_links_count_once(tmp_path, fake_extents):
    _file(tmp_path / "one", 64)
    os.link(str(tmp_path / "one"), str(tmp_path / "two"))
    _tree, found = _scan(tmp_path)
    assert found.total == 1 and len(found.worst_first()) == 1


def test_candidates_decide_without_stat(tmp_path, fake_extents):
    _file(tmp_path / "listed", 64)
    _file(tmp_path / "unlisted", 64)
    ino = os.stat(str(tmp_path / "listed")).st_ino
    tree, found = _scan(tmp_path, candidates={ino: 16})
    assert fake_extents == ["listed"] and tree.counts["too_small"] == 1 and found.total == 1


def test_max_files_stops_and_says_so(tmp_path, fake_extents):
    for index in range(30):
        _file(tmp_path / ("f%02d" % index), 64)
    budget = walk.Budget(10, 60)
    _tree, found = _scan(tmp_path, budget=budget)
    assert budget.stopped == "max_files" and budget.entries == 10 and found.total <= 10


def test_time_limit_stops(tmp_path, fake_extents):
    for index in range(3):
        (tmp_path / ("d%d" % index)).mkdir()
        _file(tmp_path / ("d%d" % index) / "f", 8)
    clock = Clock()
    budget = walk.Budget(10 ** 6, 5, clock)
    clock.now += 6
    _tree, found = _scan(tmp_path, budget=budget)
    assert budget.stopped == "time_limit" and found.total == 0


def test_depth_is_bounded(tmp_path, fake_extents, monkeypatch):
    monkeypatch.setattr(walk, "MAX_DEPTH", 3)
    deep = tmp_path / "1" / "2" / "3" / "4"
    deep.mkdir(parents=True)
    _file(deep / "f", 64)
    tree, found = _scan(tmp_path)
    assert found.total == 0
    assert any("deeper than 3 directories" in item["reason"] for item in tree.skipped)


def test_found_keeps_the_worst_and_bounds_memory():
    found = walk.Found(3)
    for index, extents in enumerate([5, 50, 7, 50, 1, 99, 6]):
        found.add((1, index), extents, lambda extents=extents, index=index: {"extents": extents, "n": index})
    assert found.total == 7
    assert [(item["extents"], item["n"]) for item in found.worst_first()] == [(99, 5), (50, 1), (50, 3)]
    found.add((1, 5), 1000, lambda: {"extents": 1000})  # the same file again: ignored
    assert found.total == 7


def test_resolve_refusals(tmp_path):
    with pytest.raises(walk.PathRefused):
        walk.resolve("relative/path")
    with pytest.raises(walk.PathRefused) as refused:
        walk.resolve(str(tmp_path / "missing" / "x"))
    assert "missing" in refused.value.reason
    fd, name, info = walk.resolve(str(tmp_path))
    os.close(fd)
    assert name == tmp_path.name and info.st_ino == os.stat(str(tmp_path)).st_ino


def test_open_file_refuses_fifo_and_swapped_files(tmp_path):
    os.mkfifo(str(tmp_path / "fifo"))
    _file(tmp_path / "f", 1)
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            walk.open_file(fd, "fifo")  # O_NONBLOCK: returns at once, then refused as not regular
        info = os.stat(str(tmp_path / "f"))
        with pytest.raises(OSError):
            walk.open_file(fd, "f", (info.st_dev, info.st_ino + 1))
    finally:
        os.close(fd)


def test_mount_points_by_path_are_not_entered(tmp_path, fake_extents):
    # A bind mount of the same file system has the same st_dev: only its path in the mount table gives it away.
    (tmp_path / "loop").mkdir()
    _file(tmp_path / "loop" / "f", 64)
    found = walk.Found(10)
    info = os.stat(str(tmp_path))
    tree = walk.TreeScan(str(tmp_path), info.st_dev, 4096, 4, walk.Budget(10 ** 6, 60), found,
                         lambda path, mount, extents, stat: {"path": path}, None, lambda dev: "x",
                         {str(tmp_path / "loop"): "a bind mount of this file system (/)"})
    tree.walk(os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY), str(tmp_path))
    assert found.total == 0 and fake_extents == []
    assert tree.skipped == [{"path": str(tmp_path / "loop"), "reason": "mount point of a bind mount of this file system (/); not crossed"}]


def test_directory_without_subdirectories_skips_the_type_test(tmp_path, fake_extents, monkeypatch):
    # A link count of 2 says the directory has no subdirectory (XFS, ext4 and tmpfs keep it so): its entries are
    # matched against the candidates without a type test each, and the result is the same.
    (tmp_path / "a" / "leaf").mkdir(parents=True)
    for index in range(5):
        _file(tmp_path / "a" / "leaf" / ("f%d" % index), 8)
    _file(tmp_path / "a" / "big", 64)
    listed = [tmp_path / "a" / "leaf" / "f3", tmp_path / "a" / "big"]
    if os.stat(str(tmp_path / "a" / "leaf")).st_nlink != 2:
        pytest.skip("this file system does not keep directory link counts")
    tested = []
    monkeypatch.setattr(walk, "_IS_DIR", lambda entry: tested.append(entry.name) or entry.is_dir(follow_symlinks=False))
    candidates = dict((os.stat(str(path)).st_ino, 16) for path in listed)
    tree, found = _scan(tmp_path, candidates=candidates)
    assert sorted(item["path"] for item in found.worst_first()) == sorted(str(path) for path in listed)
    assert not [name for name in tested if name.startswith("f")] and "big" in tested
    assert tree.counts["too_small"] == 4 and tree.counts["directories"] == 3 and tree.counts["opened"] == 2
