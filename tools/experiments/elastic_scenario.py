#!/usr/bin/env python3
"""elastic_scenario.py USHER_BIN ZOO_DIR OUT_DIR [TOTAL_RPS]

Writes the paper's elastic scenario (experiment (b)) as usher input files, the
same problem `bench/bench_plan models/zoo --elastic` builds in C:

  OUT_DIR/workload.yaml  the 20 zoo models, TOTAL_RPS (default 2000) split by a
                         Zipf(0.9) law in bench_plan's seeded order (its LCG,
                         seed 2024, Fisher-Yates), SLO = 5 x each model's
                         batch-1 latency on the V100-16GB (usher estimate)
  OUT_DIR/cluster.yaml   elastic A100-80GB and V100-16GB, at most 10,000 each,
                         catalog prices

The 2k-32k runs of docs/simulator.md ("Experiments") scale this workload with
`usher compare --loads 1,2,4,8,16`, which multiplies every rate exactly as
bench_plan's totals do.
"""
import json
import os
import subprocess
import sys

ZOO = ["alexnet", "bert-base", "bert-large", "densenet121", "densenet169",
       "distilbert", "efficientnet-b0", "gpt2", "inception-v3", "mobilenet-v2",
       "mobilenet-v3-large", "resnet101", "resnet152", "resnet18", "resnet50",
       "shufflenet-v2", "squeezenet", "vgg16", "vgg19", "vit-b16"]
M64 = (1 << 64) - 1


def zipf_shares():
    st = 2024

    def urand():
        nonlocal st
        st = (st * 6364136223846793005 + 1442695040888963407) & M64
        return (st >> 11) / 9007199254740992.0

    perm = list(range(len(ZOO)))
    for i in range(len(ZOO) - 1, 0, -1):
        j = int(urand() * (i + 1))
        perm[i], perm[j] = perm[j], perm[i]
    share = [0.0] * len(ZOO)
    for i in range(len(ZOO)):
        share[perm[i]] = 1 / (i + 1) ** 0.9
    s = sum(share)  # bench_plan sums in the same order (i ascending)
    return [x / s for x in share]


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    usher, zoo, out = sys.argv[1:4]
    total = float(sys.argv[4]) if len(sys.argv) == 5 else 2000.0
    os.makedirs(out, exist_ok=True)
    shares = zipf_shares()
    lines = ["# the paper's elastic scenario (tools/experiments/elastic_scenario.py)",
             "# total %g req/s, Zipf(0.9) shares, SLO 5 x batch-1 latency on v100-16gb" % total,
             "models:"]
    for name, sh in zip(ZOO, shares):
        path = os.path.abspath(os.path.join(zoo, name + ".onnx"))
        r = subprocess.run([usher, "estimate", path, "--gpu", "v100-16gb", "--json"],
                           check=True, capture_output=True, text=True)
        lat = json.loads(r.stdout.splitlines()[0])["latency_ms"]
        lines += ["  - name: %s" % name, "    model: %s" % path,
                  "    rate: %.17g" % (total * sh), "    slo_ms: %.17g" % (5 * lat)]
    with open(os.path.join(out, "workload.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "cluster.yaml"), "w") as f:
        f.write("# elastic A100 + V100 (tools/experiments/elastic_scenario.py)\n"
                "objective: min-cost\ngpus:\n"
                "  - type: a100-80gb\n    max: 10000\n"
                "  - type: v100-16gb\n    max: 10000\n")


main()
