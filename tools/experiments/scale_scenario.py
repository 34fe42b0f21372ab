#!/usr/bin/env python3
"""scale_scenario.py USHER_BIN ZOO_DIR OUT_DIR [--gpus 1000,2000,...] [--per-gpu R]
                     [--models-per-gpu K] [--duration S] [--seed N]
                     [--policies usher,shepherd,...] [--inputs-only] [--bound BENCH_SIM_BOUND]

The paper's experiment (c): goodput on fixed clusters of 1,000 to 6,000 GPUs
(docs/simulator.md, "Experiments"). Per cluster size N it writes, under
OUT_DIR/N/,

  workload.yaml  M = max(20, N x K) models (K = --models-per-gpu, default 0.1: the
                 100 models per 1,000 GPUs of bench_sim's hour), the zoo's 20
                 models dealt round-robin (copy c of resnet50 is
                 'resnet50-c', the same ONNX file), a total rate of
                 N x R req/s (R = --per-gpu, default 2,667: experiment (a)'s
                 64k req/s over its 24 V100s) split by a Zipf(0.9) law over
                 the M models by rank, rank r going to copy r div 20 of
                 the zoo model of rank r mod 20 in experiments (a)'s and
                 (b)'s order (elastic_scenario.py's LCG, seed 2024,
                 Fisher-Yates; with M = 20 this is (a)'s workload, and
                 every size has the same mix of zoo models), SLO = 5 x the
                 model's batch-1 latency on the V100-16GB (usher estimate),
                 as in experiments (a) and (b)
  cluster.yaml   N V100-16GB, objective max-goodput (experiment (a)'s cluster
                 scaled)

(with --bound, bench/bench_sim_bound's upper bound on the goodput any plan
of the planner's configurations can promise there), and then, per policy,
plans it (`usher plan --policy P`) and simulates the plan (`usher simulate
--json`, Poisson arrivals, --duration seconds, --seed), each under
/usr/bin/time -v, and records the planner's and the simulator's wall time,
CPU time and peak RSS. Every policy's simulation sees the same arrivals (the
arrivals depend on the workload and the seed only). Writes OUT_DIR/results.json
(one row per size and policy) and prints the Markdown table of
docs/simulator.md. Everything is seeded: the same arguments give the same
plans and reports (the wall times and RSS are measurements).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ZOO = ["alexnet", "bert-base", "bert-large", "densenet121", "densenet169",
       "distilbert", "efficientnet-b0", "gpt2", "inception-v3", "mobilenet-v2",
       "mobilenet-v3-large", "resnet101", "resnet152", "resnet18", "resnet50",
       "shufflenet-v2", "squeezenet", "vgg16", "vgg19", "vit-b16"]
M64 = (1 << 64) - 1


def zoo_order(seed=2024):
    """the zoo's 20 models in experiment (a)'s and (b)'s popularity order
    (elastic_scenario.py: bench_plan's LCG, seed 2024, Fisher-Yates): the
    model of popularity rank r (from 0) is ZOO[order[r]]"""
    st = seed

    def urand():
        nonlocal st
        st = (st * 6364136223846793005 + 1442695040888963407) & M64
        return (st >> 11) / 9007199254740992.0

    perm = list(range(len(ZOO)))
    for i in range(len(ZOO) - 1, 0, -1):
        j = int(urand() * (i + 1))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def zipf_shares(m, s=0.9):
    """Zipf(s) over ranks 0..m-1, summed in rank order"""
    w = [1 / (i + 1) ** s for i in range(m)]
    tot = sum(w)
    return [x / tot for x in w]


def slo_ms(usher, zoo):
    out = {}
    for name in ZOO:
        path = os.path.abspath(os.path.join(zoo, name + ".onnx"))
        r = subprocess.run([usher, "estimate", path, "--gpu", "v100-16gb", "--json"],
                           check=True, capture_output=True, text=True)
        out[name] = (path, 5 * json.loads(r.stdout.splitlines()[0])["latency_ms"])
    return out


def write_inputs(d, n_gpus, n_models, total, slos):
    os.makedirs(d, exist_ok=True)
    shares = zipf_shares(n_models)
    order = zoo_order()
    lines = ["# experiment (c) (tools/experiments/scale_scenario.py): %d V100s, %d models" %
             (n_gpus, n_models),
             "# total %g req/s, Zipf(0.9) shares, SLO 5 x batch-1 latency on v100-16gb" % total,
             "models:"]
    for i in range(n_models):
        # rank i: the zoo model of rank i mod 20, its copy i div 20
        base = ZOO[order[i % len(ZOO)]]
        path, slo = slos[base]
        lines += ["  - name: %s-%d" % (base, i // len(ZOO)), "    model: %s" % path,
                  "    rate: %.17g" % (total * shares[i]), "    slo_ms: %.17g" % slo]
    with open(os.path.join(d, "workload.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "cluster.yaml"), "w") as f:
        f.write("# experiment (c): a fixed cluster of %d V100-16GB\n"
                "objective: max-goodput\ngpus:\n  - type: v100-16gb\n    count: %d\n"
                % (n_gpus, n_gpus))


def timed(cmd, stdout_path):
    """runs cmd under /usr/bin/time -v; returns (rc, wall_s, cpu_s, max_rss_mb, stderr):
    cpu_s (user + system) is the figure to quote on a shared machine, where
    the wall time includes waiting for a core"""
    with open(stdout_path, "w") as out:
        t0 = time.monotonic()
        r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=out,
                           stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    rss = int(m.group(1)) / 1024 if m else float("nan")
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)",
                                           r.stderr))
    return r.returncode, wall, cpu, rss, r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("usher", help="the usher binary (build/usher)")
    ap.add_argument("zoo", help="the zoo's ONNX files (models/zoo)")
    ap.add_argument("out", help="where the inputs, plans, reports and results.json go")
    ap.add_argument("--gpus", default="1000,2000,4000,6000",
                    help="cluster sizes, comma-separated (default %(default)s)")
    ap.add_argument("--per-gpu", type=float, default=64000 / 24,
                    help="offered req/s per GPU (default (a)'s 64k over 24 GPUs)")
    ap.add_argument("--models-per-gpu", type=float, default=0.1,
                    help="models per GPU, at least 20 in all (default %(default)s)")
    ap.add_argument("--duration", type=float, default=2,
                    help="seconds of arrivals per simulation (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="arrivals' seed (default 1)")
    ap.add_argument("--policies", default="usher,shepherd,gpulet,alpaserve",
                    help="usher plan --policy names (default %(default)s)")
    ap.add_argument("--inputs-only", action="store_true",
                    help="write the workloads and clusters, plan and simulate nothing")
    ap.add_argument("--bound", metavar="BENCH_SIM_BOUND",
                    help="build/bench/bench_sim_bound: adds each size's upper bound on a plan's "
                         "goodput (a row with policy 'bound')")
    a = ap.parse_args()
    slos = slo_ms(a.usher, a.zoo)
    rows = []
    res_path = os.path.join(a.out, "results.json")
    for n in [int(x) for x in a.gpus.split(",")]:
        m = max(len(ZOO), round(n * a.models_per_gpu))
        total = n * a.per_gpu
        d = os.path.join(a.out, str(n))
        write_inputs(d, n, m, total, slos)
        if a.inputs_only:
            continue
        wl, cl = os.path.join(d, "workload.yaml"), os.path.join(d, "cluster.yaml")
        if a.bound:
            r = subprocess.run([a.bound, wl, cl], check=True, capture_output=True, text=True)
            b = json.loads(r.stdout)
            rows.append({"gpus": n, "models": m, "offered": total, "policy": "bound",
                         "planned_goodput": b["goodput_upper_bound"],
                         "models_served": b["models_in_bound"]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        for pol in a.policies.split(","):
            plan = os.path.join(d, pol + ".plan.json")
            if os.path.exists(plan):
                os.remove(plan)
            row = {"gpus": n, "models": m, "offered": total, "policy": pol}
            rc, w, cpu, rss, err = timed([a.usher, "plan", "--workload", wl, "--cluster", cl,
                                     "--policy", pol, "-o", plan, "--quiet"],
                                    os.path.join(d, pol + ".plan.txt"))
            row.update(plan_s=round(w, 2), plan_cpu_s=round(cpu, 2), plan_rss_mb=round(rss, 1))
            # exit 3: the plan is written but leaves some rate unserved (max-goodput on
            # an overloaded cluster always does)
            if rc not in (0, 3) or not os.path.exists(plan):
                row["error"] = "plan: " + err.strip().splitlines()[0]
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                continue
            with open(plan) as f:
                p = json.load(f)
            row["gpus_used"] = p["totals"]["gpus"]
            row["replicas"] = p["totals"]["replicas"]
            rep = os.path.join(d, pol + ".sim.json")
            rc, w, cpu, rss, err = timed([a.usher, "simulate", "--plan", plan, "--workload", wl,
                                     "--duration", str(a.duration), "--seed", str(a.seed),
                                     "--json", "--quiet"], rep)
            row.update(sim_s=round(w, 2), sim_cpu_s=round(cpu, 2), sim_rss_mb=round(rss, 1))
            if rc != 0:
                row["error"] = "simulate: " + err.strip().splitlines()[0]
            else:
                with open(rep) as f:
                    s = json.load(f)
                for k in ("requests", "goodput", "slo_attainment_pct"):
                    row[k] = s.get(k)
                row["planned_goodput"] = p["totals"]["goodput"]
                row["models_served"] = sum(1 for x in p["models"] if x["replicas"] > 0)
                row["cost_per_hour"] = s.get("cost_per_hour")
                # per second of the simulation's CPU time (setup and profiles included)
                row["sim_requests_per_cpu_s"] = round(s["requests"] / cpu) if cpu > 0 else None
                row["events"] = s["events"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            with open(res_path, "w") as f:
                json.dump({"args": vars(a), "rows": rows}, f, indent=1)
    if a.inputs_only:
        return
    print("| GPUs (models, offered req/s) | " + " | ".join(a.policies.split(",")) +
          (" | bound on planned goodput |" if a.bound else " |"))
    print("|---" * (1 + len(a.policies.split(",")) + bool(a.bound)) + "|")
    for n in sorted({r["gpus"] for r in rows}):
        rs = [r for r in rows if r["gpus"] == n and r["policy"] != "bound"]
        b = next((r for r in rows if r["gpus"] == n and r["policy"] == "bound"), None)
        cells = []
        for pol in a.policies.split(","):
            r = next((r for r in rs if r["policy"] == pol), None)
            if r is None or "error" in r:
                cells.append("failed" if r else "")
                continue
            cells.append("%s (%.1f%%; plan %s; %.1f s + %.1f s)" % (
                format(round(r["goodput"]), ","), r["slo_attainment_pct"],
                format(round(r["planned_goodput"]), ","), r["plan_cpu_s"], r["sim_cpu_s"]))
        if a.bound:
            cells.append(format(round(b["planned_goodput"]), ",") if b else "")
        print("| %s (%d, %s) | %s |" % (format(n, ","), rs[0]["models"],
                                       format(round(rs[0]["offered"]), ","), " | ".join(cells)))


main()
