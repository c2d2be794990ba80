# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Random sysctl.d trees for the real-applier oracle (hypothesis strategies) and the comparison itself.

A generated tree uses the same shape as tests/fixtures/sysctl_oracle/trees.yml (files, links, dirs), so
a tree the fuzzer finds can be pasted there as it is. It draws over every place both appliers read
(the five sysctl.d directories and /etc/sysctl.conf) a few names that collide on purpose (shadowing,
hidden names, non-.conf names), entries of every kind (text, empty or blank files, /dev/null links,
relative, absolute and dangling links, directories), and lines in every spelling the two parsers treat
differently: ``/`` or ``.`` separators, repeated separators, surrounding blanks, ``-`` prefixes
(ignore failure, or an exclusion without ``=``), globs and glob exclusions, ``#``/``;`` comments,
values with inner blanks or quotes or a trailing comment, lines without ``=``, lines around systemd's 1 MiB
limit, CRLF, a last line without a newline. Every assignment carries its own number, so what an applier
wrote names the line.
"""

import os

from hypothesis import strategies as st

from helpers import sysctl_oracle as oracle

KEYS = ["vm." + key for key in oracle.VM_KEYS]
PLACES = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
NAMES = ("10-a.conf", "50-b.conf", "60-memfrag.conf", "99-sysctl.conf", "Z.conf", ".h.conf", "50-b.conf.bak",
         "README", ".conf", "[1]0-a.conf", "*.conf", "5?-b.conf", "1\\0-a.conf", "{10-a,Z}.conf")
GLOBS = ("vm.swap*", "vm.*", "vm.dirty_*", "vm.*ratio", "vm.?wappiness", "vm.[ds]*", "vm/dirty_*", "vm*",
         "vm.*_ratio", "vm.dirty_[b]*", "v?.swappiness", "vm.[!d]*", "vm.swap[", "vm.{swap,dirty}*")


def _spell(draw, key):
    """One spelling of ``key`` (``vm.swappiness``, or a glob) that both tools may read as that key, or not."""
    name = key[3:]
    form = draw(st.sampled_from(("dot", "dot", "slash", "double", "dotdot", "lead", "dotcomp", "trail")))
    return {"dot": "vm." + name, "slash": "vm/" + name, "double": "vm//" + name, "dotdot": "vm.." + name,
            "lead": "/vm/" + name, "dotcomp": "vm/./" + name, "trail": "vm." + name + "."}[form]


def _blank(draw):
    return draw(st.sampled_from(("", "", " ", "  ", "\t", " \t")))


@st.composite
def _line(draw, counter):
    kind = draw(st.sampled_from(("set", "set", "set", "set", "glob", "exclude", "exclude_glob", "comment",
                                 "invalid", "blank", "long", "control")))
    if kind == "control":
        # A control character that one tool takes as an end of line or a blank and the other does not.
        counter[0] += 1
        key = _spell(draw, draw(st.sampled_from(KEYS)))
        return draw(st.sampled_from(("# c\f", "# c\v", "# c\r", "# c\x85", "# c\u2028", "\f", "\v", "x\x00",
                                     ""))) + "%s = %d" % (key, 1000 + counter[0]) + draw(st.sampled_from(
                                         ("", "\x00# c", "\r# c", "\v", "\f")))
    if kind in ("set", "glob"):
        if counter[0] and draw(st.integers(min_value=0, max_value=5)) == 0:
            number = str(1000 + counter[0])  # the same value text again (systemd keeps the earlier place)
        else:
            counter[0] += 1
            number = str(1000 + counter[0])
        key = _spell(draw, draw(st.sampled_from(KEYS if kind == "set" else GLOBS)))
        value = draw(st.sampled_from(("{n}", "{n}", "{n} 7", "{n}\t7", '"{n}"', "{n} # note", "{n} ; x",
                                      "{n}=2", "'{n}'", "", "{n}\v", "{n}\f"))).format(n=number)
        dash = draw(st.sampled_from(("", "", "", "-")))
        return "%s%s%s%s=%s%s%s" % (_blank(draw), dash, key, _blank(draw), _blank(draw), value, _blank(draw))
    if kind == "exclude":
        return "%s-%s%s" % (_blank(draw), _spell(draw, draw(st.sampled_from(KEYS))), _blank(draw))
    if kind == "exclude_glob":
        return "-" + _spell(draw, draw(st.sampled_from(GLOBS)))
    if kind == "comment":
        return "%s%s %s = 1" % (_blank(draw), draw(st.sampled_from("#;")), draw(st.sampled_from(KEYS)))
    if kind == "invalid":
        return draw(st.sampled_from(KEYS + ["garbage", "= 5", "=vm.swappiness=9"]))
    if kind == "long":
        # 1048575 bytes is the longest line systemd-sysctl reads; one more and it stops reading the file.
        return "# " + "x" * draw(st.sampled_from((200, 5000, 5000, 1048573, 1048574)))
    return _blank(draw)


@st.composite
def _text(draw, counter):
    lines = draw(st.lists(_line(counter), min_size=1, max_size=5))
    eol = draw(st.sampled_from(("\n", "\n", "\n", "\r\n", "\n\r", "\r")))
    text = eol.join(lines)
    if draw(st.booleans()):
        text += eol  # else: the last line has no newline
    return text


@st.composite
def trees(draw):
    """One tree in the trees.yml shape: {"files": {...}, "links": {...}, "dirs": [...]}."""
    counter = [0]
    case = {"files": {}, "links": {}, "dirs": []}
    taken = set()
    real_files = []
    for _entry in range(draw(st.integers(min_value=1, max_value=6))):
        place = draw(st.sampled_from(PLACES + ("/etc/sysctl.conf",)))
        path = place if place == "/etc/sysctl.conf" else place + "/" + draw(st.sampled_from(NAMES))
        if path in taken:
            continue
        taken.add(path)
        kind = draw(st.sampled_from(("text", "text", "text", "text", "empty", "blank", "null", "link", "abslink",
                                     "dangling", "dir", "sibling", "loop", "linkdir")))
        if kind == "text":
            case["files"][path] = draw(_text(counter))
            real_files.append(path)
        elif kind == "empty":
            case["files"][path] = ""
        elif kind == "blank":
            case["files"][path] = "\n  \n"
        elif kind == "null":
            case["links"][path] = "/dev/null"
        elif kind == "dangling":
            case["links"][path] = "/nowhere/x.conf"
        elif kind == "dir":
            case["dirs"].append(path)
        elif kind == "loop":
            case["links"][path] = os.path.basename(path)
        elif kind == "linkdir":
            case["links"][path] = "/usr/lib/sysctl.d"
        elif kind == "sibling":
            # A link to another entry of the tree (a vendor file, /etc/sysctl.conf, a link or a mask).
            others = sorted(p for p in taken if p != path)
            if not others:
                continue
            target = draw(st.sampled_from(others))
            absolute = draw(st.booleans())
            case["links"][path] = target if absolute else os.path.relpath(target, os.path.dirname(path))
        else:
            # A link to a file of its own outside the sysctl directories (Debian's 99-sysctl.conf, tuned).
            target = "/usr/share/site/%d.conf" % len(taken)
            case["files"][target] = draw(_text(counter))
            case["links"][path] = target if kind == "abslink" else os.path.relpath(target, os.path.dirname(path))
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        # Merged /usr: /lib is a link to usr/lib, so /lib/sysctl.d is /usr/lib/sysctl.d.
        usr = set(case["files"]) | set(case["links"]) | set(case["dirs"])
        for kind in ("files", "links"):
            for path in [p for p in case[kind] if p.startswith("/lib/")]:
                value = case[kind].pop(path)
                if "/usr" + path not in usr:  # the /usr/lib entry of that name is the one that exists
                    case[kind]["/usr" + path] = value
        case["dirs"] = ["/usr" + p if p.startswith("/lib/") else p for p in case["dirs"]
                        if not (p.startswith("/lib/") and "/usr" + p in usr)]
        case["make_dirs"] = [d for d in oracle.SYSCTL_DIRS if d != "lib/sysctl.d"]
        case["links"]["/lib"] = "usr/lib"
    return case


def model_in_process(root, keys=KEYS):
    """vm_sysctl's boot model for the tree, called directly (the module reports exactly this as ``boot``)."""
    from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import analyse, collect
    return analyse(collect(root), keys)


def disagreements(root, case, model, truth):
    """Messages for every key and applier where ``model`` does not name what the real program wrote."""
    problems = []
    for key in KEYS:
        for applier, name in (("systemd", "systemd-sysctl"), ("procps", "sysctl --system")):
            said = model[key] if applier == "systemd" else model[key]["procps"]
            wrote = truth[applier][key]
            where = "%s %s: wrote %r, vm_sysctl said %r" % (key, name, wrote,
                                                            {k: said[k] for k in ("file", "line", "value")})
            if wrote is None:
                if said["file"] is not None:
                    problems.append(where)
                continue
            if said["value"] != wrote or (said["file"], said["line"]) not in oracle.candidates(root, case, wrote):
                problems.append(where)
    return problems


def check_tree(root, case, toolbox):
    """Build ``case`` at ``root`` (a fresh directory), run both real appliers and the model; the problems."""
    oracle.build_tree(root, case)
    model = model_in_process(root)
    truth = {}
    for applier in ("systemd", "procps"):
        written, run = oracle.run_applier(root, toolbox, applier)
        if run.returncode not in (0, 1):
            return ["%s exited %d: %s" % (applier, run.returncode, run.stderr[-500:])]
        truth[applier] = written
    return disagreements(root, case, model, truth)
