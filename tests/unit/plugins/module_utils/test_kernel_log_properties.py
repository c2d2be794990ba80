# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests (hypothesis) of the kernel log scan: hostile lines, prefixes, state files and options.

Over the line classifier, the prefix parser, the file-line path, the state loader and the scan entry point
(what the module runs), for generated input built from the patterns' own vocabulary mixed with arbitrary
text: no exception other than the documented clean failure (ValueError naming the option from run_scan);
fields within their bounds; no file written but the state file; CPU time per input character under a
generous bound (a guard against superlinear blow-ups, not a speed target - those live in the benchmarks).

The suite runs with a fixed seed and a small budget; tests/benchmarks/fuzz_kernel_log_scan.py runs the same
properties with a larger one (MEMFRAG_FUZZ_EXAMPLES, random seed).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import patterns, sources
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    FORMS, classify_message, parse_prefix, release_of)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import Summary, feed_line_hit, run_scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import LineHit
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import (
    empty_state, load_state, save_state, state_path_problem)

EXAMPLES = int(os.environ.get("MEMFRAG_FUZZ_EXAMPLES", "60"))
SUITE = settings(max_examples=EXAMPLES, deadline=None, derandomize="MEMFRAG_FUZZ_EXAMPLES" not in os.environ, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# CPU seconds allowed per input character, plus a constant: orders of magnitude above what a linear scan
# costs (about a microsecond per character at worst), far below what quadratic behaviour does on long input.
PER_CHAR = 5e-5
CONSTANT = 0.05

FRAGMENTS = [
    "XFS: ", "xfs: ", "possible memory allocation deadlock", " size ", " in ", "kmem_alloc", " (mode:0x", "250", ")",
    "(", ": page allocation failure", ". order:", ": page allocation stalls for ", "ms", " order:", ", mode:0x",
    "(GFP_KERNEL|__GFP_NOWARN)", ", nodemask=(null)", "INFO: task ", "task ", ":", " blocked for more than ",
    " seconds", " invoked oom-killer: gfp_mask=0x", ", order=", "-1", "oom-kill:constraint=", "CONSTRAINT_NONE",
    ",task=", ",pid=", ",", "Out of memory: ", "Killed process ", "Kill process ", "kill process ", ", UID ",
    " score ", " or sacrifice child", " or a child", " sharing same memory", "Linux version ", "3.10.0-1160.el7",
    " Not tainted ", "Tainted: G  W ", "CPU: 3 PID: 1 Comm: x", " #1", "Mar  5 22:42:57 ", "2024-03-05T22:42:57.5+01:00 ",
    "node06 ", "kernel: ", "kernel[4242]: ", "mallory: ", "[ 12.5] ", "[Tue Nov  5 11:18:34 2019] ", "[ T416] ", "<4>",
    "> ", " ", "\t", "\xa0", "\ufffd", "\x00", "0x", "ffffffffffffffffffff", "9" * 30, "-",
]
# An explicit alphabet (printable ASCII, controls, and characters that matter here: U+00A0, U+FFFD, other
# Unicode spaces and digits, a surrogate): hypothesis' default alphabet costs seconds to build in every run.
ALPHABET = "".join(chr(c) for c in range(32, 127)) + "\x00\t\r\x0b\x0c\x1c\x85\xa0\xe9\u2028\u3000\ufffd\u0663\xb2\ud800"
_text = st.text(alphabet=ALPHABET, max_size=6)
_piece = st.one_of(st.sampled_from(FRAGMENTS), _text, st.integers(0, 10 ** 25).map(str),
                   st.tuples(st.sampled_from(FRAGMENTS), st.integers(1, 60)).map(lambda pair: pair[0] * pair[1]))
messages = st.lists(_piece, max_size=30).map("".join)


def _bounded_cpu(function, *args):
    started = time.thread_time()
    result = function(*args)
    return result, time.thread_time() - started


def _check_fields(match):
    if match is None:
        return
    assert match.form in FORMS
    for key, value in match.fields.items():
        if key in ("pid", "killed_pid"):
            assert value is None or 0 <= value <= patterns.PID_MAX_LIMIT
        elif key == "order":
            assert value is None or -1 <= value <= patterns.ORDER_MAX
        elif key == "mode":
            assert value is None or 0 <= value <= patterns.U32_MAX
        elif key == "seconds":
            assert value is None or 0 <= value <= patterns.S64_MAX
        elif key == "gfp_flags":
            assert isinstance(value, list) and all(isinstance(name, str) for name in value)


@SUITE
@given(messages, st.sampled_from([None, "3.10.0-1160.el7.x86_64", "2.6.32", "4.19.0", "6.1.0", "not a release"]))
def test_classifier_never_raises_and_bounds_its_fields(message, release):
    match, spent = _bounded_cpu(classify_message, message, release)
    _check_fields(match)
    found = release_of(message)
    assert found is None or isinstance(found[0], str) and len(found[0]) <= 128
    assert spent <= CONSTANT + PER_CHAR * len(message)


@SUITE
@given(messages, st.floats(min_value=0, max_value=4e9))
def test_prefix_parser_never_raises(line, reference):
    speaker, spent = _bounded_cpu(parse_prefix, line, reference)
    assert isinstance(speaker.message, str) and speaker.origin in ("syslog", "dmesg", "text")
    assert speaker.uptime is None or 0 <= speaker.uptime < 1e13
    assert spent <= CONSTANT + PER_CHAR * len(line)


@SUITE
@given(st.lists(st.one_of(messages.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=200)),
                min_size=3, max_size=3))
