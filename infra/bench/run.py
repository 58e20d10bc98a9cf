"""Runs the Runtime API measurements of scripts/bench and gathers every result into one JSON
file (the in-process Rust measurements and criterion's estimates are read from files).

Called by scripts/bench, which has built the binaries, started moto (AWS_* exported) and
seeded the demo tenant. Python standard library only.
"""

import argparse
import datetime
import glob
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_api as rt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FUNCTIONS = ["booking", "crm", "support", "agent-builder", "admin", "authorizer", "mcp"]


def load_event(name):
    with open(os.path.join(ROOT, "events", name)) as f:
        return json.load(f)


def plugin_event(plugin, function, parameters, scopes="plugins:call agents:read"):
    """A POST /plugins/<plugin> event, from events/booking-create-appointment.json."""
    e = load_event("booking-create-appointment.json")
    e["routeKey"] = e["requestContext"]["routeKey"] = f"POST /plugins/{plugin}"
    e["rawPath"] = e["requestContext"]["http"]["path"] = f"/plugins/{plugin}"
    e["pathParameters"] = {"plugin": plugin}
    e["requestContext"]["authorizer"]["lambda"]["scopes"] = scopes
    e["body"] = json.dumps({"function": function, "parameters": parameters,
                            "sessionId": "bench-call"})
    return e


def admin_event():
    """GET /admin/instances/booking (a read) for the demo org, with the authorizer context of
    events/admin-list-plugins.json: an unbound admin:read key (a channel-bound key has no
    admin API)."""
    e = plugin_event("booking", "x", {}, scopes="admin:read")
    e["requestContext"]["authorizer"] = load_event("admin-list-plugins.json")["requestContext"]["authorizer"]
    e["routeKey"] = e["requestContext"]["routeKey"] = "ANY /admin/{proxy+}"
    e["rawPath"] = e["requestContext"]["http"]["path"] = "/admin/instances/booking"
    e["requestContext"]["http"]["method"] = "GET"
    e["pathParameters"] = {"proxy": "instances/booking"}
    e.pop("body", None)
    return e


def mcp_event():
    """POST /mcp/twilio tools/list, from events/mcp-tools-call.json (a twilio-bound key)."""
    e = load_event("mcp-tools-call.json")
    e["headers"].pop("idempotency-key", None)
    e["body"] = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    return e


def authorizer_event(api_key):
    e = load_event("authorizer-valid-key.json")
    e["identitySource"] = [f"Bearer {api_key}"]
    e["headers"]["authorization"] = f"Bearer {api_key}"
    return e


# The read-only call each function answers, first (cold) and warm.
WARM_CALL = {
    "booking": "POST /plugins/booking GetProviders {}",
    "crm": 'POST /plugins/crm GetLeadsByStatus {"status": "new"}',
    "support": 'POST /plugins/support ListTickets {"status": "open"}',
    "agent-builder": "GET /agents/twilio?format=openai",
    "admin": "GET /admin/instances/booking",
    "authorizer": "authorizer request with the seeded demo key (Bearer)",
    "mcp": "POST /mcp/twilio tools/list",
}


def events(api_key):
    return {
        "booking": plugin_event("booking", "GetProviders", {}),
        "crm": plugin_event("crm", "GetLeadsByStatus", {"status": "new"}),
        "support": plugin_event("support", "ListTickets", {"status": "open"}),
        "agent-builder": load_event("agent-builder-twilio-openai.json"),
        "admin": admin_event(),
        "authorizer": authorizer_event(api_key),
        "mcp": mcp_event(),
    }


def pct(values, p):
    s = sorted(values)
    if not s:
        return None
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def summary(values):
    return {"n": len(values), "min": min(values), "p50": pct(values, 50), "median": statistics.median(values),
            "p95": pct(values, 95), "p99": pct(values, 99), "max": max(values),
            "mean": statistics.fmean(values)}


def moto_requests(log_path):
    """DynamoDB requests moto has answered so far (one access-log line each)."""
    try:
        with open(log_path, errors="replace") as f:
            return sum(1 for line in f if "POST / HTTP/1.1" in line)
    except OSError:
        return 0


