"""export_check.py - reading what `usher export` wrote (tests/test_export.sh).

  yaml2json DIR OUT.json
      every document of DIR/*.yaml (python3-yaml, sorted by file) as
      [{"file", "doc"}] for tests/k8s_validate.mjs; fails on a file that is
      not YAML or a document that is not a map.
  slices PLAN.json
      per node, the placement a node's Deployment runs (GPU types, device
      numbers, replicas' model/batch/share) as one line "NODE KEY": the
      test's own account of which nodes a re-plan changes.
  triton DIR PLAN.json NODE PROTO CALLS
      parse DIR/*/config.pbtxt and DIR/*/configs/*.pbtxt with protobuf's
      text_format against PROTO (tests/triton_model_config.proto, compiled
      with protoc; an unknown field or a wrong type fails), and check them
      against the plan's replicas on NODE; CALLS is what a stand-in
      tritonserver recorded when launch.sh ran (one line per process:
      CUDA_VISIBLE_DEVICES, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE, argv): one
      process per replica, its share, its own ports, its model and config.
Exit 1 with the reasons on any mismatch.
"""
import glob
import importlib
import json
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def yaml2json(d, out):
    import yaml
    docs = []
    for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            try:
                for doc in yaml.safe_load_all(f):
                    if not isinstance(doc, dict):
                        fail("%s: a document that is not a map" % path)
                    docs.append({"file": os.path.basename(path), "doc": doc})
            except yaml.YAMLError as e:
                fail("%s: not YAML: %s" % (path, e))
    with open(out, "w") as f:
        json.dump(docs, f)
    print("yaml2json: %d documents" % len(docs))


def node_gpus(plan, node):
    """the node's GPUs in the file's order with their device numbers"""
    gs = [g for g in plan["gpus"] if g.get("node") == node]
    return [(g, g["index"] if g.get("index") is not None else i) for i, g in enumerate(gs)]


def slices(path):
    plan = json.load(open(path))
    nodes = sorted({g.get("node") for g in plan["gpus"] if g.get("node")})
    for n in nodes:
        key = ";".join("%s/%d:%s" % (g["type"], dev, ",".join(
            "%s/%d/%g" % (r["model"], r["batch"], r["share"]) for r in g["replicas"]))
            for g, dev in node_gpus(plan, n))
        print(n, key)


