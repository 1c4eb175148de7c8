"""Run untrusted Python programs (model-written code plus its tests) in an isolated child process.

See ``docs/sandbox.md`` for the full threat model.  In short, every program runs in a fresh interpreter:

* **Isolation** (best available, picked once per process by :func:`isolation_mode`):

  - ``"namespaces"`` (root with ``unshare``/``setpriv``): new mount, network and PID namespaces; the world-writable
    directories (``/tmp``, ``/var/tmp``, ``/run/lock``, ``/dev/shm``) are replaced by small private tmpfs mounts, so
    nothing the program writes reaches the host; no network interface but a down loopback; the program cannot see or
    signal any host process; it runs as ``nobody`` (uid/gid 65534, no supplementary groups, ``no_new_privs``), which
    makes the rest of the filesystem read-only and root-only files (``/etc/shadow``, ``/root``) unreadable.
  - ``"drop"`` (root, no namespaces): the same privilege drop to ``nobody`` without the namespaces.
  - ``"plain"`` (not root): the current unprivileged user.

* **Resource limits** (``resource.setrlimit`` in the child before any untrusted code runs): address space,
  process/thread count, file size, CPU seconds, open files, no core dumps.  A wall-clock deadline kills the whole
  process tree with SIGKILL (signal handlers cannot stop it); stdout+stderr are read with a byte cap.

* **In-process guard**: a ``sys.addaudithook`` hook (it cannot be removed once installed) refuses process creation,
  sockets, raw ``ctypes`` memory/function access, signalling other processes, tracing/profiling, ``gc`` object
  walking, replacing a function's ``__code__`` and writes outside the scratch directory.  It is defence in depth;
  the OS mechanisms above do not depend on it.

* **Positive evidence**: a program passes only if the child exits with status 0 **and** printed a per-run random
  nonce that the harness writes, through a file descriptor saved before the untrusted code ran, only after both the
  solution and the tests were executed to completion without an exception.  ``exit(0)``, ``os._exit(0)``,
  ``raise SystemExit``, a replaced ``print``/``sys.stdout``/``AssertionError``/``exec``, ... therefore all fail.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NOBODY = 65534
TAIL_CHARS = 2000
WRITABLE_SHARED_DIRS = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")


@dataclass(frozen=True)
class Program:
    """A program in two parts compiled separately: ``code`` (untrusted) then ``tests``.

    Compiling them separately means the code cannot swallow the tests (for example with an unclosed string literal).
    Both run in the same global namespace, ``code`` first.
    """

    code: str
    tests: str = ""


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program.

    ``passed`` is True only with positive evidence that the tests ran to completion (status 0 and the run's nonce).
    ``reason`` is ``""`` on a pass, otherwise one of: ``syntax``, ``tests-syntax``, ``assertion``, ``runtime-error``,
    ``exit-before-tests``, ``timeout``, ``memory``, ``recursion``, ``forbidden`` (the sandbox or the OS refused an
    operation), ``file-size`` (RLIMIT_FSIZE), ``output-limit``, ``crash`` (killed by a signal), ``sandbox-error``.
    """

    passed: bool
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    detail: str = ""  # exception type name, signal name, ...
    duration_s: float = 0.0


