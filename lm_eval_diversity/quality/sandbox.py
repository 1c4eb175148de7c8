"""Run untrusted Python programs (model-written code plus the benchmark's tests) so that no program can forge its
verdict or reach the host.  ``docs/sandbox.md`` states the guarantees per mode and the attack each test covers.

Every program gets a fresh interpreter running :mod:`.sandbox_child` inside the best available isolation
(:func:`isolation_mode`):

* ``"namespaces"`` (root) and ``"userns"`` (any user, through unprivileged user namespaces): new mount, network, PID,
  IPC and UTS namespaces; the program sees a new root holding only read-only views of the system directories and of
  the Python installation, and one size-limited tmpfs for its scratch directory, ``/tmp``, ``/var/tmp`` and
  ``/dev/shm`` (no ``$HOME``, no ``~/.cache``, no host processes, no network, no host IPC objects).  It runs as
  ``nobody`` (root) or as a capability-less user (user namespace), with ``no_new_privs``.
* ``"drop"`` (root without namespaces): the privilege drop to ``nobody`` only.
* ``"plain"``: no isolation; used only when the user sets :data:`UNSAFE_ENV` to ``1``.

Where none works, :class:`SandboxUnavailableError` says what to enable.

Inside, the child forks: the **candidate** process runs the model's code (rlimits, a system-call filter that keeps it
off every other process, an audit hook as defence in depth) and answers calls; the **judge** process runs the tests
against proxies of the entry points.  The judge owns every other name (builtins, modules, the trusted prelude's
helpers).  Only plain data crosses between them (no pickle), and the judge, which the candidate can neither read,
write nor signal, reports the verdict on a socket the candidate never holds; the grader accepts a pass only from the
judge's PID (as the kernel reports it) and only when the child exits with status 0.  With ``verdict="exit-status"``
the candidate runs the tests itself and a pass is exit status 0 (the reference's rule).
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

NOBODY = 65534
TAIL_CHARS = 2000
UNSAFE_ENV = "LMEDS_UNSAFE_NO_SANDBOX_ISOLATION"
MODE_ENV = "LMEDS_SANDBOX_MODE"
MODES = ("namespaces", "userns", "drop", "plain")
VERDICTS = ("trusted-tests", "exit-status")
SYSTEM_DIRS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin", "/etc")
_HEX = re.compile("[0-9a-f]{64}")
# The candidate's audit hook is defence in depth; the hostile tests switch it off to check that the OS layers
# (namespaces, privileges, the system-call filter) hold on their own.
AUDIT_HOOK = True
_CHILD_SRC = (Path(__file__).with_name("sandbox_child.py")).read_text(encoding="utf-8")


class SandboxUnavailableError(RuntimeError):
    """No isolation layer works on this machine and the user did not opt out."""


@dataclass(frozen=True)
class Program:
    """A program in two parts: ``code`` (untrusted, run in the candidate process) and ``tests`` (the benchmark's,
    run in the judge process).

    The judge owns every name it can: builtins, modules, what the trusted ``prelude`` defines (run by the judge
    before the tests: HumanEval's prompt, with its imports and helpers) and what the tests define.  The names that
    cross from the candidate are the ``entry_points`` (even where a builtin or the prelude has the same name: MBPP's
    ``sum``, the prompt's stub of the HumanEval function) and the global names the tests read that nothing above
    defines (a class of the solution the tests build objects from)."""

    code: str
    tests: str = ""
    prelude: str = ""
    entry_points: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program.

    ``passed`` is True only when the judge ran the tests to completion (or, with ``verdict="exit-status"``, the
    candidate exited with status 0).  ``reason`` is ``""`` on a pass, otherwise one of: ``syntax``, ``tests-syntax``,
    ``assertion``, ``runtime-error``, ``exit-before-tests``, ``unencodable-result`` (a result the tests needed is not
    plain data), ``timeout``, ``memory``, ``recursion``, ``forbidden`` (the sandbox or the OS refused an operation),
    ``file-size`` (RLIMIT_FSIZE, or the scratch space full), ``output-limit``, ``crash`` (killed by a signal),
    ``interrupted`` (the grading process was interrupted), ``sandbox-error``.
    """

    passed: bool
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    detail: str = ""  # exception type and message, signal name, ...
    duration_s: float = 0.0
    # with ``behaviour=True``: the judge's behaviour signature (docs/sandbox.md); None when none was computed
    behaviour: str | None = None


# ----------------------------------------------------------------------------------------------------------------
# Isolation modes
# ----------------------------------------------------------------------------------------------------------------
_MODE_LOCK = threading.Lock()
_MODE: str | None = None
_PROBED: dict[str, bool] = {}


def _python_dirs() -> list[str]:
    """The directories the interpreter needs (prefixes and library paths), outermost only, outside SYSTEM_DIRS."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(p)
    real = {os.path.realpath(p) for p in paths} | {os.path.abspath(p) for p in paths}
    real.add(os.path.dirname(os.path.realpath(sys.executable)))
    out: list[str] = []
    for p in sorted(real, key=len):
        if any(p == d or p.startswith(d.rstrip("/") + "/") for d in (*SYSTEM_DIRS, *out)):
            continue
        if os.path.isdir(p) and not os.path.islink(p):
            out.append(p)
    return out


def _command(cfg: dict) -> list[str]:
    # -S: no site import, so no .pth file of the installation runs in the child (the child sets its import path
    # from the config); -s, -P, -B: no user site directory, no script directory on the path, no bytecode written.
    return [sys.executable, "-S", "-s", "-P", "-B", "-c", _CHILD_SRC, json.dumps(cfg)]


def _probe(mode: str) -> bool:
    if mode in _PROBED:
        return _PROBED[mode]
    ok = False
    try:
        r = _run_one(Program("import math\ndef f(x):\n    return math.sqrt(x)", "assert f(4) == 2.0"), mode=mode,
                     timeout_s=20.0)  # fmt: skip
        ok = r.passed
        if not ok:
            logger.debug("sandbox mode %s unusable: %s %s %s", mode, r.reason, r.detail, r.stderr[-500:])
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        logger.debug("sandbox mode %s unusable: %r", mode, exc)
    _PROBED[mode] = ok
    return ok


def available_modes() -> list[str]:
    """The isolating modes that work here, strongest first (probed once each); ``plain`` is never listed."""
    # As root, a user namespace would map the program to root's own files, so root gets the namespaces or drop mode.
    cands = ["namespaces", "drop"] if os.geteuid() == 0 else ["userns"]
    return [m for m in cands if _probe(m)]


def unsafe_opt_out() -> bool:
    """Whether the user explicitly allowed running model code without isolation (:data:`UNSAFE_ENV` = ``1``)."""
    return os.environ.get(UNSAFE_ENV, "") == "1"


def _unavailable_message() -> str:
    return (
        "cannot execute model-generated code: no sandbox isolation works on this machine. Enable unprivileged user "
        "namespaces (e.g. `sysctl -w kernel.unprivileged_userns_clone=1`, `user.max_user_namespaces` > 0, or on "
        "Ubuntu 24.04+ `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run as root in a container. "
        f"To run it WITHOUT isolation anyway (only rlimits, a system-call filter and an in-process guard), set "
        f"{UNSAFE_ENV}=1."
    )


def isolation_mode() -> str:
    """The strongest isolation that works here (probed once per process).

    ``LMEDS_SANDBOX_MODE`` forces one of :data:`MODES`.  ``plain`` (forced or as the last resort) needs the explicit
    opt-out :data:`UNSAFE_ENV` = ``1``; without it :class:`SandboxUnavailableError` is raised.
    """
    global _MODE
    with _MODE_LOCK:
        if _MODE is None:
            forced = os.environ.get(MODE_ENV, "")
            if forced:
                if forced not in MODES:
                    raise SandboxUnavailableError(f"{MODE_ENV}={forced!r} is not one of {', '.join(MODES)}")
                mode = forced
            else:
                modes = available_modes()
                mode = modes[0] if modes else "plain"
            if mode == "plain":
                if not unsafe_opt_out():
                    raise SandboxUnavailableError(_unavailable_message())
                logger.warning(
                    "code sandbox: %s=1 — model-generated code runs WITHOUT isolation, as %s, guarded only by "
                    "rlimits and an in-process audit hook",
                    UNSAFE_ENV,
                    "root" if os.geteuid() == 0 else "the current user",
                )
            _MODE = mode
        return _MODE


# ----------------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out.extend(kids)
                stack.extend(kids)
        except (OSError, ValueError):
            continue
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    pids = _descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in [proc.pid, *pids]:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _tail(data: bytes) -> str:
    return data[-4 * TAIL_CHARS :].decode("utf-8", "replace")[-TAIL_CHARS:]


SCRATCH_PREFIX = "lmeds_sbx_"
SCRATCH_POLL_S = 0.05  # drop and plain modes: how often the scratch directory's size is measured
_GRADER_LOCK = threading.Lock()
_GRADER_STATE = {"batches": 0, "dumpable": 1, "swept": False}


def _prctl(option: int, arg: int = 0) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.prctl(option, arg, 0, 0, 0)
    if rc < 0:
        raise SandboxUnavailableError(f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")
    return rc


class _Grading:
    """While any batch runs, this process is non-dumpable: no process of the same user (a program in plain mode)
    can trace it, read its memory or open its descriptors.  The previous state comes back when the last batch
    ends, once every program of it is dead (a program can create no process that would outlive it).  On first use,
    the scratch directories that killed grading processes of this user left behind are removed."""

    def __enter__(self) -> None:
        with _GRADER_LOCK:
            if _GRADER_STATE["batches"] == 0:
                _GRADER_STATE["dumpable"] = _prctl(3)  # PR_GET_DUMPABLE
                _prctl(4, 0)  # PR_SET_DUMPABLE
            _GRADER_STATE["batches"] += 1
            if not _GRADER_STATE["swept"]:
                _GRADER_STATE["swept"] = True
                _sweep_stale_scratch()

    def __exit__(self, *exc) -> None:
        with _GRADER_LOCK:
            _GRADER_STATE["batches"] -= 1
            if _GRADER_STATE["batches"] == 0 and _GRADER_STATE["dumpable"]:
                _prctl(4, _GRADER_STATE["dumpable"])


def _sweep_stale_scratch() -> None:
    """Remove ``lmeds_sbx_<pid>_*`` directories of this user whose grading process is gone."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        owner = entry.name[len(SCRATCH_PREFIX) :].split("_", 1)[0]
        if not (entry.name.startswith(SCRATCH_PREFIX) and owner.isdigit()) or _alive(int(owner)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.geteuid():
                _remove_tree(entry.path)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(top: str) -> None:
    """Remove a scratch tree whatever modes the program left on it (a mode-000 directory included)."""
    if not os.path.lexists(top):
        return
    try:
        os.chmod(top, 0o700)
    except OSError:
        pass
    for root, dirs, _ in os.walk(top, onerror=lambda exc: None):
        for d in dirs:
            path = os.path.join(root, d)
            try:
                if stat.S_ISDIR(os.lstat(path).st_mode):  # never follow a link out of the scratch directory
                    os.chmod(path, 0o700)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def _tree_bytes(top: str) -> int:
    """Disk space used under ``top`` (allocated blocks, so sparse files count for what they hold)."""
    total = 0
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except PermissionError:
            try:
                os.chmod(d, 0o700)  # a mode-000 directory of the program's: look inside anyway
                entries = list(os.scandir(d))
            except OSError:
                continue
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                stack.append(e.path)
    return total


def _run_one(
    program: Program | str,
    *,
    mode: str,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    max_procs: int = 64,
    max_output_bytes: int = 1_000_000,
    max_file_mb: int = 16,
    scratch_mb: int = 64,
    max_open_files: int = 256,
    verdict: str = "trusted-tests",
    behaviour: bool = False,
    stop: threading.Event | None = None,
) -> ExecResult:
    if isinstance(program, str):
        program = Program(program, "")
    start = time.monotonic()
    top = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}_")
    namespaces = mode in ("namespaces", "userns")
    # namespace modes: ``top`` is only the mount point of the new root; the scratch directory lives in the
    # sandbox's own tmpfs and vanishes with it.  Other modes: the scratch directory is a host directory.
    scratch = "/sandbox" if namespaces else os.path.join(top, "work")
    grader_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        grader_end.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # the kernel stamps each record's sender
        if not namespaces:
            os.mkdir(scratch, 0o700)
        if mode == "drop":
            os.chmod(top, 0o711)
            os.chown(scratch, NOBODY, NOBODY)
        cfg = {
            "isolation": mode,
            "grader_pid": os.getpid(),
            "status_fd": child_end.fileno(),
            "sys_path": [p for p in sys.path if p and os.path.isabs(p)],
            "scratch": scratch,
            "root": top,
            "binds": [*SYSTEM_DIRS, *_python_dirs()],
            "scratch_mb": scratch_mb,
            "uid": NOBODY,
            "mem_mb": memory_mb,
            "max_procs": max_procs,
            "fsize_mb": max_file_mb,
            "nofile": max_open_files,
            "cpu_s": int(timeout_s) + 2,
            "exit_status": verdict == "exit-status",
            "audit_hook": AUDIT_HOOK,
        }
        if behaviour:
            cfg["behaviour"] = True
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": scratch,
            "TMPDIR": scratch,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
            "LANG": "C.UTF-8",
        }
        payload = json.dumps({"code": program.code, "tests": program.tests, "prelude": program.prelude,
                              "entry_points": list(program.entry_points)}).encode()  # fmt: skip
        proc = subprocess.Popen(
            _command(cfg),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=top if namespaces else scratch,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=(child_end.fileno(),),
        )
        child_end.close()
        budget = None if namespaces else scratch_mb * 2**20  # the tmpfs caps the namespace modes by itself
        try:
            return _collect(proc, payload, grader_end, start, timeout_s, max_output_bytes, mode, scratch, budget, stop)
        finally:
            _kill_tree(proc)  # also when collecting failed: nothing of the program outlives this call
            proc.wait()
    finally:
        child_end.close()
        grader_end.close()
        for _ in range(20):  # a killed program's last writes may still land for a moment
            _remove_tree(top)
            if not os.path.lexists(top):
                break
            time.sleep(0.05)


def _receive(sock: socket.socket) -> tuple[int | None, bytes] | bool:
    """One record of the verdict socket with its sender's PID (as the kernel reports it); False when there is
    nothing to read yet, True at the end (every holder of the other end closed it)."""
    try:
        data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(12))
    except (BlockingIOError, InterruptedError):
        return False
    if not data and not ancillary:
        return True
    sender = None
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(raw) >= 12:
            sender = struct.unpack("3i", raw[:12])[0]
    return sender, data


