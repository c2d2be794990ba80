# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sysctl.d syntax: key names, parsing any sysctl.d file, and rendering the one drop-in we manage.

Private to the collection. The parser follows what both boot-time appliers accept, so the
precedence model sees the same assignments they do:

- systemd-sysctl (sysctl.d(5)) and procps ``sysctl --system`` (src/sysctl.c ``parse_setting_line``)
  skip empty lines and lines whose first non-blank character is ``#`` or ``;``;
- ``key = value`` splits on the first ``=``; blanks around key and value are dropped;
- a leading ``-`` on an assignment means "ignore failure"; ``-key`` without ``=`` excludes the key
  from glob assignments; a key containing ``*?[`` is a glob;
- ``.`` or ``/`` separate name components: if the first separator is ``/`` the remaining dots are
  part of a component (``net/ipv4/conf/eth0.100/forwarding``), so the dotted spelling swaps the two.
"""


import typing as t

# First line of every file we write; its presence tells us the file is ours.
HEADER_MARK = "# Managed by memfrag.linux.vm_sysctl"
HEADER = (
    HEADER_MARK + " (Ansible). Edits made here by hand are overwritten.",
    "# Persistent vm.* baseline, applied at boot by systemd-sysctl / sysctl --system.",
    "# One-shot triggers (vm.drop_caches, vm.compact_memory) are never persisted here.",
)

GLOB_CHARS = "*?["


class Assignment(object):
    """One meaningful line of a sysctl.d file.

    ``key`` is the dotted spelling (``vm.min_free_kbytes``); ``value`` is None for an exclusion
    line (``-key`` without ``=``). ``raw`` is the line without surrounding blanks.
    """

    __slots__ = ("line_number", "key", "value", "ignore_failure", "exclude", "glob", "raw")

    def __init__(self, line_number: int, key: str, value: t.Optional[str], ignore_failure: bool = False,
                 exclude: bool = False, raw: str = "") -> None:
        self.line_number = line_number
        self.key = key
        self.value = value
        self.ignore_failure = ignore_failure
        self.exclude = exclude
        self.glob = any(c in key for c in GLOB_CHARS)
        self.raw = raw

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "Assignment(%d, %r, %r)" % (self.line_number, self.key, self.value)


def _swap_separators(name: str) -> str:
    return name.translate(str.maketrans("./", "/."))


def dotted_key(name: str) -> str:
    """The dotted spelling of a sysctl name given with either separator (sysctl.d(5) rule)."""
    name = name.strip()
    for char in name:
        if char == "/":
            return _swap_separators(name.strip("/"))
        if char == ".":
            break
    return name


def key_path(dotted: str) -> str:
    """``vm.min_free_kbytes`` -> ``vm/min_free_kbytes`` (relative to /proc/sys)."""
    return _swap_separators(dotted)


def parse_sysctl_conf(text: str) -> t.Tuple[t.List[Assignment], t.List[int]]:
    """Assignments of one sysctl.d file in file order, and the numbers of lines that are not valid.

    Invalid lines are skipped by both appliers (with a warning), so they are reported, not fatal.
    """
    assignments = []  # type: t.List[Assignment]
    invalid = []  # type: t.List[int]
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if "=" not in stripped:
            if stripped.startswith("-") and len(stripped) > 1:
                assignments.append(Assignment(number, dotted_key(stripped[1:]), None, exclude=True, raw=stripped))
            else:
                invalid.append(number)
            continue
        key, value = stripped.split("=", 1)
        ignore_failure = key.startswith("-")
        if ignore_failure:
            key = key[1:]
        key = dotted_key(key)
        if not key:
            invalid.append(number)
            continue
        assignments.append(Assignment(number, key, value.strip(), ignore_failure=ignore_failure, raw=stripped))
    return assignments, invalid


def is_managed(text: t.Optional[str]) -> bool:
    """True when ``text`` starts with the header this module writes."""
    return bool(text) and text.startswith(HEADER_MARK)  # type: ignore[union-attr]


def render_dropin(lines: t.Sequence[str]) -> str:
    """The drop-in text: header, then one assignment per line, newline-terminated."""
    return "\n".join(list(HEADER) + list(lines)) + "\n"


def plan_dropin(existing: t.Optional[str], settings: t.Mapping[str, str], state: str,
                never_persist: t.Iterable[str] = ()) -> t.Tuple[t.Optional[str], t.Dict[str, str], t.List[str]]:
    """Compute the drop-in after applying ``settings`` (dotted key -> value text) with ``state``.

    Assignments already in the file for other keys stay, in their order and spelling, so several
    tasks can share the drop-in; keys we set are updated in place or appended in sorted order.
    Keys in ``never_persist`` are dropped from an existing file (a trigger that fires at every
    boot is never what anyone wants). Comments of a file we did not write are not kept.

    Returns ``(new_text or None when no assignment is left, persisted key -> value, notes)``.
    """
    notes = []  # type: t.List[str]
    blocked = set(never_persist)
    entries = []  # type: t.List[t.Tuple[str, str]]  # (key or '', line text)
    if existing is not None:
        assignments, invalid = parse_sysctl_conf(existing)
        if invalid:
            notes.append("dropped line(s) %s that were not sysctl assignments" % ", ".join(str(n) for n in invalid))
        seen = set()  # type: t.Set[str]
        for assignment in assignments:
            key = "" if assignment.exclude or assignment.glob else assignment.key
            if key in blocked:
                notes.append("removed %s from the drop-in: it is a one-shot trigger and would fire at every boot" % key)
                continue
            if key and key in seen:
                # Only the last assignment counts at boot; keep one line so the file says what happens.
                entries = [e for e in entries if e[0] != key]
                notes.append("collapsed duplicate assignments of %s" % key)
            seen.add(key)
            entries.append((key, assignment.raw))
    if state == "absent":
        entries = [e for e in entries if not e[0] or e[0] not in settings]
    else:
        index = {key: i for i, (key, _line) in enumerate(entries) if key}
        for key in sorted(settings):
            line = "%s = %s" % (key, settings[key])
            if key in index:
                entries[index[key]] = (key, line)
            else:
                entries.append((key, line))
    persisted = {}  # type: t.Dict[str, str]
    for key, line in entries:
        if key:
            persisted[key] = line.split("=", 1)[1].strip()
    if not entries:
        return None, persisted, notes
    return render_dropin([line for _key, line in entries]), persisted, notes
