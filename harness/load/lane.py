"""`harness load`: one profile through the gateway and straight at the mock provider, in one run.

Reports per metric and percentile the gateway's figure, the direct figure, their difference and
ratio (the gateway's overhead); flags stream buffering (tokens held back: TTFT close to the whole
stream while the provider streams steadily); and turns the gates of harness.yaml into verdicts.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Optional

from harness.config import ConfigError, HarnessConfig, resolve_key
from harness.load import floor as load_floor
from harness.load.hops import added as added_per_hop
from harness.load.hops import HOPS, attribute, journal_mark, journal_timings
from harness.load.metrics import PERCENTILES
from harness.load.outcome import tally
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
    if "ttft" in d and not t:   # a streaming profile, and nothing at all measured through the gateway
        return {"status": "FAIL", "reason": f"no stream completed through the gateway ({_what_happened(gw)}), "
                                            f"while {d['ttft']['count']} did straight from the provider"}
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


def _what_happened(run: dict[str, Any]) -> str:
    counts = run.get("counts") or {}
    t = tally(counts)
    kinds = {k[6:]: v for k, v in counts.items() if k.startswith("error:")}
    return (f"{t['attempted']} sent: {t['completed']} completed, {t['errors']} failed"
            + (f" {kinds}" if kinds else "") + f", {t['unfinished']} never finished")


def _incomplete_fans(run: dict[str, Any]) -> str:
    """Why a fan gate fails when some fans had streams that never finished: a fan is as slow as its
    slowest stream, so without it there is no time for that fan, and leaving it out flatters."""
    c = run["counts"]
    streams, finished = c.get("fan_streams", 0), c.get("fan_streams_finished", 0)
    return (f"{streams - finished} of {streams} streams never finished (failed, cut or still running when "
            f"the fan gave up), in {c['fans_incomplete']} of {c.get('fans', 0)} fans; only complete fans are timed")


def gates(cfg: HarnessConfig, gw: dict[str, Any], profile: Optional[str] = None,
          floor: Optional[dict[str, Any]] = None, share: float = load_floor.DEFAULT_SHARE) -> list[dict[str, Any]]:
    """The gates of harness.yaml that apply to this profile, each with its verdict. A request that
    never finished (a hanging gateway) counts as an error; with nothing completed, no percentile
    can pass. With the run's measured `floor`, a time gate whose bound the floor takes more than
    `share` of is not judged (harness.load.floor)."""
    out = []
    t = tally(gw["counts"])
    rps = (gw.get("locust") or {}).get("rps") or 0.0
    for i, g in enumerate(cfg.gates, 1):
        if g.profile and profile is not None and g.profile != profile:
            continue
        gid = g.id or f"CM-21.{i + 1}"   # CM-21.1 is stream buffering
        at = f" at >= {g.min_rps:g} rps" if g.min_rps else ""
        if g.metric == "error_rate":
            value: Optional[float] = round((t["errors"] + t["unfinished"]) / max(1, t["attempted"]), 4)
            name = f"error rate <= {g.max_rate:.2%}{at}"
            ok = value <= (g.max_rate or 0) and t["attempted"] > 0
        else:
            key = f"p{g.percentile:g}"
            name = f"{g.metric} {key} <= {g.max_ms} ms{at}"
            row = gw["table"].get(g.metric)
            if t["completed"] == 0:
                out.append({"id": gid, "gate": name, "value": None, "status": "FAIL",
                            "reason": f"nothing completed through the gateway ({_what_happened(gw)})"})
                continue
            if g.metric == "fan" and gw["counts"].get("fans_incomplete"):
                out.append({"id": gid, "gate": name, "value": None, "status": "FAIL", "reason": _incomplete_fans(gw)})
                continue
            if row is None or key not in row:
                out.append({"id": gid, "gate": name, "value": None, "status": "UNSUPPORTED",
                            "reason": f"the profile measured no {g.metric}"})
                continue
            value = row[key]
            ok = value <= (g.max_ms or 0)
        reason = f"measured {value}" + (f" at {rps:.1f} rps" if rps else "")
        if g.metric == "error_rate":
            reason += f" ({_what_happened(gw)})"
        if g.min_rps and rps < g.min_rps:
            ok, reason = False, f"{reason}: the run reached {rps:.1f} rps, short of {g.min_rps:g}; the bound was not shown at that rate"
        verdict = {"id": gid, "gate": name, "value": value, "rps": round(rps, 2), "status": "PASS" if ok else "FAIL",
                   "reason": reason}
        if g.metric != "error_rate":
            verdict = load_floor.judge(verdict, g.metric, g.percentile, g.max_ms, floor, share)
        out.append(verdict)
    return out


GATEWAY_PATHS = {"openai_chat": "chat", "anthropic_messages": "messages", "openai_responses": "responses",
                 "openai_realtime": "realtime"}
PROVIDER_PATHS = {"openai_chat": "/v1/chat/completions", "anthropic_messages": "/v1/messages",
                  "openai_responses": "/v1/responses", "openai_realtime": "/v1/realtime"}


def measure(cfg: HarnessConfig, world: World, profile: Profile, value: Optional[str], workers: int = 0,
            direct: bool = True, progress: bool = True) -> dict[str, Any]:
    """The profile through the gateway, then (unless `direct` is off) straight at the mock provider
    that serves the model, both with the provider scripted to the profile's pace."""
    from harness.client.control import ProviderControl
    assert world.info is not None
    family = "anthropic" if profile.protocol == "anthropic_messages" else "openai"
    model = cfg.default_model(family) or cfg.default_model("openai")
    if model is None:
        raise ConfigError("the load lane needs a model routed to an OpenAI-style provider (models:)")
    mc = cfg.model(model)
    prov_url = world.info.providers[mc.provider]["control_url"]
    with ProviderControl(mc.provider, prov_url) as prov:
        prov.clear_script()
        prov.script(tokens=profile.tokens, token_delay_ms=profile.token_delay_ms)   # the provider's pace, for both runs
        if progress:
            print(f"harness load: {profile.name} through the gateway {world.info.gateway_url} ...", flush=True)
        from harness.world.routes import Routes
        routes = Routes(cfg, world.info.providers)
        gw_path = routes.path(GATEWAY_PATHS[profile.protocol], model)
        mark = journal_mark(prov_url)
        gw = run(profile, world.info.gateway_url, gw_path, model, value, workers, cfg.target.auth.header or "Authorization",
                 progress, headers={**routes.target_headers(), **routes.model_headers(model)})
        hops = {"gateway": _hops(gw, prov_url, mark)}
        result: dict[str, Any] = {"profile": profile.model_dump(), "gateway": gw, "tpot_tokens": tpot_tokens(gw)}
        if direct:
            if progress:
                print(f"harness load: {profile.name} straight at the provider {prov_url} ...", flush=True)
            mark = journal_mark(prov_url)
            d = run(profile, prov_url, PROVIDER_PATHS[profile.protocol], mc.upstream, None, workers, progress=progress)
            hops["direct"] = _hops(d, prov_url, mark)
            result["direct"] = d
            result["overhead"] = overhead(gw, d)
            result["buffering"] = buffering(gw, d)
        result["hops"] = {**hops, "added": added_per_hop(hops["gateway"], hops.get("direct"), COLUMNS)}
        result["floor"] = load_floor.measure(gw, result.get("direct"), load_floor.script_times(
            profile.tokens, profile.token_delay_ms))
        result["floor"]["share"] = profile.floor_share
        prov.clear_script()   # later claims must not inherit the load pace
    result["gates"] = gates(cfg, gw, profile.name, result["floor"], profile.floor_share)
    return result


