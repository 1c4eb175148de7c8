"""Run untrusted Python programs (model-written code plus the benchmark's tests) so that no program can forge its
verdict or reach the host.  ``docs/sandbox.md`` states the guarantees per mode and the attack each test covers.

Every program gets a fresh interpreter running :mod:`.sandbox_child` inside the best available isolation
(:func:`isolation_mode`):

* ``"namespaces"`` (root) and ``"userns"`` (any user, through unprivileged user namespaces): new mount, network and
  PID namespaces; the program sees a new root holding only read-only views of the system directories and of the
  Python installation, private tmpfs mounts for ``/tmp``, ``/var/tmp`` and ``/dev/shm``, and its scratch directory
  (no ``$HOME``, no ``~/.cache``, no host processes, no network).  It runs as ``nobody`` (root) or as a capability-less
  user (user namespace), with ``no_new_privs``.
* ``"drop"`` (root without namespaces): the privilege drop to ``nobody`` only.
* ``"plain"``: no isolation; used only when the user sets :data:`UNSAFE_ENV` to ``1``.

Where none works, :class:`SandboxUnavailableError` says what to install or enable.

Inside, the harness forks: the **candidate** process runs the model's code (rlimits, an audit hook as defence in
depth) and answers calls; the **judge** process runs the tests against proxies of the candidate's functions.  Only
plain data crosses between them (no pickle), and the judge, which the candidate can neither read nor write (it is
non-dumpable), reports the verdict on a file descriptor the candidate never holds.  With ``verdict="exit-status"``
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
_HARNESS_SRC = (Path(__file__).with_name("sandbox_child.py")).read_text(encoding="utf-8")


class SandboxUnavailableError(RuntimeError):
    """No isolation layer works on this machine and the user did not opt out."""


@dataclass(frozen=True)
class Program:
    """A program in two parts: ``code`` (untrusted, run in the candidate process) and ``tests`` (the benchmark's,
    run in the judge process; names they do not define resolve to the candidate's, through the channel)."""

    code: str
    tests: str = ""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program.

    ``passed`` is True only when the judge ran the tests to completion (or, with ``verdict="exit-status"``, the
    candidate exited with status 0).  ``reason`` is ``""`` on a pass, otherwise one of: ``syntax``, ``tests-syntax``,
    ``assertion``, ``runtime-error``, ``exit-before-tests``, ``unencodable-result`` (a result the tests needed is not
    plain data), ``timeout``, ``memory``, ``recursion``, ``forbidden`` (the sandbox or the OS refused an operation),
    ``file-size`` (RLIMIT_FSIZE), ``output-limit``, ``crash`` (killed by a signal), ``sandbox-error``.
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


def _command(mode: str, cfg: dict) -> list[str]:
    py = [sys.executable, "-s", "-P", "-B", "-c", _HARNESS_SRC, json.dumps(cfg)]
    unshare = shutil.which("unshare") or "unshare"
    if mode == "namespaces":
        return [unshare, "--mount", "--net", "--pid", "--fork", "--", *py]
    if mode == "userns":
        return [unshare, "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--", *py]
    return py


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
    return [m for m in cands if (m == "drop" or shutil.which("unshare")) and _probe(m)]


def unsafe_opt_out() -> bool:
    """Whether the user explicitly allowed running model code without isolation (:data:`UNSAFE_ENV` = ``1``)."""
    return os.environ.get(UNSAFE_ENV, "") == "1"


def _unavailable_message() -> str:
    return (
        "cannot execute model-generated code: no sandbox isolation works on this machine. Enable unprivileged user "
        "namespaces (e.g. `sysctl -w kernel.unprivileged_userns_clone=1`, `user.max_user_namespaces` > 0, or on "
        "Ubuntu 24.04+ `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`) and make sure util-linux's "
        "`unshare` is installed (apt-get install util-linux), or run as root in a container. To run it WITHOUT "
        f"isolation anyway (only rlimits and an in-process guard), set {UNSAFE_ENV}=1."
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


def _run_one(
    program: Program | str,
    *,
    mode: str,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    max_procs: int = 64,
    max_output_bytes: int = 1_000_000,
    max_file_mb: int = 16,
    max_open_files: int = 256,
    verdict: str = "trusted-tests",
    behaviour: bool = False,
) -> ExecResult:
    if isinstance(program, str):
        program = Program(program, "")
    start = time.monotonic()
    top = tempfile.mkdtemp(prefix="lmeds_sbx_")
    scratch, root = os.path.join(top, "work"), os.path.join(top, "root")
    status_r, status_w = os.pipe()
    try:
        os.mkdir(scratch, 0o700)
        os.mkdir(root, 0o700)
        if mode in ("namespaces", "drop"):
            os.chmod(top, 0o711)
            os.chown(scratch, NOBODY, NOBODY)
        cfg = {
            "isolation": mode,
            "status_fd": status_w,
            "scratch": scratch,
            "root": root,
            "binds": [*SYSTEM_DIRS, *_python_dirs()],
            "tmpfs_mb": max(8, 4 * max_file_mb),
            "uid": NOBODY,
            "mem_mb": memory_mb,
            "max_procs": max_procs,
            "fsize_mb": max_file_mb,
            "nofile": max_open_files,
            "cpu_s": int(timeout_s) + 2,
            "exit_status": verdict == "exit-status",
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
        payload = json.dumps({"code": program.code, "tests": program.tests}).encode()
        proc = subprocess.Popen(
            _command(mode, cfg),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=(status_w,),
        )
        os.close(status_w)
        status_w = -1
        return _collect(proc, payload, status_r, start, timeout_s, max_output_bytes)
    finally:
        for fd in (status_r, status_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for _ in range(20):  # a killed program's last writes may still land for a moment
            shutil.rmtree(top, ignore_errors=True)
            if not os.path.lexists(top):
                break
            time.sleep(0.05)


def _collect(
    proc: subprocess.Popen, payload: bytes, status_fd: int, start: float, timeout_s: float, max_output_bytes: int
) -> ExecResult:
    deadline = start + timeout_s
    killed_for = ""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        # The judge reads its whole stdin before it waits for anything, so this cannot dead-lock.
        proc.stdin.write(payload)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    bufs: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray(), status_fd: bytearray()}
    sel = selectors.DefaultSelector()
    for fd in bufs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    total = 0
    try:
        while status_fd in sel.get_map() or (sel.get_map() and proc.poll() is None):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed_for = "timeout"
                break
            events = sel.select(timeout=min(remaining, 0.2))
            for key, _ in events:
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                bufs[key.fd] += chunk
                if key.fd != status_fd:
                    total += len(chunk)
                elif len(bufs[status_fd]) > 4096:
                    killed_for = "sandbox-error"
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
        return ExecResult(False, killed_for, rc, o, e, duration_s=duration)
    try:
        status = json.loads(bytes(bufs[status_fd]))
        passed, reason, detail = status["passed"], status["reason"], status["detail"]
        if not (type(passed) is bool and isinstance(reason, str) and isinstance(detail, str)):
            raise ValueError
        sig = status.get("behaviour")
        if not (sig is None or (isinstance(sig, str) and len(sig) == 64 and _HEX.fullmatch(sig))):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return ExecResult(False, "crash", rc, o, e, detail=name, duration_s=duration)
        return ExecResult(False, "sandbox-error", rc, o, e, detail=f"no verdict (exit status {rc})",
                          duration_s=duration)  # fmt: skip
    if passed:
        return ExecResult(True, "", rc, o, e, duration_s=duration, behaviour=sig)
    if reason == "runtime-error" and "MemoryError" in detail:
        reason = "memory"
    return ExecResult(False, reason or "runtime-error", rc, o, e, detail=detail, duration_s=duration, behaviour=sig)


def run_programs(
    programs: Sequence[Program | str],
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    max_procs: int = 64,
    max_output_bytes: int = 1_000_000,
    workers: int | None = None,
    verdict: str = "trusted-tests",
    mode: str | None = None,
    behaviour: bool = False,
) -> list[ExecResult]:
    """Run every program in its own sandbox, ``workers`` at a time; results keep the input order.

    A plain string is a whole program (no separate tests part).  ``timeout_s`` is wall-clock per program (the CPU
    limit is a little above it); ``memory_mb`` caps the address space; ``max_procs`` caps processes+threads of the
    sandbox user (RLIMIT_NPROC); ``max_output_bytes`` caps stdout+stderr together.  ``verdict``: ``"trusted-tests"``
    (the tests run in the judge process, outside the candidate's reach) or ``"exit-status"`` (the candidate runs the
    tests; exit status 0 passes).  ``mode`` overrides :func:`isolation_mode` (``plain`` still needs the opt-out).
    ``behaviour=True`` has the judge compute each program's behaviour signature (``ExecResult.behaviour``; see
    ``docs/sandbox.md``); it never changes a verdict. The exit-status verdict gives no signature.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict={verdict!r}: expected one of {', '.join(VERDICTS)}")
    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < float("inf")):
        raise ValueError(f"timeout_s={timeout_s!r}: expected a positive, finite number of seconds")
    if not programs:
        return []
    if mode is None:
        mode = isolation_mode()
    elif mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
    elif mode == "plain" and not unsafe_opt_out():
        raise SandboxUnavailableError(f"mode 'plain' runs code without isolation; it needs {UNSAFE_ENV}=1")
    n_workers = max(1, min(len(programs), workers or os.cpu_count() or 1))

    def one(p: Program | str) -> ExecResult:
        try:
            return _run_one(
                p,
                mode=mode,
                timeout_s=timeout_s,
                memory_mb=memory_mb,
                max_procs=max_procs,
                max_output_bytes=max_output_bytes,
                verdict=verdict,
                behaviour=behaviour,
            )
        except Exception as exc:  # noqa: BLE001 - a sandbox failure grades the program as failed, never crashes
            logger.exception("sandbox failure")
            return ExecResult(False, "sandbox-error", None, detail=repr(exc)[:200])

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(one, programs))