# ----------------------------------------------------------------------------------------------------------------
# The harness: the first code the child runs (trusted).  argv: mem_mb max_procs fsize_mb nofile cpu_s.
# stdin: a JSON payload {"nonce", "code", "tests", "scratch"}.
# ----------------------------------------------------------------------------------------------------------------
HARNESS = r"""
def _lmeds_harness():
    import builtins, json, os, resource, sys
    _write, _exit, _dup, _close = os.write, os._exit, os.dup, os.close
    _exec, _compile, _type, _issubclass, _isinstance = exec, compile, type, issubclass, isinstance
    _BaseException, _SystemExit, _AssertionError = BaseException, SystemExit, AssertionError
    _MemoryError, _RecursionError, _PermissionError = MemoryError, RecursionError, PermissionError
    _OSError, _getattr, _float, _tuple = OSError, getattr, float, tuple
    _str, _bytes, _int, _len = str, bytes, int, len
    mem_mb, max_procs, fsize_mb, nofile, cpu_s = (int(a) for a in sys.argv[1:6])

    def _limit(res, value):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass

    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_CPU, cpu_s)
    _limit(resource.RLIMIT_FSIZE, fsize_mb * 2**20)
    _limit(resource.RLIMIT_NOFILE, nofile)
    _limit(resource.RLIMIT_NPROC, max_procs)
    _limit(resource.RLIMIT_AS, mem_mb * 2**20)

    chunks = []
    while True:
        b = os.read(0, 1 << 16)
        if not b:
            break
        chunks.append(b)
    payload = json.loads(b"".join(chunks))
    del chunks
    nonce = payload.pop("nonce")
    code_src, tests_src, scratch = payload.pop("code"), payload.pop("tests"), payload.pop("scratch")
    del payload
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    _close(fd)
    out_fd = _dup(1)  # the real stdout, kept out of reach of sys.stdout / os.dup2 games on fd 1
    _stdout, _stderr = sys.stdout, sys.stderr

    def _report(status):
        for s in (_stdout, _stderr):
            try:
                s.flush()
            except _BaseException:
                pass
        try:
            _write(out_fd, ("\n" + nonce + ":" + status + "\n").encode())
        except _BaseException:
            pass

    try:
        code_obj = _compile(code_src, "<solution>", "exec")
    except _BaseException:
        _report("FAIL:syntax:")
        _exit(1)
    try:
        tests_obj = _compile(tests_src, "<tests>", "exec")
    except _BaseException:
        _report("FAIL:tests-syntax:")
        _exit(1)
    del code_src, tests_src

    scratch = os.path.realpath(scratch)
    os.chdir(scratch)
    sep_scratch = scratch.rstrip("/") + "/"
    deny_prefixes = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
                     "subprocess.", "pty.", "socket.", "ctypes.dl", "ctypes.call_function", "ctypes.cdata",
                     "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at", "sys.settrace",
                     "sys.setprofile", "sys._current_frames", "sys._current_exceptions", "sys.addaudithook",
                     "gc.get_", "os.killpg", "os.setns", "os.unshare", "os.chroot", "winreg.", "mmap.")
    try:  # imported before arming (numpy needs it); its dangerous operations are refused by the hook below
        import ctypes  # noqa: F401
    except ImportError:
        pass
    deny_imports = frozenset(("_posixsubprocess", "_testcapi", "_testinternalcapi",
                              "_xxsubinterpreters", "_xxinterpchannels", "_testmultiphase", "_testbuffer"))
    path_events = frozenset(("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
                             "os.utime", "os.chdir", "os.symlink", "os.link", "os.rename", "os.chflags",
                             "os.lchflags", "os.setxattr", "os.removexattr", "shutil.rmtree", "shutil.chown",
                             "os.mkfifo", "os.mknod"))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    my_pid = os.getpid()
    armed = [False]

    def _inside(path):
        if _isinstance(path, _int):
            return True
        if _isinstance(path, _bytes):
            path = path.decode("utf-8", "surrogateescape")
        elif not _isinstance(path, _str):
            return False  # path-like objects could answer differently on each call: refuse
        if not path.startswith("/"):
            path = sep_scratch + path
        parts = []
        for p in path.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(p)
        return ("/" + "/".join(parts) + "/").startswith(sep_scratch)

    def _deny(event):
        raise _PermissionError("sandbox: operation not permitted: " + event)

    def _hook(event, args):
        if not armed[0]:
            return
        if event == "open":
            path, mode, flags = args
            writing = _isinstance(flags, _int) and flags & write_flags
            if _isinstance(mode, _str):
                for c in "wax+":
                    if c in mode:
                        writing = True
            if writing and not _inside(path):
                _deny(event)
            return
        if event == "import":
            if args[0] in deny_imports:
                _deny(event + " " + args[0])
            return
        if event.startswith(deny_prefixes):
            _deny(event)
        if event == "os.kill":
            if args[0] != my_pid:
                _deny(event)
        elif event in path_events:
            for a in args[:2]:
                if a is None or _isinstance(a, (_int, _float, _tuple)):
                    continue  # fds, modes, ids, times
                if not _inside(a):
                    _deny(event)
        elif event == "object.__setattr__" and _len(args) > 1 and args[1] in ("__code__", "__globals__"):
            _deny(event)

    sys.addaudithook(_hook)
    g = {"__name__": "__main__", "__builtins__": builtins, "__file__": "solution.py"}
    stage = "solution"
    armed[0] = True
    try:
        _exec(code_obj, g)
        stage = "tests"
        _exec(tests_obj, g)
    except _BaseException as exc:
        t = _type(exc)
        name = ""
        try:
            name = t.__name__ if _isinstance(t.__name__, _str) else ""
        except _BaseException:
            pass
        if _issubclass(t, _SystemExit):
            reason = "exit-before-tests"
        elif _issubclass(t, _AssertionError):
            reason = "assertion" if stage == "tests" else "runtime-error"
        elif _issubclass(t, _MemoryError):
            reason = "memory"
        elif _issubclass(t, _RecursionError):
            reason = "recursion"
        elif _issubclass(t, _PermissionError):
            reason = "forbidden"
        else:
            reason = "runtime-error"
            try:
                if _issubclass(t, _OSError) and _getattr(exc, "errno", None) == 27:
                    reason = "file-size"  # EFBIG: RLIMIT_FSIZE
            except _BaseException:
                pass
        msg = ""
        if reason == "exit-before-tests":
            try:
                code = exc.code
                msg = "exit status 0" if code is None or (_isinstance(code, _int) and code == 0) else "exit status"
            except _BaseException:
                pass
        if reason == "forbidden":
            try:
                msg = exc.args[0] if _isinstance(exc.args[0], _str) else ""
            except _BaseException:
                pass
        _report("FAIL:" + reason + ":" + (name + ": " + msg)[:160].replace("\n", " "))
        _exit(1)
    _report("PASS::")
    _exit(0)


_lmeds_harness()
"""


