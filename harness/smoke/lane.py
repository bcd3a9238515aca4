"""`harness smoke`: the matrix's providers as mock providers behind the gateway (a generated
gateway config), every cell sent and checked, the gateway's catalog cross-checked, and the
result written as a matrix (smoke.md, smoke.html, smoke.json) and as JUnit cases (one per cell)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import HarnessConfig, resolve_key
from harness.oracles import models as mo
from harness.secrets import Redactor
from harness.smoke import cells
from harness.smoke.matrix import Matrix, Row

LABEL = {False: "plain", True: "stream"}


def smoke_config(base: HarnessConfig, matrix: Matrix, omit: tuple[str, ...] = ()) -> HarnessConfig:
    """The target of `base` (how to start and reach the gateway) serving the matrix's routes.
    `omit`: routes left out of the gateway's config on purpose (a broken config, for tests)."""
    data = base.model_dump(mode="json", exclude_none=True)
    data["target"]["auth"] = base.target.auth.model_dump(mode="json")   # a null header or scheme means something
    parts = matrix.harness_parts()
    for m in parts["models"]:
        if m["name"] in omit:
            m["gateway"]["omit"] = True
    data.update(providers=parts["providers"], models=parts["models"], roles={}, defaults={}, gates=[], claims=[],
                chaos={"enabled": False})
    data.pop("load", None)
    data.pop("smoke", None)
    data["promises"] = {"fallbacks": parts["fallbacks"], "retries": {"count": 0}, "auth": data["promises"]["auth"]}
    return HarnessConfig.model_validate(data)


def with_not_offered(matrix: Matrix, base: HarnessConfig) -> Matrix:
    """The matrix with the routes the target says its gateway cannot serve (smoke.not_offered in
    harness.yaml: by provider kind or name) marked NOT OFFERED."""
    from harness.smoke.matrix import NotOffered
    extra = []
    for n in (base.smoke.not_offered if base.smoke else []):
        names = [n.provider] if n.provider else [p.name for p in matrix.providers if n.kind in (None, p.kind)]
        extra += [NotOffered(provider=name, protocol=n.protocol, stream=n.stream, case=n.case,
                             why=n.why) for name in names]
    return matrix.model_copy(update={"not_offered": [*matrix.not_offered, *extra]}) if extra else matrix


