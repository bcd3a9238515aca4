"""Beyond one machine: locust's master on one host and two workers on another (network namespaces
joined by a veth pair: harness.load.hosts), the target on loopback beside the workers. The
master's merged HDR histograms must be exactly what the workers measured: a histogram built afresh
from the union of the workers' own values (HARNESS_LOAD_DUMP_DIR) equals the master's, bucket by
bucket, and the counts add up, even when a worker's report on quit comes late
(tests/late_report.py). Then: nothing is left behind, also when the run is interrupted."""
from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from harness.load import hosts
from harness.load.metrics import DIGITS, HIGHEST_US, LOWEST_US, PERCENTILES
from harness.load.run import GENERATOR_METRICS, Profile
from harness.world.processes import Child

WORKERS = 2
REQUESTS = 40   # max_requests: each worker sends exactly its share, 20
ROOT = Path(__file__).resolve().parent.parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _need_namespaces() -> None:
    why = hosts.unavailable()
    if why:
        if _in_ci():   # CI machines are like the one this was written on: root, `ip netns add` works
            pytest.fail(f"{why}; CI runs where it can make them, and a skip here would prove nothing", pytrace=False)
        pytest.skip(why)


def _snmp_tcp(h: hosts.TwoHosts, host: str) -> dict[str, int]:
    """The TCP counters of a host's namespace (/proc/net/snmp as a process there sees it)."""
    lines = [ln.split() for ln in h.run(host, ["cat", "/proc/net/snmp"]).splitlines() if ln.startswith("Tcp:")]
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:])}


def _our_devices() -> list[str]:
    """Interfaces of ours in this machine's own namespace (there should never be any)."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=10).stdout
    return [ln for ln in out.splitlines() if re.search(r"^\d+: hv\d+x\d+[ab][@:]", ln)]


def _started(pid: int) -> str:
    """A process's start time (field 22 of /proc/<pid>/stat): with its pid, it names one process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[19]


def _in_netns(inodes: set[int]) -> set[tuple[int, str]]:
    """The processes living in any of these network namespaces (while they exist: a freed
    namespace's inode number may be given to another one, another test's)."""
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if int(os.readlink(f"/proc/{entry.name}/ns/net")[5:-1]) in inodes:
                    found.add((int(entry.name), _started(int(entry.name))))
            except (OSError, IndexError, ValueError):   # gone while we looked
                continue
    return found