def _hops(run_result: dict[str, Any], prov_url: str, mark: int) -> dict[str, Any]:
    """The run's requests joined with the provider's journal (harness.load.hops); the stamps are
    dropped from the result afterwards (tens of thousands of them: load.json stays small)."""
    stamps = run_result.get("hdr", {}).pop("stamps", [])
    if not stamps:
        return {"table": {}, "matched": 0, "unmatched": 0, "impossible": 0}
    return attribute(stamps, journal_timings(prov_url, mark))


def tpot_tokens(run_result: dict[str, Any]) -> str:
    """Which token count the TPOT figures rest on (both are in the tables: tpot, tpot_chunks)."""
    c = run_result.get("counts", {})
    usage, chunks = c.get("tpot_from_usage", 0), c.get("tpot_from_chunks", 0)
    if not usage and not chunks:
        return "no stream had two tokens or more: no TPOT"
    if not chunks:
        return f"tpot counts output tokens from the usage the gateway returned (all {usage} streams); tpot_chunks counts content chunks"
    if not usage:
        return f"the gateway returned no usage: tpot counts content chunks ({chunks} streams)"
    return f"tpot counts usage tokens in {usage} streams and content chunks in {chunks} that lacked usage"


def failed(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in result["gates"] if g["status"] == "FAIL"] + (
        [result["buffering"]] if result.get("buffering", {}).get("status") == "FAIL" else [])


