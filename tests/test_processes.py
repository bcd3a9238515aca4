"""kill_group: what is left of a child's process group dies, and nobody else's group does, even when
the kernel has handed the reaped leader's pid to a new session leader (pid_max is 32768 on CI boxes,
and a long test run wraps it)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.world.processes import Child, kill_group


def _state(pid: int) -> str | None:
    """The process's state letter, None once it is gone (a zombie 'Z' is dead but not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _dead(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_the_leftovers_of_a_group_whose_leader_already_left_are_killed():
    # The leader starts a grandchild in its own group, prints its pid and exits (a uvicorn worker left behind).
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    grandchild = int(proc.stdout.readline())
    proc.wait(timeout=5)
    proc.stdout.close()
    assert _state(grandchild) not in (None, "Z")
    kill_group(proc)
    assert _dead(grandchild)


def test_a_leader_that_ignores_sigterm_is_killed_with_its_group(tmp_path):
    child = Child("stubborn", ["sh", "-c", "trap '' TERM; sleep 60 & wait"], log_path=tmp_path / "c.log")
    time.sleep(0.2)
    assert child.stop(grace_s=0.3) is not None
    assert _dead(child.pid)


class _Reaped:
    """A Popen whose leader we already reaped, and whose pid the kernel has since given to someone else."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int:
        return 0


def test_a_new_session_leader_that_got_the_reaped_leaders_pid_is_spared():
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)   # another test's gateway, say
    try:
        kill_group(_Reaped(other.pid), timeout_s=0.5)
        time.sleep(0.1)
        assert other.poll() is None, "kill_group killed a process group that was not the child's"
    finally:
        other.kill()
        other.wait(timeout=5)


def test_a_failed_test_names_the_child_that_died_under_it(tmp_path):
    """The conftest hook: the failure report carries the dead child's exit and its log's end."""
    (tmp_path / "test_dies.py").write_text(
        "import time\n"
        "from harness.world.processes import Child\n"
        "def test_gateway_vanishes(tmp_path):\n"
        "    c = Child('gateway', ['sh', '-c', 'echo last words; exit 3'], log_path=tmp_path / 'g.log')\n"
        "    c.proc.wait(timeout=5)\n"
        "    assert False, 'connection refused'\n"
        "def test_gateway_alive_passes(tmp_path):\n"
        "    pass\n")
    tests_dir = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                        "--rootdir", str(tmp_path), str(tmp_path / "test_dies.py")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tests_dir)})
    assert "1 failed, 1 passed" in r.stdout, r.stdout + r.stderr
    assert "gateway (pid " in r.stdout and "had exited: exit code 3" in r.stdout, r.stdout
    assert "last words" in r.stdout
