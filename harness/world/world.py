"""The world around the gateway for one run: mock providers, the gateway, and how to reach them.

`World` starts everything once per run (never once per pytest worker) and writes a `WorldInfo`
file that workers read. Leaving the `with` block, normally, on an exception or on Ctrl-C, stops
every process it started.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness.config import HarnessConfig, ProviderCfg
from harness.secrets import Redactor
from harness.world.control import ControlServer, GatewayProcess
from harness.world.gateway import start_gateway
from harness.world.fault_proxy import start_fault_proxy
from harness.world.mocks import start_mocks
from harness.world.processes import Child, RefusingPort, StartError

WORLD_ENV = "HARNESS_WORLD"


@dataclass
class WorldInfo:
    config_path: str
    gateway_url: str
    gateway_key: Optional[str]      # secret: lives only in a 0600 file in a 0700 directory
    providers: dict[str, dict[str, Any]]   # name -> {kind, url}
    started_at: float
    gateway_started_by_harness: bool
    chaos_url: Optional[str] = None                 # the Toxiproxy API in use, if chaos is enabled
    chaos_proxies: dict[str, str] = field(default_factory=dict)   # provider -> proxy name
    gateway_pid: Optional[int] = None
    coverage_dir: Optional[str] = None   # the gateway runs under coverage.py: contexts are switched here
    # {url, token, restart_timeout_s} of world/control.py when the harness started the gateway (secret token)
    process_control: Optional[dict[str, Any]] = None
    # glob patterns of the files the gateway the harness started logs to (its output, target.start.logs);
    # a restart's log (gateway.startN.log) matches too. Empty for a gateway the harness did not start.
    gateway_logs: list[str] = field(default_factory=list)
    # where checks `share` secrets they come to know (keys the gateway made, the admin key): every
    # redactor of the run follows it, so the files it writes (the gateway's log above all) never hold them
    secrets_file: Optional[str] = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> "WorldInfo":
        return cls(**json.loads(path.read_text()))


class World:
    def __init__(self, cfg: HarnessConfig, cfg_path: Path, key: Optional[str], redactor: Redactor,
                 log_dir: Optional[Path] = None, seed: int = 0, coverage_dir: Optional[Path] = None) -> None:
        self.cfg, self.cfg_path, self.key, self.redactor = cfg, cfg_path, key, redactor
        self.seed = seed
        self.coverage_dir = coverage_dir   # measure the gateway with coverage.py, its data here
        self.workdir = Path(tempfile.mkdtemp(prefix="harness-world-"))
        os.chmod(self.workdir, 0o700)
        self.log_dir = log_dir
        self._children: list[Child] = []
        self._refusing: list[RefusingPort] = []   # the ports of providers that refuse connections
        self.info: Optional[WorldInfo] = None
        self.info_path = self.workdir / "world.json"
        self.secrets_file = self.workdir / "secrets"   # see WorldInfo.secrets_file
        redactor.follow(self.secrets_file)
        self._chaos = None
        self._created_proxies: list[str] = []
        self.gateway: Optional[GatewayProcess] = None   # the gateway's process, when the harness started it
        self._control: Optional[ControlServer] = None

    def __enter__(self) -> "World":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> WorldInfo:
        live = [p for p in self.cfg.providers if not p.refuses_connections]
        mocks, ports = start_mocks(live, self.workdir, seed=self.seed)
        self._children.append(mocks)
        for p in self.cfg.providers:
            if p.refuses_connections:
                ports[p.name] = self._hold_refusing_port(p)
        providers = {p.name: {"kind": p.kind, "name": p.name, "url": f"http://127.0.0.1:{ports[p.name]}",
                              "control_url": f"http://127.0.0.1:{ports[p.name]}",
                              "refuses_connections": p.refuses_connections} for p in self.cfg.providers}
        chaos_url, chaos_proxies = self._start_chaos(providers, ports)
        context = {
            "providers": providers,
            "models": self.cfg.models,
            "promises": self.cfg.promises,
            "gateway_key": self.key or "",
        }
        rc = None
        if self.coverage_dir is not None and self.cfg.target.coverage is not None:
            from harness.world.gateway_coverage import prepare
            rc = prepare(self.coverage_dir, self.cfg.target.coverage.source, self.cfg.target.coverage.omit)
        gateway, url, launch = start_gateway(self.cfg, self.cfg_path, self.workdir, context, self.redactor, rc)
        control = None
        if gateway and launch:
            self.gateway = GatewayProcess(gateway, launch, on_restart=self._restarted)
            self._control = ControlServer(self.gateway)
            control = {"url": self._control.url, "token": self._control.token,
                       "restart_timeout_s": launch.ready_timeout_s}
        logs = [str(self.workdir / "gateway*.log"), *(str(self.workdir / rel) for rel in self.cfg.target.start.logs)
                ] if gateway and self.cfg.target.start else []
        self.info = WorldInfo(str(self.cfg_path), url, self.key, providers, time.time(), gateway is not None,
                              chaos_url, chaos_proxies, gateway.pid if gateway else None,
                              str(self.coverage_dir) if rc else None, control, logs, str(self.secrets_file))
        self.info.save(self.info_path)
        return self.info

    def _restarted(self, child: Child) -> None:
        """A process fault started the gateway anew: workers read its pid from the world file."""
        assert self.info is not None
        self.info.gateway_pid = child.pid
        self.info.save(self.info_path)

    def _hold_refusing_port(self, p: ProviderCfg) -> int:
        """Bound and never listened on until the world stops: connecting is refused all run long,
        and no server started later (the gateway's, another test's) can take the port."""
        try:
            held = RefusingPort(port=p.port)
        except OSError as exc:
            raise StartError(f"provider {p.name!r}: port {p.port} (providers[].port) should refuse connections, "
                             f"but cannot be held: {exc.strerror}") from None
        self._refusing.append(held)
        return held.port

    def _start_chaos(self, providers: dict[str, dict[str, Any]], ports: dict[str, int]) -> tuple[Optional[str], dict[str, str]]:
        """Puts the fault proxy between the gateway and the chosen providers: the gateway's config
        gets the proxy's address, while the harness keeps talking to the mocks directly."""
        chaos = self.cfg.chaos
        if not chaos.enabled:
            return None, {}
        from harness.chaos.client import ChaosControl
        if chaos.toxiproxy_url:
            url = chaos.toxiproxy_url
        else:
            child, url = start_fault_proxy(self.workdir, seed=chaos.seed)
            self._children.append(child)
        self._chaos = ChaosControl(url)
        made: dict[str, str] = {}
        for name in chaos.providers:
            proxy = f"harness-{name}"
            old = self._chaos.proxy(proxy)
            if old is not None:           # left over from an earlier run against the same server
                self._chaos.server.destroy(old)
            self._chaos.create(proxy, upstream=f"127.0.0.1:{ports[name]}")
            self._created_proxies.append(proxy)
            providers[name]["url"] = "http://" + self._chaos.listen_address(proxy)
            made[name] = proxy
        return url, made

    @property
    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in [*self._children, *([self.gateway.child] if self.gateway else [])]}

    def stop(self) -> None:
        if self._chaos is not None:
            # On every exit path: no toxic and no proxy of ours stays behind on a shared server.
            try:
                self._chaos.reset()
                for proxy in self._created_proxies:
                    p = self._chaos.proxy(proxy)
                    if p is not None:
                        self._chaos.server.destroy(p)
            except Exception as exc:  # the server may already be gone with the world
                print(f"harness: chaos cleanup: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._chaos.close()
            self._chaos = None
            self._created_proxies.clear()
        grace = self.cfg.target.start.stop_timeout_s if self.cfg.target.start else 5
        if self._control is not None:   # first: no restart while the world stops
            self._control.close()
            self._control = None
        if self.gateway is not None:    # the gateway before what it talks to
            self.gateway.stop(grace)
            self.gateway = None
        for child in reversed(self._children):
            child.stop(grace_s=grace)
        self._children.clear()
        for held in self._refusing:   # only now: while the gateway ran, those providers had to keep refusing
            held.close()
        self._refusing.clear()
        if self.log_dir:  # keep the logs, with every secret we know of removed
            self.log_dir.mkdir(parents=True, exist_ok=True)
            extra = [self.workdir / rel for rel in (self.cfg.target.start.logs if self.cfg.target.start else [])]
            for log in [*self.workdir.glob("*.log"), *(p for p in extra if p.is_file())]:
                name = log.name if log.parent == self.workdir else f"gateway-{log.name}"
                (self.log_dir / name).write_text(self.redactor.text(log.read_text(errors="replace")))
        shutil.rmtree(self.workdir, ignore_errors=True)
