"""Hostile programs against the code sandbox: each must be graded failed, with the expected reason, leave no trace on
the host, and leave the test process alive.  All run in one parallel batch with short limits (a few seconds total).

Each hostile ``code`` is paired with tests that would pass if they ran (``assert True``): a pass would therefore mean
the sandbox accepted a program that did something it must not, or accepted one without evidence that tests ran.
"""

from __future__ import annotations

import glob
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lm_eval_diversity.quality import sandbox
from lm_eval_diversity.quality.sandbox import (
    MODE_ENV,
    UNSAFE_ENV,
    ExecResult,
    Program,
    SandboxUnavailableError,
    available_modes,
    run_programs,
)

TOKEN = secrets.token_hex(8)
ESCAPE_FILES = [f"/tmp/escape_{TOKEN}_{i}" for i in range(9)]
ESCAPE_SHM = f"/dev/shm/escape_{TOKEN}"
SECRET_FILE = Path.home() / ".cache" / f"lmeds_secret_{TOKEN}"
SECRET = secrets.token_hex(16)
MAX_OUT = 100_000

# name -> (code, tests, accepted failure reasons; "" = a pass is harmless because the OS isolation contains the write)
HOSTILE: dict[str, tuple[str, str, set[str]]] = {
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "assert True", {"forbidden"}),
    "subprocess_bomb": (
        "import subprocess\nprocs = [subprocess.Popen(['sleep', '60']) for _ in range(500)]",
        "assert True",
        {"forbidden"},
    ),
    "posixsubprocess_direct": ("import _posixsubprocess", "assert True", {"forbidden"}),
    "memory_bomb_one_shot": ("x = bytearray(16 * 1024**3)", "assert True", {"memory"}),
    "memory_bomb_growing": (
        "chunks = []\nwhile True:\n    chunks.append(' ' * 10**8)",
        "assert True",
        {"memory", "timeout"},  # timeout only if the machine is too loaded to allocate 512 MB within 2 s
    ),
    "infinite_loop": ("while True:\n    pass", "assert True", {"timeout"}),
    "sleep_forever": ("import time\ntime.sleep(3600)", "assert True", {"timeout"}),
    "busy_loop_ignoring_signals": (
        "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
        "assert True",
        {"timeout"},
    ),
    # setsid fails (EPERM) when the sandbox already made the child a session leader; otherwise it must time out
    "setsid_and_hide": ("import os, time\nos.setsid()\ntime.sleep(3600)", "assert True", {"timeout", "forbidden"}),
    "write_outside_scratch_open": (
        f"open({ESCAPE_FILES[0]!r}, 'w').write('escaped')",
        "assert True",
        {"forbidden"},
    ),
    "write_outside_scratch_os_open": (
        f"import os\nfd = os.open({ESCAPE_FILES[1]!r}, os.O_CREAT | os.O_WRONLY)\nos.write(fd, b'escaped')",
        "assert True",
        {"forbidden"},
    ),
    "write_outside_scratch_relative": (
        f"import os\nopen('../../../..' + {ESCAPE_FILES[2]!r}, 'w').write('escaped')",
        "assert True",
        {"forbidden"},
    ),
    "read_etc_shadow": ("print(open('/etc/shadow').read())", "assert True", {"forbidden"}),
    "read_root_home": (
        "import os\nfor name in os.listdir('/root'):\n    print('ROOTENTRY', name)\n"
        "print(open('/root/.bash_history').read())",
        "assert True",
        {"forbidden", "runtime-error"},
    ),
    "network_loopback": (
        "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'hello')",
        "assert True",
        {"forbidden"},
    ),
    "network_public_ip": (
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
        "assert True",
        {"forbidden"},
    ),
    "network_raw_socket_module": (
        "import _socket\ns = _socket.socket()\ns.connect(('8.8.8.8', 53))",
        "assert True",
        {"forbidden"},
    ),
    "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", "assert True", {"forbidden"}),
    "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)", "assert True", {"forbidden"}),
    "huge_stdout": ("while True:\n    print('x' * 10000)", "assert True", {"output-limit"}),
    "huge_stderr": ("import sys\nwhile True:\n    sys.stderr.write('y' * 10000)", "assert True", {"output-limit"}),
    "huge_file": ("open('big.bin', 'wb').write(b'x' * (64 * 2**20))", "assert True", {"file-size", "memory"}),
    "exit_builtin": ("exit(0)", "assert False", {"exit-before-tests"}),
    "sys_exit": ("import sys\nsys.exit(0)", "assert False", {"exit-before-tests"}),
    "raise_systemexit": ("raise SystemExit(0)", "assert False", {"exit-before-tests"}),
    "os_exit": ("import os\nos._exit(0)", "assert False", {"exit-before-tests"}),
    "exit_from_inside_the_tests": (
        "import os\ndef f(x):\n    os._exit(0)",
        "assert f(1) == 2",
        {"exit-before-tests"},
    ),
    "patched_assertion_error": (
        "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})",
        "assert 1 == 2",
        {"assertion"},
    ),
    "patched_exec_and_print": (
        "import builtins, io, sys\nbuiltins.exec = lambda *a, **k: None\nbuiltins.print = lambda *a, **k: None\n"
        "sys.stdout = io.StringIO()\nsys.__stdout__ = sys.stdout",
        "assert 1 == 2",
        {"assertion"},
    ),
    "override_check": (
        "def check(candidate):\n    pass\ndef f(x):\n    return 0",
        "def check(candidate):\n    assert candidate(1) == 2\n\ncheck(f)",
        {"assertion"},
    ),
    "settrace_skips_asserts": (
        "import sys\ndef tracer(frame, event, arg):\n    return tracer\nsys.settrace(tracer)",
        "assert 1 == 2",
        {"forbidden"},
    ),
    "gc_walk_for_secrets": ("import gc\nobjs = gc.get_objects()", "assert True", {"forbidden"}),
    "ctypes_memory_access": (
        "import ctypes\nctypes.string_at(id(1), 8)",
        "assert True",
        {"forbidden"},
    ),
    "forged_pass_line": (
        "import os, sys\nfor k, v in os.environ.items():\n    print(k, v)\n"
        "print('\\nPASS::')\nsys.stdout.flush()\nos._exit(0)",
        "assert False",
        {"exit-before-tests"},
    ),
    "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)", "assert True", {"recursion"}),
    "deep_recursion_raised_limit": (
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)",
        "assert True",
        {"recursion", "memory", "crash", "timeout"},
    ),
    "unclosed_string_swallows_tests": ("def f(x):\n    return 0\nx = '''", "assert f(1) == 2", {"syntax"}),
    # ---- forging the verdict: the tests run in the judge process; the candidate has nothing to forge
    "always_equal_object": (
        "class E:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
        "def f(x):\n    return E()",
        "assert f(1) == 2",
        {"unencodable-result"},
    ),
    "always_equal_int_subclass": (
        "class E(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def f(x):\n    return E(0)",
        "assert f(1) == 2",
        {"assertion"},
    ),
    "frame_walk_caller_locals": (
        "import sys\ndef f(x):\n    fr, seen = sys._getframe(1), []\n    while fr is not None:\n"
        "        for k, v in list(fr.f_locals.items()):\n            seen.append(k)\n"
        "            if callable(v) and k in ('_send', 'send', '_report', 'report'):\n"
        "                try:\n                    v(3, {'passed': True, 'reason': '', 'detail': ''})\n"
        "                except BaseException:\n                    pass\n        fr = fr.f_back\n    return 0",
        "assert f(1) == 2",
        {"assertion", "runtime-error"},
    ),
    "traceback_frame_walk": (
        "def f(x):\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
        "        fr = e.__traceback__.tb_frame\n"
        "    while fr is not None:\n        g = fr.f_globals\n        fr = fr.f_back\n    return 0",
        "assert f(1) == 2",
        {"assertion"},
    ),
    "proc_self_mem_nonce_scan": (
        "import re\ndef f(x):\n    found = []\n    maps = open('/proc/self/maps').read().splitlines()\n"
        "    with open('/proc/self/mem', 'rb', 0) as mem:\n        for line in maps:\n"
        "            if 'rw' not in line.split()[1]:\n                continue\n"
        "            lo, hi = (int(a, 16) for a in line.split()[0].split('-'))\n            try:\n"
        "                mem.seek(lo)\n                chunk = mem.read(min(hi - lo, 1 << 22))\n"
        "            except OSError:\n                continue\n"
        "            found += re.findall(rb'[0-9a-f]{48}', chunk)\n    for n in set(found):\n"
        "        print('\\n' + n.decode() + ':PASS::')\n    return 0",
        "assert f(1) == 2",
        {"assertion", "forbidden", "runtime-error"},
    ),
    "judge_memory_and_fds": (
        "import os\ndef f(x):\n    ppid = os.getppid()\n    for path in (f'/proc/{ppid}/mem', f'/proc/{ppid}/fd/3'):\n"
        "        try:\n            with open(path, 'r+b', 0) as fh:\n                fh.write(b'x')\n"
        "        except OSError:\n            pass\n    return 0",
        "assert f(1) == 2",
        {"assertion", "forbidden"},
    ),
    "write_every_fd": (
        "import os\nfor fd in range(3, 64):\n    try:\n"
        "        os.write(fd, b'{\"passed\": true, \"reason\": \"\", \"detail\": \"\"}')\n"
        "    except OSError:\n        pass\ndef f(x):\n    return 0",
        "assert f(1) == 2",
        {"assertion", "runtime-error"},
    ),
    "swallowing_tests_after_exit": (
        "import os\ndef f(x):\n    os._exit(0)",
        "try:\n    f(1)\nexcept BaseException:\n    pass\nassert True",
        {"exit-before-tests"},
    ),
    # ---- escapes that bypass the in-process guard: the OS isolation must hold on its own
    "write_via_dir_fd": (
        f"import os\nd = os.open('/tmp', os.O_RDONLY)\n"
        f"fd = os.open({os.path.basename(ESCAPE_FILES[3])!r}, os.O_CREAT | os.O_WRONLY, dir_fd=d)\n"
        "os.write(fd, b'escaped')",
        "assert True",
        {"forbidden", "runtime-error", ""},
    ),
    "write_via_fchdir": (
        f"import os\nd = os.open('/tmp', os.O_RDONLY)\nos.fchdir(d)\n"
        f"open({os.path.basename(ESCAPE_FILES[4])!r}, 'w').write('escaped')",
        "assert True",
        {"forbidden", "runtime-error", ""},
    ),
    "write_via_symlink_in_scratch": (
        f"import os\nos.symlink({ESCAPE_FILES[5]!r}, 'link')\nopen('link', 'w').write('escaped')",
        "assert True",
        {"forbidden"},
    ),
    "sqlite_writes_outside": (
        f"import sqlite3\nc = sqlite3.connect({ESCAPE_FILES[6]!r})\nc.execute('create table t(x)')\nc.commit()",
        "assert True",
        {"forbidden", "runtime-error", ""},
    ),
    "shm_open": (
        f"import _posixshmem, os\nfd = _posixshmem.shm_open({'/' + os.path.basename(ESCAPE_SHM)!r}, "
        "os.O_CREAT | os.O_RDWR, 0o644)\nos.write(fd, b'escaped')",
        "assert True",
        {"forbidden", "runtime-error", ""},
    ),
    "ctypes_memmove_then_write": (
        "import ctypes\nbuf = ctypes.create_string_buffer(16)\nctypes.memmove(buf, b'x' * 16, 16)\n"
        f"open({ESCAPE_FILES[7]!r}, 'w').write('escaped')",
        "assert True",
        {"forbidden"},
    ),
    "hook_tampering": (
        "import sys\nfr = sys._getframe()\nwhile fr is not None:\n    for v in list(fr.f_locals.values()):\n"
        "        if callable(v) and getattr(v, '__name__', '') in ('hook', 'deny', 'inside'):\n"
        "            try:\n                v.__code__ = (lambda *a: True).__code__\n"
        "            except BaseException:\n                pass\n    fr = fr.f_back\n"
        f"open({ESCAPE_FILES[8]!r}, 'w').write('escaped')",
        "assert True",
        {"forbidden"},
    ),
    "read_user_cache": (
        f"print('SECRET', open({str(SECRET_FILE)!r}).read())",
        "assert True",
        {"forbidden", "runtime-error"},
    ),
}