# ----------------------------------------------------------------------------------------------------------------
# Isolation set-up (decided once per process)
# ----------------------------------------------------------------------------------------------------------------
_MODE_LOCK = threading.Lock()
_MODE: str | None = None


def _blocked_ancestors() -> dict[str, set[str]]:
    """Directories that ``nobody`` cannot traverse on the way to the interpreter and its libraries.

    Returns {blocked dir: {first child names needed under it}} (e.g. ``/root`` -> ``{".pyenv"}`` for a pyenv Python).
    """
    needed = {os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            needed.add(p)
    blocked: dict[str, set[str]] = {}
    for path in needed:
        parts = os.path.realpath(path).strip("/").split("/")
        cur = "/"
        for i, part in enumerate(parts[:-1]):
            cur = os.path.join(cur, part)
            try:
                mode = os.stat(cur).st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                blocked.setdefault(cur, set()).add(parts[i + 1])
                break
    return blocked


def _ns_script() -> str:
    """The ``sh`` script run as root inside the new namespaces; $1 = scratch, $2 = tmpfs MB, then the command."""
    lines = ["set -e", 'S="$1"; T="$2"; shift 2', 'mkdir -p "$S"']
    for i, (blocked, children) in enumerate(sorted(_blocked_ancestors().items())):
        hold = f'"$S/.hold{i}"'
        lines.append(f"mkdir -p {hold}; mount --bind '{blocked}' {hold}")
        lines.append(f"mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev tmpfs '{blocked}'")
        for child in sorted(children):
            lines.append(f"mkdir -p '{blocked}/{child}'; mount --bind {hold}/'{child}' '{blocked}/{child}'")
    for d in WRITABLE_SHARED_DIRS:
        lines.append(f"if [ -d {d} ]; then mount -t tmpfs -o size=${{T}}m,mode=1777,nosuid,nodev tmpfs {d}; fi")
    lines.append(f'mkdir -p "$S"; chown {NOBODY}:{NOBODY} "$S"; chmod 0700 "$S"; cd "$S"')
    lines.append('exec "$@"')
    return "\n".join(lines)


def _setpriv_prefix() -> list[str]:
    return [
        shutil.which("setpriv") or "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--no-new-privs",
        "--",
    ]


def _command(mode: str, scratch: str, limits: list[str], tmpfs_mb: int) -> list[str]:
    py = [sys.executable, "-s", "-P", "-B", "-c", HARNESS, *limits]
    if mode == "namespaces":
        unshare = shutil.which("unshare") or "unshare"
        return [
            unshare, "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--",
            "/bin/sh", "-c", _ns_script(), "sh", scratch, str(tmpfs_mb), *_setpriv_prefix(), *py,
        ]  # fmt: skip
    if mode == "drop":
        return [*_setpriv_prefix(), *py]
    return py


def _probe(mode: str) -> bool:
    try:
        r = _run_one(Program("import math\nx = math.sqrt(4)", "assert x == 2.0"), mode=mode, timeout_s=20.0)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        logger.debug("sandbox mode %s unusable: %r", mode, exc)
        return False
    if not r.passed:
        logger.debug("sandbox mode %s unusable: %s %s", mode, r.reason, r.stderr[-500:])
    return r.passed


def isolation_mode() -> str:
    """The strongest isolation that works here: ``"namespaces"``, ``"drop"`` or ``"plain"`` (probed once).

    The environment variable ``LMEDS_SANDBOX_MODE`` forces a mode (mainly for tests).
    """
    global _MODE
    with _MODE_LOCK:
        if _MODE is None:
            forced = os.environ.get("LMEDS_SANDBOX_MODE")
            if forced:
                _MODE = forced
            elif os.geteuid() != 0:
                _MODE = "plain"
            else:
                _MODE = "plain"
                for cand in ("namespaces", "drop"):
                    tools = ("unshare", "setpriv", "mount") if cand == "namespaces" else ("setpriv",)
                    if all(shutil.which(t) for t in tools) and _probe(cand):
                        _MODE = cand
                        break
                if _MODE == "plain":
                    logger.warning(
                        "code sandbox: running as root but neither namespaces nor a privilege drop work here; "
                        "generated code runs as root, guarded only by rlimits and the in-process audit hook"
                    )
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
    for action in (lambda: os.killpg(proc.pid, signal.SIGKILL),):
        try:
            action()
        except (ProcessLookupError, PermissionError):
            pass
    for p in [proc.pid, *pids]:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _tail(data: bytes) -> str:
    return data[-4 * TAIL_CHARS :].decode("utf-8", "replace")[-TAIL_CHARS:]


def _signal_reason(rc: int) -> tuple[str, str]:
    sig = -rc if rc < 0 else rc - 128
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"SIG{sig}"
    if sig == signal.SIGXCPU:
        return "timeout", name
    if sig == signal.SIGXFSZ:
        return "forbidden", name
    return "crash", name


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
    exit_zero_passes: bool = False,
) -> ExecResult:
    if isinstance(program, str):
        program = Program(program, "")
    start = time.monotonic()
    nonce = secrets.token_hex(24)
    scratch = tempfile.mkdtemp(prefix="lmeds_sbx_")
    try:
        if mode == "drop":
            os.chown(scratch, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": scratch,
            "TMPDIR": scratch,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
            "LANG": "C.UTF-8",
        }
        cpu_s = int(timeout_s) + 2
        limits = [str(memory_mb), str(max_procs), str(max_file_mb), str(max_open_files), str(cpu_s)]
        payload = json.dumps({"nonce": nonce, "code": program.code, "tests": program.tests, "scratch": scratch})
        proc = subprocess.Popen(
            _command(mode, scratch, limits, tmpfs_mb=max(8, 4 * max_file_mb)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=scratch,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        return _collect(proc, payload.encode(), nonce, start, timeout_s, max_output_bytes, exit_zero_passes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _collect(
    proc: subprocess.Popen,
    payload: bytes,
    nonce: str,
    start: float,
    timeout_s: float,
    max_output_bytes: int,
    exit_zero_passes: bool = False,
) -> ExecResult:
    deadline = start + timeout_s
    killed_for = ""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        # The harness reads its whole stdin before running anything, so this cannot dead-lock on a full stdout pipe.
        proc.stdin.write(payload)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    bufs: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
        sel.register(f.fileno(), selectors.EVENT_READ)
    total = 0
    token_room = len(nonce) + 64
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    try:
        while sel.get_map():
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
                total += len(chunk)
            if total > max_output_bytes + token_room:
                killed_for = "output-limit"
                break
            if not events and proc.poll() is not None:
                break  # the program is gone and the pipes are quiet: a leftover holder must not keep us waiting
    finally:
        sel.close()
    if killed_for:
        _kill_tree(proc)
    try:
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        killed_for = killed_for or "timeout"
        _kill_tree(proc)
        rc = proc.wait()
    _kill_tree(proc)  # stragglers in the process group (no-op in the namespaces mode: the PID namespace is gone)
    out, err = bytes(bufs[out_fd]), bytes(bufs[err_fd])
    proc.stdout.close()
    proc.stderr.close()
    duration = time.monotonic() - start

    status = None
    marker = ("\n" + nonce + ":").encode()
    pos = out.rfind(marker)
    if pos >= 0:
        line = out[pos + len(marker) :].split(b"\n", 1)[0].decode("ascii", "replace")
        status = line
        out = out[:pos] + out[pos + len(marker) + len(line) + 1 :]
    o, e = _tail(out), _tail(err)
    if killed_for:
        return ExecResult(False, killed_for, rc, o, e, duration_s=duration)
    if status is not None:
        kind, _, rest = status.partition(":")
        reason, _, detail = rest.partition(":")
        if kind == "PASS" and rc == 0:
            return ExecResult(True, "", rc, o, e, duration_s=duration)
        if kind == "FAIL":
            if exit_zero_passes and reason == "exit-before-tests" and detail.endswith("exit status 0"):
                return ExecResult(True, "", rc, o, e, detail="exit status 0", duration_s=duration)
            if reason == "memory" or "MemoryError" in detail:
                reason = "memory"
            return ExecResult(False, reason or "runtime-error", rc, o, e, detail=detail, duration_s=duration)
        return ExecResult(False, "sandbox-error", rc, o, e, detail=status[:80], duration_s=duration)
    if rc == 0 and exit_zero_passes:
        return ExecResult(True, "", rc, o, e, detail="exit status 0", duration_s=duration)
    if rc == 0:
        return ExecResult(False, "exit-before-tests", rc, o, e, detail="exit status 0 without test evidence",
                          duration_s=duration)  # fmt: skip
    if rc is not None and (rc < 0 or rc > 128):
        reason, detail = _signal_reason(rc)
        return ExecResult(False, reason, rc, o, e, detail=detail, duration_s=duration)
    if "MemoryError" in e:
        return ExecResult(False, "memory", rc, o, e, duration_s=duration)
    return ExecResult(False, "exit-before-tests", rc, o, e, detail=f"exit status {rc}", duration_s=duration)


def run_programs(
    programs: Sequence[Program | str],
    *,
    timeout_s: float = 10.0,
    memory_mb: int = 512,
    max_procs: int = 64,
    max_output_bytes: int = 1_000_000,
    workers: int | None = None,
    exit_zero_passes: bool = False,
) -> list[ExecResult]:
    """Run every program in its own sandboxed interpreter, ``workers`` at a time; results keep the input order.

    ``exit_zero_passes``: the reference's rule (a program passes when its process exits with status 0, e.g. after
    ``sys.exit(0)`` in the solution) instead of requiring evidence that the tests ran to completion.

    A plain string is a whole program (no separate tests part).  ``timeout_s`` is wall-clock per program (the CPU
    limit is a little above it); ``memory_mb`` caps the address space; ``max_procs`` caps processes+threads of the
    sandbox user (RLIMIT_NPROC); ``max_output_bytes`` caps stdout+stderr together.
    """
    if not programs:
        return []
    mode = isolation_mode()
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
                exit_zero_passes=exit_zero_passes,
            )
        except Exception as exc:  # noqa: BLE001 - a sandbox failure grades the program as failed, never crashes
            logger.exception("sandbox failure")
            return ExecResult(False, "sandbox-error", None, detail=repr(exc)[:200])

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(one, programs))