def _collect(
    proc: subprocess.Popen,
    payload: bytes,
    status: socket.socket,
    start: float,
    timeout_s: float,
    max_output_bytes: int,
    mode: str,
    scratch: str,
    budget: int | None,
    stop: threading.Event | None,
) -> ExecResult:
    deadline = start + timeout_s
    killed_for = ""
    detail = ""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        # The judge reads its whole stdin before it waits for anything, so this cannot dead-lock.
        proc.stdin.write(payload)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    out_fd, err_fd, status_fd = proc.stdout.fileno(), proc.stderr.fileno(), status.fileno()
    bufs: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    records: list[tuple[int | None, bytes]] = []
    sel = selectors.DefaultSelector()
    for fd in (out_fd, err_fd, status_fd):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    total = 0
    next_check = start
    try:
        while status_fd in sel.get_map() or (sel.get_map() and proc.poll() is None):
            now = time.monotonic()
            if now >= deadline:
                killed_for = "timeout"
                break
            if stop is not None and stop.is_set():
                killed_for = "interrupted"
                break
            if budget is not None and now >= next_check:
                next_check = now + SCRATCH_POLL_S
                if _tree_bytes(scratch) > budget:
                    killed_for, detail = "file-size", f"scratch space over {budget // 2**20} MB"
                    break
            events = sel.select(timeout=min(deadline - now, 0.2 if budget is None else SCRATCH_POLL_S))
            for key, _ in events:
                if key.fd == status_fd:
                    got = _receive(status)
                    if got is True:
                        sel.unregister(status_fd)
                    elif got is not False:
                        records.append(got)
                        if len(records) > 4:
                            killed_for = "sandbox-error"
                    continue
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                bufs[key.fd] += chunk
                total += len(chunk)
            if total > max_output_bytes:
                killed_for = "output-limit"
            if killed_for:
                break
            if not events and proc.poll() is not None and status_fd not in sel.get_map():
                break
    finally:
        sel.close()
    for fd in (out_fd, err_fd):  # whatever is already buffered
        try:
            while total <= max_output_bytes and (chunk := os.read(fd, 1 << 16)):
                bufs[fd] += chunk
                total += len(chunk)
        except (BlockingIOError, OSError):
            pass
    _kill_tree(proc)  # the verdict is in (or the deadline passed): nothing of the program may outlive it
    try:
        rc = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        rc = None
    for f in (proc.stdout, proc.stderr):
        f.close()
    duration = time.monotonic() - start
    o, e = _tail(bytes(bufs[out_fd])), _tail(bytes(bufs[err_fd]))
    if killed_for:
        return ExecResult(False, killed_for, rc, o, e, detail=detail, duration_s=duration)
    verdict, problem = _judge_verdict(records, proc.pid, mode)
    if problem:
        return ExecResult(False, "forbidden", rc, o, e, detail=problem, duration_s=duration)
    if verdict is None:
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return ExecResult(False, "crash", rc, o, e, detail=name, duration_s=duration)
        return ExecResult(False, "sandbox-error", rc, o, e, detail=f"no verdict (exit status {rc})",
                          duration_s=duration)  # fmt: skip
    passed, reason, detail, sig = verdict
    if passed and rc != 0:  # a pass counts only from a judge that finished normally
        return ExecResult(False, "sandbox-error", rc, o, e, detail=f"judge exit status {rc}", duration_s=duration)
    if passed:
        return ExecResult(True, "", rc, o, e, duration_s=duration, behaviour=sig)
    if reason == "runtime-error" and "MemoryError" in detail:
        reason = "memory"
    return ExecResult(False, reason or "runtime-error", rc, o, e, detail=detail, duration_s=duration, behaviour=sig)