def measure(name, cmd, first, check, args, env=None, cwd=None):
    """`args.cold` cold starts, then one session of a cold start plus `args.warm` warm calls,
    counting the DynamoDB requests moto logs during the warm calls."""
    log = os.path.join(args.logs, f"{name}.log")
    cold = [rt.run_session(cmd, name, first, env=env, check=check, log_path=log, cwd=cwd)
            for _ in range(args.cold)]
    counts = {}

    def settle_and_count(key):
        time.sleep(0.2)  # moto writes its access-log line after its response
        counts[key] = moto_requests(args.moto_log)

    counts["spawn"] = moto_requests(args.moto_log)
    warm = rt.run_session(cmd, name, first, first, args.warm, env=env, check=check,
                          log_path=log, cwd=cwd, on_first=lambda: settle_and_count("first"))
    settle_and_count("end")
    return {
        "cold_start_ms": summary([r["cold_start_ms"] for r in cold]),
        "init_ms": summary([r["init_ms"] for r in cold]),
        "first_invoke_ms": summary([r["first_invoke_ms"] for r in cold]),
        "warm_us": summary(warm["warm_us"]),
        "warm_calls": args.warm,
        "peak_rss_kb": warm.get("vmhwm_kb"),
        "rss_at_end_kb": warm.get("vmrss_kb"),
        "cold_session_requests": counts["first"] - counts["spawn"],
        "warm_requests_per_call": (counts["end"] - counts["first"]) / args.warm,
    }


def zipped_sizes(bin_dir):
    """Each binary zipped as `bootstrap` (deflate, level 9), as a Lambda deployment package."""
    out = {}
    for f in FUNCTIONS:
        path = os.path.join(bin_dir, f)
        if not os.path.exists(path):
            out[f] = None
            continue
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(path, "bootstrap")
        out[f] = buf.tell()
    return out


def binary_sizes(bin_dir):
    out = {}
    for f in FUNCTIONS:
        path = os.path.join(bin_dir, f)
        out[f] = os.path.getsize(path) if os.path.exists(path) else None
    return out


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(base, name))
            except OSError:
                pass
    return total


def criterion(target):
    """criterion's estimates, by benchmark id (`pipeline/warm_call_overhead`, …)."""
    out = {}
    for path in glob.glob(os.path.join(target, "criterion", "**", "new", "estimates.json"),
                          recursive=True):
        new = os.path.dirname(path)
        try:
            with open(os.path.join(new, "benchmark.json")) as f:
                bench = json.load(f)["full_id"]
        except (OSError, ValueError, KeyError):
            bench = os.path.relpath(os.path.dirname(new), os.path.join(target, "criterion"))
        with open(path) as f:
            est = json.load(f)
        out[bench] = {k: {"point_ns": est[k]["point_estimate"],
                          "ci_low_ns": est[k]["confidence_interval"]["lower_bound"],
                          "ci_high_ns": est[k]["confidence_interval"]["upper_bound"]}
                      for k in ("mean", "median") if k in est}
        sample = os.path.join(new, "sample.json")
        if os.path.exists(sample):
            with open(sample) as f:
                s = json.load(f)
            per_iter = [t / n for t, n in zip(s["times"], s["iters"])]
            out[bench]["per_sample_ns"] = {"p50": pct(per_iter, 50), "p99": pct(per_iter, 99),
                                           "max": max(per_iter), "samples": len(per_iter)}
    return out


def sections(path):
    """The biggest ELF sections of a binary (`size -A`), in bytes."""
    try:
        text = subprocess.run(["size", "-A", path], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:6])