def catalog_checks(gw: cells.Gateway, matrix: Matrix, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gateway's own catalog against the matrix: every route and every fallback-chain member
    listed and served, nothing listed twice, provider namespaces consistent."""
    ex = gw.client.request("GET", gw.path("models"))
    obj = ex.json() if ex.status == 200 else None
    listing = {"exchange": ex.evidence(3000)}
    out = []

    def rec(cid: str, claim: str, problems: list[str], ok: str, evidence: dict[str, Any]) -> None:
        out.append({"id": cid, "claim": claim, "status": "FAIL" if problems else "PASS",
                    "reason": "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
                    if problems else ok, "evidence": {**evidence, "problems": problems}})

    if obj is None:
        why = [f"GET {gw.path('models')}: HTTP {ex.status} {ex.error or ''}".strip()]
        for cid, claim in (("catalog.listed", "every route is listed"), ("catalog.unique", "no model listed twice"),
                           ("catalog.namespaces", "provider namespaces are consistent"),
                           ("catalog.fallbacks_served", "every fallback-chain member is served")):
            rec(cid, claim, why, "", listing)
        return out
    ids = mo.ids(obj)
    # A route the gateway does not offer at all (every cell NOT OFFERED) is not expected in its catalog.
    offered = {r.name for r in matrix.rows()
               if not all(matrix.not_offered_why(r.provider, p, s) for p in matrix.protocols for s in matrix.streaming)}
    routes = [r.name for r in matrix.rows() if r.name in offered]
    rec("catalog.listed", "every route of the matrix is listed in /v1/models", mo.lists_all(obj, routes, "route"),
        f"all {len(routes)} routes listed", {"ids": ids})
    rec("catalog.unique", "no model is listed twice", mo.no_duplicates(obj), f"{len(ids)} ids, none twice", {"ids": ids})
    providers = {p.name for p in matrix.providers}
    odd = [f"{i!r}: namespace {i.split('/')[0]!r} is no provider of the matrix" for i in ids
           if "/" in i and i.split("/")[0] not in providers]
    odd += [f"{i!r}: a plain name that is no declared alias" for i in ids if "/" not in i and i not in matrix.aliases]
    rec("catalog.namespaces", "every listed name is provider/model or a declared alias", odd,
        "every id is provider/model of a known provider, or a declared alias", {"ids": ids})
    served = {r["row"]: r for r in results if r["protocol"] == "openai_chat" and not r["stream"]
              and r.get("case", "text") == "text"}
    members = sorted({n for head, chain in matrix.fallbacks.items() for n in [head, *chain]} & offered)
    problems = []
    for name in members:
        if name not in ids:
            problems.append(f"{name!r} (in a fallback chain) is not listed")
        cell = served.get(name)
        if cell is None:
            probe = gw.client.request("POST", gw.path("openai_chat", name), {"model": name, "max_tokens": 16, "messages": [
                {"role": "user", "content": "fallback member check"}]}, headers=gw.headers(name))
            ok = probe.status == 200
            why = f"HTTP {probe.status}"
        else:
            ok, why = cell["status"] == "PASS", cell["reason"]
        if not ok:
            problems.append(f"{name!r} (in a fallback chain) is not served: {why}")
    rec("catalog.fallbacks_served", "every model in a fallback chain is listed and answers a real request", problems,
        f"all {len(members)} chain members listed and served", {"chains": matrix.fallbacks})
    return out


def run_matrix(cfg: HarnessConfig, matrix: Matrix, gateway_url: str, auth_value: Optional[str],
               controls: dict[str, str], workers: int = 4, progress: bool = True) -> dict[str, Any]:
    rows = matrix.rows()
    paths = {"openai_chat": cfg.target.paths.chat, "openai_responses": cfg.target.paths.responses,
             "anthropic_messages": cfg.target.paths.messages, "models": cfg.target.paths.models}
    d = cfg.deadlines
    from harness.world.routes import Routes
    routes = Routes(cfg, {n: {"name": n, "kind": cfg.provider(n).kind, "url": u} for n, u in controls.items()})
    client = GatewayClient(gateway_url, cfg.target.auth.header, auth_value, connect_s=d.connect_s, read_s=d.read_s,
                           request_s=d.request_s, stream_s=d.stream_s, headers=routes.target_headers())
    gw = cells.Gateway(client, paths, {n: ProviderControl(n, u) for n, u in controls.items()}, routes)
    # One job per (row, protocol, case): its streaming modes in turn, so plain and streamed can be compared.
    jobs = list(dict.fromkeys((row, protocol, case) for row, protocol, _, case in matrix.cells()))
    total = len(jobs) * len(matrix.streaming)
    done: list[dict[str, Any]] = []

    def job(row: Row, protocol: str, case: str) -> list[dict[str, Any]]:
        out = []
        for stream in matrix.streaming:
            why = (None if protocol in cfg.target.protocols else
                   f"the gateway does not expose {protocol} (target.protocols)") or \
                matrix.not_offered_why(row.provider, protocol, stream, case)
            out.append(cells.not_offered(row, protocol, stream, why, case) if why else
                       cells.run_cell(gw, row, protocol, stream, case))
            done.append(out[-1])
            if progress:
                c = out[-1]
                print(f"harness smoke: [{len(done):>3}/{total}] {c['status']:<11} {row.name} {protocol} {LABEL[stream]}"
                      + cells.CASES[case].suffix + (f": {c['reason'][:120]}" if c["status"] == "FAIL" else ""), flush=True)
        by = {c["stream"]: c for c in out}
        if True in by and False in by:
            cells.agree(by[False], by[True])
        return out

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = [c for batch in pool.map(lambda j: job(*j), jobs) for c in batch]
        checks = catalog_checks(gw, matrix, results)
    finally:
        client.close()
        for c in gw.controls.values():
            c.close()
    return {"matrix": matrix.model_dump(), "rows": [r.to_json() for r in rows], "columns": [
        {"protocol": p, "stream": s} for p in matrix.protocols for s in matrix.streaming], "cells": results,
        "catalog": checks}


def summary(result: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in result["cells"] + result["catalog"]:
        out[c["status"]] = out.get(c["status"], 0) + 1
    return out


def measure(base: HarnessConfig, cfg_path: Path, matrix: Matrix, out: Path, omit: tuple[str, ...] = (),
            progress: bool = True) -> tuple[dict[str, Any], Redactor]:
    """Starts the matrix's world (mock providers, the gateway with a generated config), runs every
    cell, stops the world; returns the result (redacted) and the redactor for what is written."""
    from harness.world.world import World
    cfg = smoke_config(base, matrix, omit)
    matrix = with_not_offered(matrix, base)
    key = resolve_key(cfg.target.auth, str(cfg_path))
    redactor = Redactor([key] if key else [])
    rows = matrix.rows()
    say = print if progress else (lambda *a, **k: None)
    n_text = len(rows) * len(matrix.protocols) * len(matrix.streaming)
    n_tools = len(matrix.cells()) - n_text
    say(f"harness smoke: matrix {matrix.name}: {len(rows)} routes x {len(matrix.protocols)} protocols x "
        f"{len(matrix.streaming)} modes = {n_text} cells" + (f", and {n_tools} tool-call cells" if n_tools else ""),
        flush=True)
    with World(cfg, cfg_path, key, redactor, log_dir=out / "logs") as world:
        assert world.info is not None
        say(f"harness smoke: gateway ready at {world.info.gateway_url}; providers: "
              + ", ".join(f"{p.name} ({p.kind})" for p in cfg.providers), flush=True)
        value = cfg.target.auth.value(key)
        controls = {n: p["control_url"] for n, p in world.info.providers.items()}
        result = run_matrix(cfg, matrix, world.info.gateway_url, value, controls, progress=progress)
    result["target"] = cfg.target.name
    return redactor.data(result), redactor


def run_lane(base: HarnessConfig, cfg_path: Path, matrix: Matrix, out: Path, omit: tuple[str, ...] = (),
             progress: bool = True) -> int:
    from harness.smoke.report import write_outputs
    out.mkdir(parents=True, exist_ok=True)
    result, _ = measure(base, cfg_path, matrix, out, omit, progress)
    write_outputs(result, out)
    counts = summary(result)
    print("harness smoke: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"harness smoke: {out / 'smoke.md'}, {out / 'smoke.html'}, {out / 'smoke.json'}, {out / 'junit.xml'}")
    return 1 if counts.get("FAIL") or counts.get("ERROR") else 0