def test_file_line_path_never_raises(lines):
    summary = Summary(None, 5)
    line, previous, following = lines
    _result, spent = _bounded_cpu(feed_line_hit, summary, LineHit(0, line, previous, following), "/l", 1.7e9, None)
    for event in summary.events:
        assert event["byte_exact"] in (True, False)
    assert spent <= CONSTANT + PER_CHAR * sum(len(item) for item in lines)


_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True), st.text(alphabet=ALPHABET, max_size=50)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(alphabet=ALPHABET, max_size=10), inner, max_size=4)),
    max_leaves=20)
_record = st.fixed_dictionaries({}, optional={
    "dev": _json_value, "ino": _json_value, "offset": _json_value, "head_len": _json_value, "head_sha1": _json_value,
    "path": _json_value, "raw_size": _json_value, "mtime": _json_value, "compressed": _json_value})
_journal = st.one_of(_json_value, st.fixed_dictionaries({"cursor": _json_value, "first": _json_value}))
_kmsg = st.one_of(_json_value, st.fixed_dictionaries({"boot_id": _json_value, "seq": _json_value}))
_state = st.one_of(
    _json_value,
    st.fixed_dictionaries({"version": st.sampled_from([1, 1, 2, "1", True]), "files": st.lists(_record, max_size=4)},
                          optional={"journal": _journal, "kmsg": _kmsg}))


@SUITE
@given(st.one_of(_state.map(lambda value: json.dumps(value).encode()), st.binary(max_size=300)))
def test_state_loader_never_raises_and_returns_a_usable_state(content):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "state.json")
        with open(path, "wb") as handle:
            handle.write(content)
        state, problem = load_state(path)
        assert problem is None or isinstance(problem, str)
        assert set(state) == set(empty_state())
        # What the loader lets through, the scan accepts.
        run_scan(_options(sources=["journal", "files"], paths=[os.path.join(directory, "none")]), state,
                 [].append, None, time.time())


def _options(**overrides):
    options = {"sources": ["files"], "paths": [], "since": None, "kernel_release": None, "max_events": 10,
               "include_userspace_kmsg": False}
    options.update(overrides)
    return options


@settings(SUITE, max_examples=max(10, EXAMPLES // 5))
@given(st.lists(st.lists(messages, max_size=6).map("\n".join), min_size=1, max_size=3),
       st.one_of(st.none(), st.sampled_from(["24h", "7d", "2024-03-05", "yesterday", "-5h", "9" * 400, "1e999"]),
                 st.text(alphabet=ALPHABET, max_size=20)),
       st.one_of(st.none(), st.sampled_from(["3.10.0-1160.el7.x86_64", "6.1.0", "x", "9" * 5000]), st.text(alphabet=ALPHABET, max_size=12)),
       st.integers(-5, 1000), st.one_of(_state.map(json.dumps), st.just("")))
def test_scan_entry_point_fails_only_cleanly_and_writes_only_its_state(files, since, release, max_events, state_text):
    with tempfile.TemporaryDirectory() as directory:
        for index, text in enumerate(files):
            with open(os.path.join(directory, "messages.%d" % index), "w", encoding="utf-8", errors="surrogatepass") as handle:
                handle.write(text)
        os.mkfifo(os.path.join(directory, "messages.fifo"))
        state_path = os.path.join(directory, "state.json")
        if state_text:
            with open(state_path, "w") as handle:
                handle.write(state_text)
        before = sorted(os.listdir(directory))
        assert state_path_problem(state_path) is None
        state, _problem = load_state(state_path)
        started = time.thread_time()
        try:
            result, new_state = run_scan(_options(paths=[os.path.join(directory, "messages*")], since=since,
                                                  kernel_release=release, max_events=max_events), state, [].append,
                                         None, time.time())
        except ValueError as exc:
            assert any(name in str(exc) for name in ("since", "kernel_release", "max_events")), exc
            return
        spent = time.thread_time() - started
        assert spent <= 1.0 + PER_CHAR * sum(len(text) for text in files)
        assert sum(result["counts"].values()) + result["events_dropped"] >= len(result["events"])
        json.dumps(result)  # what exit_json sends must serialise
        save_state(state_path, new_state)
        after = sorted(os.listdir(directory))
        assert after == sorted(set(before) | {"state.json"})
        again, problem = load_state(state_path)
        assert problem is None and again["files"] == new_state["files"]


_stream_line = st.one_of(messages, st.text(alphabet=ALPHABET, max_size=40), st.integers(8000, 20000).map(lambda n: "z" * n))


@settings(SUITE, max_examples=max(10, EXAMPLES // 2))
@given(st.lists(_stream_line, max_size=12).map("\n".join), st.integers(16, 40000), st.booleans())
def test_chunking_never_changes_the_lines_found(text, chunk, use_libc):
    # Whatever the chunk size and wherever lines and long lines fall against it, the same lines come out
    # as with one chunk holding everything, the end offset is the stream length, and nothing raises.
    data = text.encode("utf-8", "surrogatepass")
    saved = sources.CHUNK, sources.USE_LIBC, list(sources._LIBC)
    try:
        sources.USE_LIBC = use_libc
        sources._LIBC[:] = []
        sources.CHUNK = 1 << 20
        whole = list(sources.scan_stream(io.BytesIO(data), "x", 0, [].append))
        sources.CHUNK = chunk
        pieces = list(sources.scan_stream(io.BytesIO(data), "x", 0, [].append))
    finally:
        sources.CHUNK, sources.USE_LIBC = saved[0], saved[1]
        sources._LIBC[:] = saved[2]
    assert pieces[-1] == whole[-1] == len(data)
    assert [(h.offset, h.line) for h in pieces[:-1]] == [(h.offset, h.line) for h in whole[:-1]]
