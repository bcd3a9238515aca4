"""The gateway under test: either a URL the user runs, or a command the harness starts and stops."""
from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import httpx
import jinja2

from harness.config import HarnessConfig, gateways_bin, static_context
from harness.secrets import Redactor
from harness.world.processes import StartError
from harness.world.processes import Child, free_port

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def binary(cfg: HarnessConfig) -> Optional[str]:
    """The gateway's executable as its start command names it, rendered (None for a running gateway).
    Parts of the command that need a run (a port, a config path) are not rendered here."""
    if cfg.target.start is None:
        return None
    return jinja2.Environment().from_string(cfg.target.start.command[0]).render(**static_context())


def installed(cfg: HarnessConfig) -> Optional[str]:
    """The gateway binary's full path if it can be run, else None (also None for a running gateway)."""
    exe = binary(cfg)
    return shutil.which(exe) if exe else None


def unavailable(cfg: HarnessConfig) -> Optional[str]:
    """Why the project's setup could not install this gateway, if it said so: ci/setup-gateways.sh
    leaves <gateways dir>/<target name>.unavailable (a registry's refusal, in its own words)."""
    note = gateways_bin().parent / f"{cfg.target.name}.unavailable"
    try:
        return note.read_text().strip().splitlines()[0] or None
    except (OSError, IndexError):
        return None


def not_installed(cfg: HarnessConfig, exe: str) -> StartError:
    hint = f"; install it with: {cfg.target.install}" if cfg.target.install else ""
    why = unavailable(cfg)
    return StartError(f"gateway {cfg.target.name!r} is not installed: {exe} not found{hint}"
                      + (f" (the last setup could not: {why})" if why else ""))


def render_config(template_path: Path, context: dict[str, Any]) -> str:
    try:
        return _env.from_string(template_path.read_text()).render(**context)
    except OSError as exc:
        raise StartError(f"{template_path}: cannot read the config template: {exc.strerror}") from None
    except jinja2.TemplateError as exc:
        raise StartError(f"{template_path}: template error: {exc}") from None


@dataclass
class Launch:
    """How the harness started the gateway, so that it can start it again, on the same port with the
    same config files (after a process fault: harness/world/control.py)."""
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    ready_url: str
    ready_timeout_s: float
    ready_status: Optional[list[int]]
    stop_timeout_s: float
    starts: int = 1

    def start_again(self) -> Child:
        """The same command once more; its log is a file of its own (the last one's is kept)."""
        self.starts += 1
        child = Child("gateway", self.argv, env=self.env, log_path=self.workdir / f"gateway.start{self.starts}.log",
                      cwd=self.workdir)
        try:
            wait_ready(self.ready_url, self.ready_timeout_s, child, self.ready_status)
        except BaseException:
            child.stop(grace_s=self.stop_timeout_s)
            raise
        return child


def start_gateway(cfg: HarnessConfig, cfg_path: Path, workdir: Path, context: dict[str, Any],
                  redactor: Redactor, coverage_rc: Optional[Path] = None
                  ) -> tuple[Optional[Child], str, Optional[Launch]]:
    """Returns the child (None for an external gateway), the gateway's base URL and how it was
    launched. With `coverage_rc`, the command runs under coverage.py (world/gateway_coverage.py)."""
    target = cfg.target
    if target.url:
        return None, target.url, None
    start = target.start
    assert start is not None
    last_error = ""
    for _attempt in range(2):  # a free port can be taken between our probe and the child's bind
        port = free_port()
        ctx = {**context, **static_context(), "port": port, "workdir": str(workdir),
               "ports": {name: free_port() for name in start.ports}, "now": _now()}
        for rel, template in {**({start.config_filename: start.config_template} if start.config_template else {}),
                              **start.files}.items():
            path = workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_config(cfg_path.parent / template, ctx))
            path.chmod(0o600)  # it may hold the run's gateway key
        if start.config_template:
            ctx["config_path"] = str(workdir / start.config_filename)
        argv = [_env.from_string(part).render(**ctx) for part in start.command]
        if shutil.which(argv[0]) is None:   # one line naming the install command, not an OSError
            raise not_installed(cfg, argv[0])
        if coverage_rc is not None:
            from harness.world.gateway_coverage import wrap
            argv = wrap(argv, coverage_rc)
        env = {k: _env.from_string(v).render(**ctx) for k, v in start.env.items()}
        child = Child("gateway", argv, env=env, log_path=workdir / "gateway.log", cwd=workdir)
        url = f"http://127.0.0.1:{port}"
        launch = Launch(argv, env, workdir, url + _env.from_string(start.ready_path).render(**ctx),
                        start.ready_timeout_s, start.ready_status, start.stop_timeout_s)
        try:
            wait_ready(launch.ready_url, start.ready_timeout_s, child, start.ready_status)
            return child, url, launch
        except StartError as exc:
            child.stop(grace_s=start.stop_timeout_s)
            last_error = redactor.text(str(exc))
            if "address already in use" not in last_error.lower():
                break
    raise StartError(f"gateway {target.name!r} did not start: {last_error}\n  command: "
                     + redactor.text(shlex.join(argv)))


def _now() -> dict[str, Any]:
    """The start time, for config files that carry one (a cache seed that must look fresh)."""
    now = datetime.now(timezone.utc)
    return {"iso": now.isoformat(timespec="seconds").replace("+00:00", "Z"), "unix": int(now.timestamp())}


def wait_ready(url: str, timeout_s: float, child: Child, statuses: Optional[list[int]] = None) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=httpx.Timeout(2.0), trust_env=False) as client:
        while time.monotonic() < deadline:
            if not child.alive():
                raise StartError(f"exited with code {child.proc.returncode} before it was ready; "
                                 f"last log lines:\n{child.log_tail(15)}")
            try:
                r = client.get(url)
                if (r.status_code in statuses) if statuses else r.status_code < 500:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
    raise StartError(f"not ready at {url} after {timeout_s:.0f}s ({last}); last log lines:\n{child.log_tail(15)}")