def triton(d, plan_path, node, proto, calls):
    plan = json.load(open(plan_path))
    tmp = tempfile.mkdtemp()
    subprocess.run(["protoc", "--proto_path=" + os.path.dirname(os.path.abspath(proto)),
                    "--python_out=" + tmp, os.path.abspath(proto)], check=True)
    sys.path.insert(0, tmp)
    mc = importlib.import_module(os.path.basename(proto)[:-len(".proto")] + "_pb2")
    from google.protobuf import text_format

    def parse(path):
        cfg = mc.ModelConfig()
        try:
            text_format.Parse(open(path).read(), cfg)
        except text_format.ParseError as e:
            fail("%s: %s" % (path, e))
        return cfg

    procs = []  # (model, device, replica) in the exporter's order
    for g, dev in node_gpus(plan, node if node != "-" else None):
        for r in g["replicas"]:
            procs.append((r["model"], dev, r))
    models = sorted({p[0] for p in procs})
    got = sorted(os.path.basename(os.path.dirname(p))
                 for p in glob.glob(os.path.join(d, "*", "config.pbtxt")))
    if got != models:
        fail("config.pbtxt for %s, the node holds %s" % (got, models))
    def unbatched(m):
        """the repository's config.pbtxt (beside the linked version) says max_batch_size 0"""
        links = [os.path.join(d, m, v) for v in os.listdir(os.path.join(d, m))
                 if v.isdigit() and os.path.islink(os.path.join(d, m, v))]
        if not links:
            fail("%s: no version linked" % m)
        src = os.path.join(os.path.dirname(os.readlink(links[0])), "config.pbtxt")
        if not os.path.exists(src):
            return False
        # (its other fields are outside the subset schema: a line-wise look; protobuf's
        # unknown-field skipping does not take lists of messages)
        import re
        m0 = re.search(r"^\s*max_batch_size\s*:\s*(\d+)", open(src).read(), re.M)
        return bool(m0) and int(m0.group(1)) == 0

    n_parsed = 0
    for m in models:
        cfg = parse(os.path.join(d, m, "config.pbtxt"))
        n_parsed += 1
        mine = [p for p in procs if p[0] == m]
        if cfg.name != m or cfg.platform != "onnxruntime_onnx":
            fail("%s: name %r platform %r" % (m, cfg.name, cfg.platform))
        flat = unbatched(m)
        if cfg.max_batch_size != (0 if flat else max(p[2]["batch"] for p in mine)):
            fail("%s: max_batch_size %d" % (m, cfg.max_batch_size))
        per_dev = {}
        for p in mine:
            per_dev[p[1]] = per_dev.get(p[1], 0) + 1
        groups = {}
        for ig in cfg.instance_group:
            if ig.kind != mc.ModelInstanceGroup.KIND_GPU or len(ig.gpus) != 1:
                fail("%s: instance group %s: kind %d gpus %s" % (m, ig.name, ig.kind, list(ig.gpus)))
            groups[ig.gpus[0]] = groups.get(ig.gpus[0], 0) + ig.count
        if groups != per_dev:
            fail("%s: instances per GPU %s, the plan %s" % (m, groups, per_dev))
        sizes = [] if flat else sorted({p[2]["batch"] for p in mine})
        if flat and cfg.HasField("dynamic_batching"):
            fail("%s: max_batch_size 0 with a dynamic_batching block" % m)
        if list(cfg.dynamic_batching.preferred_batch_size) != sizes:
            fail("%s: preferred_batch_size %s, the plan %s" %
                 (m, list(cfg.dynamic_batching.preferred_batch_size), sizes))
    # one process per replica: its config, its call
    lines = [l.rstrip("\n") for l in open(calls)] if os.path.exists(calls) else []
    if len(lines) != len(procs):
        fail("launch.sh started %d processes, the node has %d replicas" % (len(lines), len(procs)))
    ports = set()
    by_name = {}
    for l in lines:
        dev, pct, argv = l.split("\t", 2)
        args = dict(a[2:].split("=", 1) for a in argv.split(" ") if a.startswith("--") and "=" in a)
        by_name[args["model-config-name"]] = (dev, pct, args)
    for i, (m, dev, r) in enumerate(procs):
        name = "p%d" % i
        if name not in by_name:
            fail("no process %s (model %s)" % (name, m))
        pdev, pct, args = by_name[name]
        share = min(100, -(-r["share"] // 1))
        want_pct = "" if share >= 100 else str(int(share))
        if pdev != str(dev) or pct != want_pct:
            fail("%s: CUDA_VISIBLE_DEVICES=%s CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=%r, the plan: "
                 "device %s share %s" % (name, pdev, pct, dev, r["share"]))
        if args.get("load-model") != m or args.get("model-control-mode") != "explicit":
            fail("%s: %s" % (name, args))
        for k in ("http-port", "grpc-port", "metrics-port"):
            if args[k] in ports:
                fail("%s: port %s used twice" % (name, args[k]))
            ports.add(args[k])
        cfg = parse(os.path.join(d, m, "configs", name + ".pbtxt"))
        n_parsed += 1
        ig = list(cfg.instance_group)
        flat = unbatched(m)
        if (len(ig) != 1 or ig[0].count != 1 or list(ig[0].gpus) != [0] or
                cfg.max_batch_size != (0 if flat else r["batch"]) or
                list(cfg.dynamic_batching.preferred_batch_size) != ([] if flat else [r["batch"]])):
            fail("%s/configs/%s.pbtxt: %s" % (m, name, text_format.MessageToString(cfg)))
    print("triton: %d configs parsed against %s, %d processes as planned" %
          (n_parsed, os.path.basename(proto), len(procs)))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "yaml2json":
        yaml2json(*sys.argv[2:4])
    elif cmd == "slices":
        slices(sys.argv[2])
    elif cmd == "triton":
        triton(*sys.argv[2:7])
    else:
        fail("unknown command " + cmd)