def _judge_verdict(
    records: list[tuple[int | None, bytes]], child_pid: int, mode: str
) -> tuple[tuple[bool, str, str, str | None] | None, str]:
    """The verdict from the records of the verdict socket, and a problem when a record did not come from the judge.

    Plain and drop modes: the judge is the child the grader started.  Namespace modes: that child announces, in its
    first record, the PID of the judge (the first process of the new PID namespace, its own child); the verdict must
    come from that PID.  The kernel stamps each record with its sender (SO_PASSCRED), which a process without
    privileges cannot choose.
    """
    judge = child_pid
    verdicts = []
    for i, (sender, data) in enumerate(records):
        if mode in ("namespaces", "userns") and i == 0 and sender == child_pid:
            try:
                announced = json.loads(data).get("judge_pid")
            except (ValueError, AttributeError):
                announced = None
            if type(announced) is int:
                judge = announced
                continue
        if sender not in (judge, child_pid):
            return None, f"a verdict came from process {sender}, not from the judge"
        verdicts.append((sender, data))
    if len(verdicts) != 1:
        return None, "" if not verdicts else "more than one verdict"
    sender, data = verdicts[0]
    try:
        status = json.loads(data)
        passed, reason, detail = status["passed"], status["reason"], status["detail"]
        if not (type(passed) is bool and isinstance(reason, str) and isinstance(detail, str)):
            raise ValueError
        sig = status.get("behaviour")
        if not (sig is None or (isinstance(sig, str) and len(sig) == 64 and _HEX.fullmatch(sig))):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, ""
    if passed and sender != judge:
        return None, "a pass came from a process other than the judge"
    return (passed, reason, detail, sig), ""


