"""`harness load`: one profile through the gateway and straight at the mock provider, in one run.

Reports per metric and percentile the gateway's figure, the direct figure, their difference and
ratio (the gateway's overhead); flags stream buffering (tokens held back: TTFT close to the whole
stream while the provider streams steadily); and turns the gates of harness.yaml into verdicts.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, resolve_key
from harness.load.metrics import PERCENTILES
from harness.load.run import Profile, run
from harness.secrets import Redactor
from harness.world.world import World

COLUMNS = [f"p{p:g}" for p in PERCENTILES] + ["max"]


def overhead(gw: dict[str, Any], direct: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for metric, row in gw["table"].items():
        base = direct["table"].get(metric)
        if not base:
            continue
        out[metric] = {c: {"gateway_ms": row[c], "direct_ms": base[c], "added_ms": round(row[c] - base[c], 3),
                           "ratio": round(row[c] / base[c], 3) if base[c] else float("inf")} for c in COLUMNS}
    return out


def buffering(gw: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """Tokens held back: through the gateway the first token comes near the end of the stream,
    while straight from the provider it comes early. Totals can look fine while this happens."""
    t, d = gw["table"], direct["table"]
    if "ttft" not in t or "e2e" not in t or "ttft" not in d or "e2e" not in d:
        return {"status": "UNSUPPORTED", "reason": "not a streaming profile"}
    share_gw = t["ttft"]["p50"] / t["e2e"]["p50"]
    share_direct = d["ttft"]["p50"] / d["e2e"]["p50"]
    evidence = {"ttft_share_of_stream_gateway": round(share_gw, 3), "ttft_share_of_stream_direct": round(share_direct, 3)}
    if share_gw > 0.8 and share_direct < 0.5:
        return {"status": "FAIL", "reason": f"the gateway holds tokens back: first token at {share_gw:.0%} of the "
                                            f"stream's time, {share_direct:.0%} straight from the provider", **evidence}
    if "itl" in t and "itl" in d and d["itl"]["p50"] > 2:
        evidence["itl_p50_gateway_ms"], evidence["itl_p50_direct_ms"] = t["itl"]["p50"], d["itl"]["p50"]
        if t["itl"]["p50"] < 0.25 * d["itl"]["p50"]:
            return {"status": "FAIL", "reason": f"chunks arrive together: median gap between tokens {t['itl']['p50']:.2f} ms "
                                                f"through the gateway, {d['itl']['p50']:.2f} ms as the provider sends them",
                    **evidence}
    return {"status": "PASS", "reason": f"tokens flow as they come: first token at {share_gw:.0%} of the stream "
                                        f"({share_direct:.0%} direct)", **evidence}


def gates(cfg: HarnessConfig, gw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    requests = max(1, gw["counts"].get("requests", 0))
    errors = sum(v for k, v in gw["counts"].items() if k.startswith("error:"))
    for g in cfg.gates:
        if g.metric == "error_rate":
            rate = errors / requests
            ok = rate <= (g.max_rate or 0)
            out.append({"gate": f"error rate <= {g.max_rate:.2%}", "value": round(rate, 4), "status": "PASS" if ok else "FAIL"})
            continue
        row = gw["table"].get(g.metric)
        key = f"p{g.percentile:g}"
        if row is None or key not in row:
            out.append({"gate": f"{g.metric} {key} <= {g.max_ms} ms", "value": None, "status": "UNSUPPORTED"})
            continue
        ok = row[key] <= (g.max_ms or 0)
        out.append({"gate": f"{g.metric} {key} <= {g.max_ms} ms", "value": row[key], "status": "PASS" if ok else "FAIL"})
    return out


def run_lane(cfg: HarnessConfig, cfg_path: Path, profile: Profile, out: Path, workers: int = 0,
             direct: bool = True, progress: bool = True) -> int:
    key = resolve_key(cfg.target.auth, str(cfg_path))
    redactor = Redactor([key] if key else [])
    model = cfg.default_model("openai")
    if model is None:
        raise SystemExit("harness: error: the load lane needs a model routed to an OpenAI-style provider")
    out.mkdir(parents=True, exist_ok=True)
    auth = cfg.target.auth
    value = (f"{auth.scheme} {key}" if auth.scheme else key) if key else None
    print(f"harness load: profile {profile.name}: {profile.users} {profile.user} users for {profile.duration_s:g}s", flush=True)
    with World(cfg, cfg_path, key, redactor, log_dir=out / "logs") as world:
        assert world.info is not None
        mc = cfg.model(model)
        prov_url = world.info.providers[mc.provider]["control_url"]
        from harness.client.control import ProviderControl
        prov = ProviderControl(mc.provider, prov_url)
        prov.script(tokens=profile.tokens, token_delay_ms=profile.token_delay_ms)   # the provider's pace, for both runs
        print(f"harness load: through the gateway {world.info.gateway_url} ...", flush=True)
        paths = {"openai_chat": cfg.target.paths.chat, "anthropic_messages": cfg.target.paths.messages,
                 "openai_responses": cfg.target.paths.responses}
        if profile.protocol == "anthropic_messages":
            model = cfg.default_model("anthropic") or model
            mc = cfg.model(model)
            prov_url = world.info.providers[mc.provider]["control_url"]
            prov.close()
            prov = ProviderControl(mc.provider, prov_url)
            prov.script(tokens=profile.tokens, token_delay_ms=profile.token_delay_ms)
        gw = run(profile, world.info.gateway_url, paths[profile.protocol], model, value, workers, auth.header, progress)
        result: dict[str, Any] = {"profile": profile.model_dump(), "gateway": gw}
        if direct:
            print(f"harness load: straight at the provider {prov_url} ...", flush=True)
            direct_path = {"openai_chat": "/v1/chat/completions", "anthropic_messages": "/v1/messages",
                           "openai_responses": "/v1/responses"}[profile.protocol]
            d = run(profile, prov_url, direct_path, mc.upstream, None, workers, progress=progress)
            result["direct"] = d
            result["overhead"] = overhead(gw, d)
            result["buffering"] = buffering(gw, d)
        result["gates"] = gates(cfg, gw)
        prov.close()
    (out / "load.json").write_text(redactor.text(json.dumps(result, indent=1)))
    with open(out / "load.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "metric", "count"] + COLUMNS + ["mean"])
        for name in ("gateway", "direct"):
            for metric, row in (result.get(name) or {}).get("table", {}).items():
                w.writerow([name, metric, row["count"]] + [row[c] for c in COLUMNS] + [round(row["mean"], 3)])
    write_html(result, out / "load.html")
    print_summary(result)
    failed = [g for g in result["gates"] if g["status"] == "FAIL"] + (
        [result["buffering"]] if result.get("buffering", {}).get("status") == "FAIL" else [])
    print(f"harness load: {out / 'load.html'}, {out / 'load.json'}, {out / 'load.csv'}")
    return 1 if failed else 0


def write_html(result: dict[str, Any], path: Path) -> None:
    from harness.report.build import _env
    from harness.report.load_plot import svg
    runs = {n: result.get(n) for n in ("gateway", "direct")}
    plot = svg({n: (r or {}).get("hdr", {}).get("samples", []) for n, r in runs.items()})
    path.write_text(_env.get_template("load.html.j2").render(
        profile=result["profile"], runs=runs, columns=COLUMNS, overhead=result.get("overhead"),
        buffering=result.get("buffering"), gates=result["gates"], plot=plot))


def print_summary(result: dict[str, Any]) -> None:
    gw = result["gateway"]
    print(f"\nrequests {gw['counts'].get('requests', 0)}, errors "
          f"{sum(v for k, v in gw['counts'].items() if k.startswith('error:'))}, "
          f"locust rps {gw['locust']['rps']:.1f}")
    print(f"{'metric':<8} {'run':<8} {'count':>7} " + " ".join(f"{c:>9}" for c in COLUMNS))
    for metric in gw["table"]:
        for name in ("gateway", "direct"):
            row = (result.get(name) or {}).get("table", {}).get(metric)
            if row:
                print(f"{metric:<8} {name:<8} {row['count']:>7} " + " ".join(f"{row[c]:>9.2f}" for c in COLUMNS))
        ov = result.get("overhead", {}).get(metric)
        if ov:
            print(f"{'':<8} {'ratio':<8} {'':>7} " + " ".join(f"{ov[c]['ratio']:>9.2f}" for c in COLUMNS))
    if "buffering" in result:
        print(f"stream buffering: {result['buffering']['status']}: {result['buffering']['reason']}")
    for g in result["gates"]:
        print(f"gate {g['status']:<11} {g['gate']} (measured {g['value']})")