MODES_HERE = available_modes()
FORGING = [n for n in HOSTILE if HOSTILE[n][1] != "assert True"]  # names whose tests would fail if they ran


@pytest.fixture(scope="module")
def listener() -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def secret_file() -> Path:
    """A world-readable token in the user's cache, as Hugging Face keeps one."""
    SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    SECRET_FILE.write_text(SECRET)
    SECRET_FILE.chmod(0o644)
    yield SECRET_FILE
    SECRET_FILE.unlink()


def _run_suite(names: list[str], mode: str, port: int) -> dict[str, ExecResult]:
    programs = [Program(HOSTILE[n][0].replace("PORT", str(port)), HOSTILE[n][1]) for n in names]
    private = tempfile.mkdtemp(prefix="lmeds_hostile_")  # scratch directories go here, apart from other runs'
    os.chmod(private, 0o711)
    saved, tempfile.tempdir = tempfile.tempdir, private
    try:
        start = time.monotonic()
        results = run_programs(programs, timeout_s=2.0, memory_mb=512, max_output_bytes=MAX_OUT, mode=mode)
        elapsed = time.monotonic() - start
    finally:
        tempfile.tempdir = saved
    left = glob.glob(os.path.join(private, "lmeds_sbx_*"))
    if not left:
        os.rmdir(private)
    print(f"\nhostile suite: {len(programs)} programs in {elapsed:.1f} s, isolation mode {mode!r}")
    for n, r in zip(names, results, strict=True):
        print(f"  {n:32s} passed={r.passed!s:5s} reason={r.reason:18s} {r.detail[:70]}")
    assert not left, f"scratch directories were left behind: {left}"
    return dict(zip(names, results, strict=True))