def run_programs(
    programs: Sequence[Program | str],
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    max_procs: int = 64,
    max_output_bytes: int = 1_000_000,
    scratch_mb: int = 64,
    workers: int | None = None,
    verdict: str = "trusted-tests",
    mode: str | None = None,
    behaviour: bool = False,
) -> list[ExecResult]:
    """Run every program in its own sandbox, ``workers`` at a time; results keep the input order.

    A plain string is a whole program (no separate tests part).  ``timeout_s`` is wall-clock per program (the CPU
    limit is a little above it); ``memory_mb`` caps the address space; ``max_procs`` caps processes+threads of the
    sandbox user (RLIMIT_NPROC); ``max_output_bytes`` caps stdout+stderr together; ``scratch_mb`` caps what a
    program writes in total (its scratch directory, /tmp, /var/tmp and /dev/shm: one tmpfs in the namespace modes;
    its scratch directory, measured while it runs, in the others).  ``verdict``: ``"trusted-tests"`` (the tests run
    in the judge process, outside the candidate's reach) or ``"exit-status"`` (the candidate runs the tests; exit
    status 0 passes).  ``mode`` overrides :func:`isolation_mode` (``plain`` still needs the opt-out).
    ``behaviour=True`` has the judge compute each program's behaviour signature (``ExecResult.behaviour``; see
    ``docs/sandbox.md``); it never changes a verdict. The exit-status verdict gives no signature.

    Interrupted (Ctrl-C, or SIGTERM turned into an exception by the caller), it kills the running programs, removes
    their scratch space, runs no further program and re-raises.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict={verdict!r}: expected one of {', '.join(VERDICTS)}")
    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < float("inf")):
        raise ValueError(f"timeout_s={timeout_s!r}: expected a positive, finite number of seconds")
    for name, value in (("memory_mb", memory_mb), ("scratch_mb", scratch_mb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive number of megabytes")
    if not programs:
        return []
    if mode is None:
        mode = isolation_mode()
    elif mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    elif mode == "plain" and not unsafe_opt_out():
        raise SandboxUnavailableError(f"mode 'plain' runs code without isolation; it needs {UNSAFE_ENV}=1")
    n_workers = max(1, min(len(programs), workers or os.cpu_count() or 1))
    stop = threading.Event()

    def one(p: Program | str) -> ExecResult:
        if stop.is_set():
            return ExecResult(False, "interrupted", None)
        try:
            return _run_one(
                p,
                mode=mode,
                timeout_s=timeout_s,
                memory_mb=memory_mb,
                max_procs=max_procs,
                max_output_bytes=max_output_bytes,
                scratch_mb=scratch_mb,
                verdict=verdict,
                behaviour=behaviour,
                stop=stop,
            )
        except Exception as exc:  # noqa: BLE001 - a sandbox failure grades the program as failed, never crashes
            logger.exception("sandbox failure")
            return ExecResult(False, "sandbox-error", None, detail=repr(exc)[:200])

    with _Grading():
        pool = ThreadPoolExecutor(max_workers=n_workers)
        try:
            futures = [pool.submit(one, p) for p in programs]
            return [f.result() for f in futures]
        except BaseException:
            stop.set()  # running programs are killed within 0.2 s and cleaned up; queued ones do not start
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