def write_outputs(result: dict[str, Any], out: Path, redactor: Redactor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(redactor.text(json.dumps(result, indent=1)))
    with open(out / "load.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "metric", "count"] + COLUMNS + ["mean"])
        for name in ("gateway", "direct"):
            for metric, row in (result.get(name) or {}).get("table", {}).items():
                w.writerow([name, metric, row["count"]] + [row[c] for c in COLUMNS] + [round(row["mean"], 3)])
    write_html(result, out / "load.html")


def run_lane(cfg: HarnessConfig, cfg_path: Path, profile: Profile, out: Path, workers: int = 0,
             direct: bool = True, progress: bool = True) -> int:
    key = resolve_key(cfg.target.auth, str(cfg_path))
    redactor = Redactor([key] if key else [])
    out.mkdir(parents=True, exist_ok=True)
    print(f"harness load: profile {profile.name}: {profile.users} {profile.user} users for {profile.duration_s:g}s", flush=True)
    with World(cfg, cfg_path, key, redactor, log_dir=out / "logs") as world:
        result = measure(cfg, world, profile, auth_value(cfg, key), workers, direct, progress)
    write_outputs(result, out, redactor)
    print_summary(result)
    print(f"harness load: {out / 'load.html'}, {out / 'load.json'}, {out / 'load.csv'}")
    return 1 if failed(result) else 0


def for_report(result: dict[str, Any], files: list[str]) -> dict[str, Any]:
    """What the main report keeps of a load run: the tables and per-second TTFT points, not the
    raw samples and histograms (those stay in load.json)."""
    from harness.report.load_plot import per_second
    runs = {n: {"counts": result[n]["counts"], "table": result[n]["table"], "locust": result[n]["locust"]}
            for n in ("gateway", "direct") if result.get(n)}
    return {"profile": result["profile"], "runs": runs, "columns": COLUMNS, "overhead": result.get("overhead"),
            "buffering": result.get("buffering"), "gates": result["gates"], "tpot_tokens": result.get("tpot_tokens"),
            "hops": result.get("hops"), "floor": result.get("floor"),
            "floor_text": floor_text(result["floor"]) if result.get("floor") else None,
            "per_second": {n: per_second(result[n]["hdr"].get("samples", [])) for n in runs}, "files": files}


def auth_value(cfg: HarnessConfig, key: Optional[str]) -> Optional[str]:
    return cfg.target.auth.value(key)


def write_html(result: dict[str, Any], path: Path) -> None:
    from harness.report.env import env as _env
    from harness.report.load_plot import svg
    runs = {n: result.get(n) for n in ("gateway", "direct")}
    plot = svg({n: (r or {}).get("hdr", {}).get("samples", []) for n, r in runs.items()})
    path.write_text(_env.get_template("load.html.j2").render(
        profile=result["profile"], runs=runs, columns=COLUMNS, overhead=result.get("overhead"),
        buffering=result.get("buffering"), gates=result["gates"], plot=plot,
        tpot_tokens=result.get("tpot_tokens"), hops=result.get("hops"),
        floor_text=floor_text(result["floor"]) if result.get("floor") else None,
        floor_share=(result.get("floor") or {}).get("share")))


def print_summary(result: dict[str, Any]) -> None:
    gw = result["gateway"]
    counts = gw["counts"]
    t = tally(counts)
    print(f"\nrequests {t['attempted']}: completed {t['completed']}, errors {t['errors']}, never finished "
          f"{t['unfinished']} (counted as errors, in no figure); locust rps {gw['locust']['rps']:.1f}")
    print(f"{'metric':<22} {'run':<8} {'count':>7} " + " ".join(f"{c:>9}" for c in COLUMNS))
    for metric in gw["table"]:
        for name in ("gateway", "direct"):
            row = (result.get(name) or {}).get("table", {}).get(metric)
            if row:
                print(f"{metric:<22} {name:<8} {row['count']:>7} " + " ".join(f"{row[c]:>9.2f}" for c in COLUMNS))
        ov = result.get("overhead", {}).get(metric)
        if ov:
            print(f"{'':<22} {'ratio':<8} {'':>7} " + " ".join(f"{ov[c]['ratio']:>9.2f}" for c in COLUMNS))
    print(f"time per output token: {result.get('tpot_tokens', '')}")
    hops = result.get("hops") or {}
    for name in ("gateway", "direct"):
        h = hops.get(name) or {}
        for hop in HOPS:
            row = h.get("table", {}).get(hop)
            if row:
                print(f"{'hop ' + hop:<22} {name:<8} {row['count']:>7} " + " ".join(f"{row[c]:>9.2f}" for c in COLUMNS))
    if "buffering" in result:
        print(f"stream buffering: {result['buffering']['status']}: {result['buffering']['reason']}")
    fl = result.get("floor") or {}
    if fl:
        print(f"generator floor: {floor_text(fl)}")
    for g in result["gates"]:
        print(f"gate {g['status']:<11} {g['gate']} (measured {g['value']})"
              + (f": {g['reason']}" if g["status"] == "ERROR" else ""))


def floor_text(fl: dict[str, Any]) -> str:
    """One line: the generator's lag, send lag, CPU and the direct run's deviation from the script."""
    parts = []
    for name, label in (("gen_lag", "event-loop lag"), ("send_lag", "send lag")):
        row = fl.get(name)
        if row:
            parts.append(f"{label} p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms")
    if fl.get("cpu_share") is not None:
        parts.append(f"CPU {fl['cpu_share']:.0%} of a core per generator process")
    dev = (fl.get("direct_deviation") or {}).get("ttft")
    if dev:
        parts.append(f"direct TTFT above the script by p50 {dev['p50']:.1f} ms, p99 {dev['p99']:.1f} ms")
    return "; ".join(parts) or "not measured"
