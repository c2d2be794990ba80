# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sysctl.d syntax: key names, parsing any sysctl.d file as each applier does, and rendering our drop-in.

Private to the collection. The two boot-time appliers read the same files differently, and the
precedence model must see what each of them sees (checked against the real programs by
tests/e2e/test_sysctl_oracle.py; systemd 252 ``src/sysctl/sysctl.c``, procps-ng 4.0.2 ``src/sysctl.c``):

- lines: systemd's ``read_line()`` ends a line at ``\\n``, ``\\r`` or NUL (``\\r\\n`` and ``\\n\\r`` count
  once) and stops reading the file at a line of 1 MiB or more; procps uses ``getline()`` (``\\n`` only, any
  length) and its C strings end at the first NUL. Neither splits
  on ``\\f``, ``\\v``, U+0085 or U+2028, so a form feed inside a comment keeps the rest a comment;
- blanks: systemd strips `` \\t\\n\\r``; procps strips whatever ``isspace()`` says (also ``\\v\\f``),
  but only before a ``-`` prefix, so ``- vm.x = 1`` names the key `` vm.x`` there (a failing write);
- comments start with ``#`` or ``;``; ``key = value`` splits on the first ``=``; a leading ``-`` on an
  assignment means "ignore failure"; ``-key`` without ``=`` is an exclusion: procps only keeps it away
  from globs, systemd forgets every earlier assignment of the key (it is not written at boot at all);
