"""What a run was: who ran what, against which gateway and version, judged against which promises
and which catalog. The first line of results.jsonl; every report shows it."""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from harness.config import HarnessConfig

UNKNOWN = "unknown"


def catalog_digest(matrices: Path) -> str:
    """sha256 over every catalog file (path and bytes): equal digests, equal claims and params."""
    h = hashlib.sha256()
    for f in sorted(matrices.rglob("*.yaml")):
        h.update(str(f.relative_to(matrices)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def gateway_version(cfg: HarnessConfig, gateway_url: Optional[str], timeout_s: float = 5.0) -> dict[str, str]:
    """Asks where target.version says: an installed Python package, a command's output, or a path
    on the running gateway. Never raises: a version that cannot be read is 'unknown' with why."""
    spec = cfg.target.version
    if spec is None:
        return {"version": UNKNOWN, "source": "target.version not given in harness.yaml"}
    try:
        if spec.package:
            from importlib.metadata import version
            return {"version": version(spec.package), "source": f"Python package {spec.package}"}
        if spec.command:
            out = subprocess.run(spec.command, capture_output=True, text=True, timeout=timeout_s)
            line = (out.stdout or out.stderr).strip().splitlines()
            return {"version": line[0][:120] if line else UNKNOWN, "source": f"`{shlex.join(spec.command)}`"}
        if spec.path and gateway_url:
            import httpx
            r = httpx.get(gateway_url + spec.path, timeout=timeout_s)
            if spec.field:
                value: Any = r.json()
                for part in spec.field.split("."):
                    value = value[part]
                return {"version": str(value)[:120], "source": f"GET {spec.path} .{spec.field}"}
            return {"version": r.text.strip()[:120] or UNKNOWN, "source": f"GET {spec.path}"}
    except Exception as exc:   # noqa: BLE001 - provenance must never break a run
        return {"version": UNKNOWN, "source": f"could not read it: {type(exc).__name__}: {exc}"[:200]}
    return {"version": UNKNOWN, "source": "target.version names nothing to ask"}


def ci_job() -> Optional[dict[str, str]]:
    """The CI job this run belongs to, from the variables the common CI systems set."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") == "true":
        url = f"{env.get('GITHUB_SERVER_URL', '')}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        return {"system": "GitHub Actions", "job": env.get("GITHUB_JOB", ""), "run": env.get("GITHUB_RUN_ID", ""),
                "ref": env.get("GITHUB_REF", ""), "commit": env.get("GITHUB_SHA", ""), "url": url}
    if env.get("GITLAB_CI") == "true":
        return {"system": "GitLab CI", "job": env.get("CI_JOB_NAME", ""), "run": env.get("CI_PIPELINE_ID", ""),
                "ref": env.get("CI_COMMIT_REF_NAME", ""), "commit": env.get("CI_COMMIT_SHA", ""),
                "url": env.get("CI_JOB_URL", "")}
    if env.get("BUILDKITE") == "true":
        return {"system": "Buildkite", "job": env.get("BUILDKITE_LABEL", ""), "run": env.get("BUILDKITE_BUILD_NUMBER", ""),
                "ref": env.get("BUILDKITE_BRANCH", ""), "commit": env.get("BUILDKITE_COMMIT", ""),
                "url": env.get("BUILDKITE_BUILD_URL", "")}
    if env.get("CI", "").lower() in ("true", "1"):
        return {"system": "CI", "job": "", "run": "", "ref": "", "commit": "", "url": ""}
    return None


def describe(cfg: HarnessConfig, cfg_path: Path, matrices: Path, argv: list[str], gateway: dict[str, str],
             options: dict[str, Any]) -> dict[str, Any]:
    import harness
    return {
        "harness_version": harness.__version__,
        "command": shlex.join(["harness", *argv]),
        "options": options,
        "target": {"name": cfg.target.name, "config": str(cfg_path), "url": cfg.target.url,
                   "started_by_harness": cfg.target.start is not None},
        "gateway": {"name": cfg.target.name, **gateway},
        "providers": [{"name": p.name, "kind": p.kind, "mock": True} for p in cfg.providers],
        "promises": cfg.promises.model_dump(mode="json", exclude_none=True),
        "catalog_digest": catalog_digest(matrices),
        "ci": ci_job(),
        "host": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
    }