def bloat(path):
    """`cargo bloat --crates --message-format json` output, if scripts/bench ran it."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return None
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_mib": mem, "kernel": platform.release(),
            "loadavg_1m": load,
            "rustc": version(["rustc", "--version"]), "node": version(["node", "--version"]),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--target", required=True, help="CARGO_TARGET_DIR (criterion output)")
    p.add_argument("--node-dir", required=True)
    p.add_argument("--python", required=True, help="python with boto3 and jsonschema")
    p.add_argument("--seed", required=True)
    p.add_argument("--agent-build", required=True)
    p.add_argument("--warm-calls", required=True)
    p.add_argument("--idempotency", required=True)
    p.add_argument("--mcp", required=True)
    p.add_argument("--audit")
    p.add_argument("--ratelimit")
    p.add_argument("--node-validate")
    p.add_argument("--overhead")
    p.add_argument("--bloat", action="append", default=[],
                   help="FUNCTION=PATH of `cargo bloat --crates` JSON for that function")
    p.add_argument("--variant", action="append", default=[],
                   help="NAME=DIR: booking built another way (e.g. another opt-level), measured "
                        "like the others and reported side by side")
    p.add_argument("--moto-log", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--cold", type=int, default=20)
    p.add_argument("--warm", type=int, default=1000)
    p.add_argument("--command", default="scripts/bench")
    p.add_argument("--opt-level", default="?", help="the release profile's opt-level")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.logs, exist_ok=True)

    with open(args.seed) as f:
        seed = json.load(f)
    evs = {k: json.dumps(v).encode() for k, v in events(seed["api_key"]).items()}
    manifest = os.path.join(ROOT, "functions", "booking", "manifest.json")
    results = {"machine": machine(), "command": args.command, "cold_spawns": args.cold,
               "warm_calls": args.warm, "calls": WARM_CALL, "functions": {}, "baselines": {}}

    for name in FUNCTIONS:
        check = {"authorizer": rt.expect_authorized,
                 "mcp": rt.expect_jsonrpc_result}.get(name, rt.expect_http_200)
        cmd = [os.path.join(args.bin_dir, name)]
        print(f"==> {name}: {args.cold} cold starts, then {args.warm} warm calls", flush=True)
        results["functions"][name] = measure(name, cmd, evs[name], check, args)

    baseline_env = {"BENCH_BOOKING_MANIFEST": manifest}
    baselines = {
        "node": ["node", os.path.join(args.node_dir, "runtime.mjs")],
        "node_bundled": ["node", os.path.join(args.node_dir, "runtime.bundle.mjs")],
        "python": [args.python, os.path.join(ROOT, "infra", "bench", "python", "runtime.py")],
    }
    for name, cmd in baselines.items():
        print(f"==> {name} baseline: {args.cold} cold starts, then {args.warm} warm calls",
              flush=True)
        results["baselines"][name] = measure(
            f"baseline-{name}", cmd, evs["booking"], rt.expect_http_200, args,
            env=baseline_env, cwd=args.node_dir if name.startswith("node") else None)

    results["binary_bytes"] = binary_sizes(args.bin_dir)
    results["criterion"] = criterion(args.target)
    results["zipped_bytes"] = zipped_sizes(args.bin_dir)
    results["sections"] = {f: sections(os.path.join(args.bin_dir, f)) for f in FUNCTIONS}
    results["bloat"] = {}
    for spec in args.bloat:
        function, path = spec.split("=", 1)
        results["bloat"][function] = bloat(path)
    results["variants"] = {}
    for spec in args.variant:
        name, bin_dir = spec.rsplit("=", 1)
        path = os.path.join(bin_dir, "booking")
        print(f"==> booking ({name}): {args.cold} cold starts, then {args.warm} warm calls",
              flush=True)
        v = measure(f"booking-{name}", [path], evs["booking"], rt.expect_http_200, args)
        v["binary_bytes"] = os.path.getsize(path)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(path, "bootstrap")
        v["zipped_bytes"] = buf.tell()
        results["variants"][name] = v
    results["opt_level"] = args.opt_level
    results["node_modules_bytes"] = dir_bytes(os.path.join(args.node_dir, "node_modules"))
    for key, path in (("agent_build_moto", args.agent_build), ("warm_calls_moto", args.warm_calls),
                      ("node_validate", args.node_validate), ("overhead", args.overhead),
                      ("idempotency_moto", args.idempotency), ("audit_moto", args.audit),
                      ("ratelimit_moto", args.ratelimit), ("mcp", args.mcp)):
        if path and os.path.exists(path):
            with open(path) as f:
                results[key] = json.load(f)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"==> wrote {args.out}")


def merge_history(results_path, paths):
    """Adds `bench_moto history <store>` outputs to results.json (measured after the rest)."""
    with open(results_path) as f:
        results = json.load(f)
    results["history"] = []
    for path in paths:
        with open(path) as f:
            results["history"].append(json.load(f))
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"==> added the history sizes to {results_path}")


def merge_runs(out_path, paths):
    """One rate-limit section from several runs of it: the last run's figures, and every
    run's p99 ratio under the flood (its tail moves from run to run)."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    section = runs[-1]
    section["neighbour"]["p99_ratio_runs"] = [r["neighbour"]["p99_ratio"] for r in runs]
    with open(out_path, "w") as f:
        json.dump(section, f, indent=2)


def merge_section(results_path, key, path, command):
    """Replaces one section of results.json with a rerun of it alone (`BENCH_ONLY`), noting
    the command and date it came from, since the rest of the report is another run's."""
    with open(results_path) as f:
        results = json.load(f)
    with open(path) as f:
        section = json.load(f)
    section["rerun"] = {"command": command,
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    results[key] = section
    with open(results_path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"==> replaced {key} in {results_path}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--merge-history":
        merge_history(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 6 and sys.argv[1] == "--merge-section":
        merge_section(*sys.argv[2:])
    elif len(sys.argv) > 3 and sys.argv[1] == "--merge-runs":
        merge_runs(sys.argv[2], sys.argv[3:])
    else:
        main()