def _running(procs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    alive = set()
    for pid, started in procs:
        try:
            if _started(pid) == started and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z":
                alive.add((pid, started))
        except (OSError, IndexError):
            continue
    return alive


def _fresh(values: list[int]) -> HdrHistogram:
    h = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
    for v in values:
        h.record_value(v)
    return h


def _figures(h: HdrHistogram) -> dict[str, int]:
    return {"count": h.get_total_count(), "min": h.get_min_value(), "max": h.get_max_value(),
            **{f"p{p:g}": h.get_value_at_percentile(p) for p in PERCENTILES}}


def test_master_on_one_host_merges_the_workers_on_another_exactly(tmp_path, monkeypatch):
    _need_namespaces()
    # Each worker's report on quit comes later than locust's master waits for it: no figure may
    # depend on that report.
    monkeypatch.setenv("HARNESS_LOAD_LOCUSTFILES", str(ROOT / "tests" / "late_report.py"))
    dump = tmp_path / "dump"
    dump.mkdir()
    profile = Profile(name="hosts", user="StreamUser", users=4, spawn_rate=4, duration_s=4, max_requests=REQUESTS,
                      drain_s=5)
    with hosts.TwoHosts() as h:
        names = set(h.ns.values())
        inodes = {host: h.netns_inode(host) for host in "ab"}
        target = hosts.mock_target(h, tmp_path / "mock.log")   # on host b's own 127.0.0.1
        result = hosts.run_split(h, profile, target, "/v1/chat/completions", "gpt-mock", tmp_path, workers=WORKERS,
                                 env={"HARNESS_LOAD_DUMP_DIR": str(dump)})
        tcp_a, tcp_b = _snmp_tcp(h, "a"), _snmp_tcp(h, "b")
        procs = _in_netns(set(inodes.values()))   # the mock (master and workers have left)
        assert procs
    # Nothing of the run is left: namespaces, interfaces, processes.
    assert not names & set(hosts.leftovers()), hosts.leftovers()
    assert not _our_devices()
    assert not _running(procs)

    files = [json.loads(p.read_text()) for p in sorted(dump.glob("*.json"))]
    masters = [f for f in files if f["role"] == "master"]
    workers = [f for f in files if f["role"] == "worker"]
    assert len(masters) == 1 and len(workers) == WORKERS, [(f["role"], f["pid"]) for f in files]

    # Two hosts: the master ran in namespace a, the workers in b (not this machine's own either).
    ours = os.readlink("/proc/self/ns/net")
    assert masters[0]["netns"] == f"net:[{inodes['a']}]" != ours
    assert all(w["netns"] == f"net:[{inodes['b']}]" for w in workers), [w["netns"] for w in workers]
    # ... and the workers' connections crossed the veth: namespace a (whose only way out is the veth)
    # accepted one per worker and opened none (the master never touched the target, out of its reach).
    assert tcp_a["PassiveOpens"] >= WORKERS and tcp_a["ActiveOpens"] == 0, tcp_a
    assert tcp_b["ActiveOpens"] >= WORKERS + profile.users, tcp_b   # to the master, and a connection per user

    # Everything a worker recorded went out with a report: after its last one (the master asks
    # for it before quitting) it records nothing, not even the lag probe or the CPU count.
    for w in workers:
        assert w["after_last_report"] == {"values": {}, "counts": {}}, w["after_last_report"]
        assert w["reported"]["counts"]["requests"] == REQUESTS // WORKERS, w["reported"]["counts"]

    # Counts: the master's are the workers' sums, every one of them.
    summed: dict[str, int] = {}
    for w in workers:
        for k, n in w["reported"]["counts"].items():
            summed[k] = summed.get(k, 0) + n
    assert result["counts"] == summed
    assert result["counts"]["requests"] == REQUESTS == result["locust"]["requests"]
    assert result["locust"]["failures"] == 0 and not [k for k in summed if k.startswith("error")], summed

    # Histograms: the master's merged one per metric equals one built afresh from the union of the
    # workers' values, bucket by bucket; so do count, min, max and every percentile.
    union: dict[str, list[int]] = {}
    for w in workers:
        for metric, values in w["reported"]["values"].items():
            union.setdefault(metric, []).extend(values)
    merged = {k: HdrHistogram.decode(v.encode()) for k, v in result["hdr"]["histograms"].items()}
    assert set(merged) == set(union) >= {"ttft", "e2e", "itl", "tpot", "gen_lag", "send_lag"}, (set(merged), set(union))
    for metric, values in union.items():
        fresh, theirs = _fresh(values), merged[metric]
        assert _figures(theirs) == _figures(fresh), metric
        assert list(theirs.counts) == list(fresh.counts), metric
        assert theirs.get_total_count() == len(values), metric
    assert merged["ttft"].get_total_count() == merged["e2e"].get_total_count() == REQUESTS

    # The same without HDR for TTFT and the whole stream: each percentile is the union's sorted
    # value at its rank, to the histogram's resolution (3 significant digits), and so are min and max.
    for metric in ("ttft", "e2e"):
        raw, theirs = sorted(union[metric]), merged[metric]
        row = result["table"][metric]
        for p in (50, 95, 99):
            rank = max(1, int(p / 100 * len(raw) + 0.5))
            want, got = raw[rank - 1], theirs.get_value_at_percentile(p)
            assert 0 <= got - want <= want // 1000 + 1, (metric, p, got, want)
            assert row[f"p{p}"] == got / 1000, (metric, p, row)
        assert 0 <= raw[0] - theirs.get_min_value() <= raw[0] // 1000 + 1, (metric, raw[0])
        assert 0 <= theirs.get_max_value() - raw[-1] <= raw[-1] // 1000 + 1, (metric, raw[-1])
        assert row["count"] == len(raw) and row["max"] == theirs.get_max_value() / 1000
    assert set(result["generator"]) == set(GENERATOR_METRICS)


def test_the_mock_on_the_other_host_streams_at_the_profiles_pace(tmp_path):
    """`python -m harness.load.hosts --profile P` scripts the mock as the load lane does (P's tokens and
    token_delay_ms); the control call runs on host b, the only place the mock's loopback is reachable."""
    _need_namespaces()
    profile = Profile(name="paced", user="StreamUser", users=1, spawn_rate=1, duration_s=1, tokens=7, token_delay_ms=15)
    with hosts.TwoHosts() as h:
        target = hosts.mock_target(h, tmp_path / "mock.log", profile)
        listed = h.run("b", [sys.executable, "-c", "import sys, httpx; print(httpx.get(sys.argv[1], timeout=5).text)",
                             f"{target}/__harness/script"])
    rules = json.loads(listed)["rules"]
    assert [(r["tokens"], r["token_delay_ms"]) for r in rules] == [(7, 15.0)], rules


# An interrupted run, in a process of its own: it makes the two hosts, starts the mock, master and
# workers, says so, and is then stopped by the test with SIGINT (Ctrl-C) or SIGKILL (no chance to
# clean up: its children die with it through PR_SET_PDEATHSIG, and the next pair made on the
# machine removes its namespaces).
_INTERRUPTED = """
import sys, tempfile
from pathlib import Path
from harness.load import hosts
from harness.load.run import Profile
profile = Profile(name="long", user="StreamUser", users=2, spawn_rate=2, duration_s=60, drain_s=1)
with tempfile.TemporaryDirectory() as tmp, hosts.TwoHosts() as h:
    target = hosts.mock_target(h, Path(tmp) / "mock.log")
    print("HOSTS", h.ns["a"], h.ns["b"], h.netns_inode("a"), h.netns_inode("b"), flush=True)
    hosts.run_split(h, profile, target, "/v1/chat/completions", "m", Path(tmp))
"""


def _until(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_an_interrupted_run_leaves_nothing_behind(sig, tmp_path):
    _need_namespaces()
    run = Child("interrupted-run", [sys.executable, "-c", _INTERRUPTED], cwd=ROOT, pipe_stdout=True,
                log_path=tmp_path / "run.log")
    try:
        out = run.proc.stdout
        assert select.select([out], [], [], 30)[0], run.log_tail()
        _, ns_a, ns_b, ino_a, ino_b = out.readline().decode().split()
        inodes = {int(ino_a), int(ino_b)}
        # Interrupted mid-run: once the master (on a) and the workers (on b) are all up.
        assert _until(lambda: len(_in_netns(inodes)) >= 1 + 1 + WORKERS, 20), _in_netns(inodes)   # + the mock
        time.sleep(1)
        procs = _in_netns(inodes)
        run.proc.send_signal(sig)
        run.proc.wait(timeout=30)
    finally:
        run.stop(grace_s=5)
    assert _until(lambda: not _running(procs), 15), _running(procs)
    if sig == signal.SIGKILL:   # its owner had no chance: the next pair made here removes them
        with hosts.TwoHosts():
            pass
    assert not {ns_a, ns_b} & set(hosts.leftovers()), hosts.leftovers()
    assert not _our_devices()