@pytest.fixture(scope="module", params=MODES_HERE)
def hostile_results(request, listener: socket.socket, secret_file: Path) -> dict[str, ExecResult]:
    return _run_suite(list(HOSTILE), request.param, listener.getsockname()[1])


def test_some_isolation_works_or_execution_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Either the suite above runs in at least one isolating mode, or executing code is refused with instructions."""
    if MODES_HERE:
        assert set(MODES_HERE) <= {"namespaces", "userns", "drop"}
        return
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    monkeypatch.delenv(MODE_ENV, raising=False)
    monkeypatch.setattr(sandbox, "_MODE", None)
    with pytest.raises(SandboxUnavailableError, match="user namespaces"):
        run_programs([Program("x = 1")])


def test_plain_mode_needs_the_loud_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSAFE_ENV, raising=False)
    with pytest.raises(SandboxUnavailableError, match=UNSAFE_ENV):
        run_programs([Program("x = 1")], mode="plain")


@pytest.mark.slow  # runs the hostile programs
@pytest.mark.skipif(os.geteuid() == 0, reason="plain mode as root can ptrace anything; it is run unprivileged in CI")
def test_no_forged_pass_without_isolation(monkeypatch: pytest.MonkeyPatch, listener: socket.socket) -> None:
    """Without any isolation (the explicit opt-out), the verdict still cannot be forged: the judge is another,
    non-dumpable process.  (Escapes are possible in this mode by design, so only the forging programs run.)"""
    monkeypatch.setenv(UNSAFE_ENV, "1")
    results = _run_suite(FORGING, "plain", listener.getsockname()[1])
    forged = [n for n, r in results.items() if r.passed]
    assert not forged


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_fails_with_expected_reason(name: str, hostile_results: dict[str, ExecResult]) -> None:
    res = hostile_results[name]
    if "" not in HOSTILE[name][2]:  # "": a pass is harmless (what it wrote stayed inside; see the escape checks)
        assert not res.passed, f"{name} passed: {res}"
    assert res.reason in HOSTILE[name][2], f"{name}: {res.reason} {res.detail} {res.stderr[-300:]}"


@pytest.mark.slow
def test_nothing_escaped_to_the_host(hostile_results: dict[str, ExecResult], listener: socket.socket) -> None:
    for path in [*ESCAPE_FILES, ESCAPE_SHM]:
        assert not os.path.exists(path), f"{path} was written by a sandboxed program"
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        conn = None
    assert conn is None, "a sandboxed program connected to the host's loopback"


@pytest.mark.slow
def test_no_secrets_read(hostile_results: dict[str, ExecResult]) -> None:
    shadow = hostile_results["read_etc_shadow"]
    assert "root:" not in shadow.stdout
    entries = [ln.split(" ", 1)[1] for ln in hostile_results["read_root_home"].stdout.splitlines() if "ROOTENTRY" in ln]
    # At most the directories leading to the interpreter are visible under /root (mounted in by the sandbox).
    allowed = {p.split("/")[2] for p in (os.path.realpath(sys.executable),) if p.startswith("/root/")}
    assert set(entries) <= allowed, entries
    for res in hostile_results.values():
        assert SECRET not in res.stdout + res.stderr + res.detail, "the user's cache was readable"


@pytest.mark.slow
def test_output_is_capped(hostile_results: dict[str, ExecResult]) -> None:
    for name in ("huge_stdout", "huge_stderr"):
        res = hostile_results[name]
        assert len(res.stdout) + len(res.stderr) <= 2 * 2000


@pytest.mark.slow
def test_parent_survives_and_sandbox_still_works(hostile_results: dict[str, ExecResult]) -> None:
    assert os.getpid() > 0  # we are still here after kill_parent / kill_everything
    [ok] = run_programs([Program("def f(x):\n    return x + 1", "assert f(1) == 2")], timeout_s=5)
    assert ok.passed, ok


def test_legitimate_program_with_io_and_imports_passes() -> None:
    code = (
        "import collections, heapq, itertools, math, re, json, pathlib\n"
        "pathlib.Path('notes.txt').write_text('hello')\n"
        "def f(xs):\n    print('working', file=__import__('sys').stderr)\n"
        "    return sorted(collections.Counter(xs).items())\n"
    )
    [res] = run_programs([Program(code, "assert open('notes.txt').read() == 'hello'\nassert f('aba') == "
                                        "[('a', 2), ('b', 1)]")], timeout_s=10)  # fmt: skip
    assert res.passed, res
    assert "working" in res.stderr