- key spelling: if the first separator is ``.``, dots and slashes swap (``net.ipv4.conf.eth0/100``);
  systemd then simplifies the path (``vm//x`` and ``vm/./x`` are ``vm/x``; ``..`` is refused), procps
  opens the path as spelled, which the kernel resolves the same way.

``Assignment.target`` is the /proc/sys-relative path the write lands on (``vm/min_free_kbytes``),
which is what decides whether two spellings are the same key.
"""


import re
import typing as t

# First line of every file we write; its presence tells us the file is ours.
HEADER_MARK = "# Managed by memfrag.linux.vm_sysctl"
HEADER = (
    HEADER_MARK + " (Ansible). Edits made here by hand are overwritten.",
    "# Persistent vm.* baseline, applied at boot by systemd-sysctl / sysctl --system.",
    "# One-shot triggers (vm.drop_caches, vm.compact_memory) are never persisted here.",
)

GLOB_CHARS = "*?["
APPLIERS = ("systemd", "procps")
SYSTEMD_BLANKS = " \t\n\r"  # WHITESPACE in systemd's string-util.h (strstrip)
PROCPS_BLANKS = " \t\n\v\f\r"  # isspace() in the C locale (procps lstrip/rstrip)
# One end of line for systemd's read_line(): \n, \r, NUL, or one of each in the orders it accepts.
_SYSTEMD_EOL = re.compile("(?:\n\r?|\r\n?)\x00?|\x00")
# systemd-sysctl reads lines with read_line(f, LONG_LINE_MAX): a line of this many bytes or more (without its
# end) fails with ENOBUFS and the rest of the file is not read; what came before it still applies.
SYSTEMD_LONG_LINE_MAX = 1024 * 1024


class Assignment(object):
    """One meaningful line of a sysctl.d file, as one applier reads it.

    ``key`` is the dotted spelling of ``target`` (``vm.min_free_kbytes``); ``value`` is None for an
    exclusion line (``-key`` without ``=``). ``target`` is the path under /proc/sys the applier writes
    (None when the spelling can never name a file: systemd refuses ``..``, procps a trailing ``/``).
    ``path`` is procps' own string for the key (``/proc/sys/`` + key as spelled), which it compares
    literally when deciding whether an explicit line keeps a glob off a key. ``line_number`` counts
    ``\\n`` lines, as an editor shows them. ``raw`` is the line without surrounding blanks.
    """

    __slots__ = ("line_number", "key", "value", "ignore_failure", "exclude", "glob", "raw", "target", "path")

    def __init__(self, line_number: int, key: str, value: t.Optional[str], ignore_failure: bool = False,
                 exclude: bool = False, raw: str = "", target: t.Optional[str] = None,
                 path: t.Optional[str] = None) -> None:
        self.line_number = line_number
        self.target = target
        self.key = dotted_key(target) if target else key
        self.value = value
        self.ignore_failure = ignore_failure
        self.exclude = exclude
        self.glob = any(c in (target or key) for c in GLOB_CHARS)
        self.raw = raw
        self.path = path

    def same_meaning(self, other: "Assignment") -> bool:
        return (self.target, self.value, self.exclude, self.glob) == (other.target, other.value, other.exclude,
                                                                      other.glob)

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


def _first_separator_swap(name: str) -> str:
    # Both tools: a key whose first separator is "." has its dots and slashes swapped from there on.
    for index, char in enumerate(name):
        if char == "/":
            return name
        if char == ".":
            return name[:index] + _swap_separators(name[index:])
    return name


def systemd_key(name: str) -> str:
    """The key systemd-sysctl stores for ``name``: slash form, ``//`` and ``.`` components dropped."""
    name = _first_separator_swap(name)
    absolute = name.startswith("/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    simplified = "/".join(parts)
    if not simplified:
        return "/" if absolute else name
    return simplified


def systemd_target(key: str) -> t.Optional[str]:
    # sysctl_write() refuses a path that is not normalized once simplified, i.e. one with "..".
    return None if ".." in key.split("/") else key


def procps_path(name: str) -> str:
    """procps' path string for ``name``: a second leading ``-`` is dropped again, then the separators swap."""
    if name.startswith("-"):
        name = name[1:]
    return "/proc/sys/" + _first_separator_swap(name)


def procps_target(path: str) -> t.Optional[str]:
    """The /proc/sys-relative file the kernel opens for procps' ``path`` (None: not a file there)."""
    if path.endswith("/"):
        return None
    parts = []  # type: t.List[str]
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    if parts[:2] != ["proc", "sys"] or len(parts) < 3:
        return None
    return "/".join(parts[2:])


def logical_lines(text: str, applier: str) -> t.List[t.Tuple[int, str]]:
    """``(editor line number, line text)`` of each line ``applier`` reads, without the end of line."""
    lines = []  # type: t.List[t.Tuple[int, str]]
    if applier == "procps":
        pieces = text.split("\n")
        for number, piece in enumerate(pieces, 1):
            if number == len(pieces) and piece == "":
                break
            # getline() keeps the "\n"; procps skips reads shorter than 2 bytes and stops at NUL.
            length = len(piece.encode("utf-8", "replace")) + (0 if number == len(pieces) else 1)
            if length < 2:
                continue
            if "\x00" in piece:
                piece = piece.split("\x00", 1)[0]
            elif number < len(pieces):
                piece += "\n"
            lines.append((number, piece))
        return lines
    number = 1
    start = 0
    for match in _SYSTEMD_EOL.finditer(text):
        if _too_long_for_systemd(text[start:match.start()]):
            return lines
        lines.append((number, text[start:match.start()]))
        number += text.count("\n", start, match.end())
        start = match.end()
    if start < len(text) and not _too_long_for_systemd(text[start:]):
        lines.append((number, text[start:]))
    return lines


def _too_long_for_systemd(line: str) -> bool:
    # A character is 1 to 4 bytes of UTF-8: only lines near the limit need encoding to know.
    if len(line) * 4 < SYSTEMD_LONG_LINE_MAX:
        return False
    return len(line.encode("utf-8", "replace")) >= SYSTEMD_LONG_LINE_MAX


def _c_rstrip(text: str, blanks: str) -> str:
    # procps' rstrip() never looks at the first character ("while (end > line && isspace(*end))").
    end = len(text) - 1
    while end > 0 and text[end] in blanks:
        end -= 1
    return text[:end + 1]


def parse_line(number: int, line: str, applier: str) -> t.Union[Assignment, str, None]:
    """One logical line: an Assignment, ``"invalid"`` (the applier warns and skips it), or None."""
    if applier == "procps":
        key = line.lstrip(PROCPS_BLANKS)
        if len(key.encode("utf-8", "replace")) < 2 or key[0] in "#;":
            return None
        raw = key.strip(PROCPS_BLANKS)
        if "=" not in key:
            if key[0] != "-":
                return "invalid"
            name = _c_rstrip(key[1:], PROCPS_BLANKS)
            path = procps_path(name)
            return Assignment(number, name, None, exclude=True, raw=raw, target=procps_target(path), path=path)
        name, value = key.split("=", 1)
        ignore_failure = name.startswith("-")
        if ignore_failure:
            name = name[1:]
        name = _c_rstrip(name, PROCPS_BLANKS)
        if not name:
            return "invalid"
        value = _c_rstrip(value.lstrip(PROCPS_BLANKS), PROCPS_BLANKS)
        path = procps_path(name)
        return Assignment(number, name, value, ignore_failure=ignore_failure, raw=raw, target=procps_target(path),
                          path=path)
    stripped = line.strip(SYSTEMD_BLANKS)
    if not stripped or stripped[0] in "#;\n":
        return None
    if "=" in stripped:
        name, value = stripped.split("=", 1)
        ignore_failure = name.startswith("-")
        if ignore_failure:
            name = name[1:]
        key = systemd_key(name.strip(SYSTEMD_BLANKS))
        if not key:
            return "invalid"
        return Assignment(number, key, value.strip(SYSTEMD_BLANKS), ignore_failure=ignore_failure, raw=stripped,
                          target=systemd_target(key))
    if stripped[0] != "-":
        return "invalid"
    key = systemd_key(stripped[1:].strip(SYSTEMD_BLANKS))
    return Assignment(number, key, None, exclude=True, raw=stripped, target=systemd_target(key))


def parse_sysctl_conf(text: str, applier: str = "systemd") -> t.Tuple[t.List[Assignment], t.List[int]]:
    """Assignments of one sysctl.d file as ``applier`` reads it, in file order, and the invalid line numbers.

    Invalid lines are skipped by both appliers (with a warning), so they are reported, not fatal.
    """
    assignments = []  # type: t.List[Assignment]
    invalid = []  # type: t.List[int]
    for number, line in logical_lines(text, applier):
        parsed = parse_line(number, line, applier)
        if parsed == "invalid":
            invalid.append(number)
        elif isinstance(parsed, Assignment):
            assignments.append(parsed)
    return assignments, invalid


def common_lines(text: str) -> t.List[t.Tuple[int, str, t.Union[Assignment, str, None]]]:
    """Each ``\\n`` line of ``text`` with the meaning both appliers agree on.

    The third item is the Assignment, None for a blank or comment line, ``"invalid"``, or
    ``"ambiguous"`` when systemd-sysctl and ``sysctl --system`` would read the line differently (an
    embedded carriage return or NUL, a form feed or vertical tab at its edges, ``- key``, braces in a glob).
    """
    result = []  # type: t.List[t.Tuple[int, str, t.Union[Assignment, str, None]]]
    for number, line in enumerate(text.split("\n"), 1):
        if "\r" in line.rstrip("\r") or "\x00" in line:
            result.append((number, line, "ambiguous"))
            continue
        line = line.rstrip("\r")
        systemd = parse_line(number, line, "systemd")
        procps = parse_line(number, line + "\n", "procps")
        if isinstance(systemd, Assignment) and isinstance(procps, Assignment):
            meaning = systemd if systemd.same_meaning(procps) and systemd.target else "ambiguous"  # type: t.Any
            if systemd.glob and "{" in systemd.key:
                meaning = "ambiguous"  # systemd-sysctl expands braces in a glob (GLOB_BRACE), procps does not
        elif systemd is None and procps is None:
            meaning = None
        elif systemd == "invalid" and procps == "invalid":
            meaning = "invalid"
        else:
            meaning = "ambiguous"
        result.append((number, line.strip(SYSTEMD_BLANKS), meaning))
    return result


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
    boot is never what anyone wants). An exclusion line (``-key``) of a key we manage is removed:
    systemd-sysctl would drop our assignment because of it. Lines the two appliers read differently
    are removed too. Comments of a file we did not write are not kept.

    Returns ``(new_text or None when no assignment is left, persisted key -> value, notes)``.
    """
    notes = []  # type: t.List[str]
    blocked = set(never_persist)
    # (kind, key, line text): kind "set" for an explicit assignment, "other" for globs and exclusions
    # of keys we do not manage.
    entries = []  # type: t.List[t.Tuple[str, str, str]]
    if existing is not None:
        invalid = []  # type: t.List[int]
        ambiguous = []  # type: t.List[int]
        seen = set()  # type: t.Set[str]
        for number, line, meaning in common_lines(existing):
            if meaning is None:
                continue
            if meaning == "invalid":
                invalid.append(number)
                continue
            if not isinstance(meaning, Assignment):
                ambiguous.append(number)
                continue
            key = meaning.key
            if meaning.exclude and not meaning.glob and key in settings:
                notes.append("removed the exclusion line %s: systemd-sysctl would not apply %s at boot because of "
                             "it" % (line, key))
                continue
            if meaning.exclude or meaning.glob:
                entries.append(("other", key, line))
                continue
            if key in blocked:
                notes.append("removed %s from the drop-in: it is a one-shot trigger and would fire at every boot" % key)
                continue
            if key in seen:
                # Only the last assignment counts at boot; keep one line so the file says what happens.
                entries = [e for e in entries if not (e[0] == "set" and e[1] == key)]
                notes.append("collapsed duplicate assignments of %s" % key)
            seen.add(key)
            entries.append(("set", key, line))
        if invalid:
            notes.append("dropped line(s) %s that were not sysctl assignments" % ", ".join(str(n) for n in invalid))
        if ambiguous:
            notes.append("dropped line(s) %s that systemd-sysctl and sysctl --system read differently (carriage "
                         "return, NUL, form feed or vertical tab, or a blank after '-')"
                         % ", ".join(str(n) for n in ambiguous))
    if state == "absent":
        entries = [e for e in entries if not (e[0] == "set" and e[1] in settings)]
    else:
        index = dict((key, i) for i, (kind, key, _line) in enumerate(entries) if kind == "set")
        for key in sorted(settings):
            line = "%s = %s" % (key, settings[key])
            if key in index:
                entries[index[key]] = ("set", key, line)
            else:
                entries.append(("set", key, line))
    persisted = {}  # type: t.Dict[str, str]
    for kind, key, line in entries:
        if kind == "set":
            persisted[key] = line.split("=", 1)[1].strip()
    if not entries:
        return None, persisted, notes
    return render_dropin([line for _kind, _key, line in entries]), persisted, notes
