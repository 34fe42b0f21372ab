// k8s_validate.mjs NODE_MODULES DOCS.json - validate Kubernetes objects offline
// (tests/test_export.sh).
//
// DOCS.json: [{"file": "node-a.yaml", "doc": {...}}, ...] (the YAML documents of
// `usher export k8s`, read by python3-yaml). Each object is validated against
// the Kubernetes API's OpenAPI schema by kubernetes-models (its class for the
// apiVersion and kind, .validate(): types, formats, required fields). That
// schema does not carry the API server's own validation, so the rules the API
// server applies to what usher writes are checked here too: object names
// (DNS labels, at most 63), label keys and values, a Deployment's selector
// matching its pod template, container port names, probes naming a declared
// port, volume mounts naming a volume, extended resources (nvidia.com/*) with
// limits equal to requests, Services whose selector picks at least one pod
// template of the set, and ConfigMaps the pods mount existing in the set.
// A ServiceMonitor (monitoring.coreos.com/v1, `--service-monitor`) is validated
// against the Prometheus Operator's CRD schema (@kubernetes-models/prometheus-operator)
// and must select a Service of the set whose port it names.
// Prints every problem with its file; exit 1 when there is one, 0 otherwise.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [mods, docsPath] = process.argv.slice(2);
const docs = JSON.parse(readFileSync(docsPath, "utf8"));
const problems = [];
const bad = (file, what) => problems.push(`${file}: ${what}`);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUB = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelKey = (k) => {
  const i = k.lastIndexOf("/");
  const prefix = i < 0 ? null : k.slice(0, i), name = i < 0 ? k : k.slice(i + 1);
  return name.length <= 63 && NAME_PART.test(name) &&
    (prefix === null || (prefix.length <= 253 && DNS_SUB.test(prefix)));
};
const labelValue = (v) => typeof v === "string" && v.length <= 63 && (v === "" || NAME_PART.test(v));
const checkLabels = (file, where, labels) => {
  for (const [k, v] of Object.entries(labels || {})) {
    if (!labelKey(k)) bad(file, `${where}: label key '${k}' is not a qualified name`);
    if (!labelValue(v)) bad(file, `${where}: label '${k}' value '${v}' is not a label value`);
  }
};

async function modelClass(apiVersion, kind) {
  const group = apiVersion === "v1" ? "v1" : apiVersion; // "apps/v1" -> apps/v1
  // CRDs: the Prometheus Operator's from its own package
  const pkg = group.startsWith("monitoring.coreos.com/") ? "@kubernetes-models/prometheus-operator"
                                                          : "kubernetes-models";
  const url = pathToFileURL(`${mods}/${pkg}/${group}/${kind}.js`).href;
  const mod = await import(url);
  return mod[kind];
}

const podTemplates = []; // {file, labels}
const configMaps = new Set();
const mounted = []; // {file, name}
const services = []; // {file, selector}
const monitors = []; // {file, name, selector, ports}

for (const { file, doc } of docs) {
  if (!doc || typeof doc !== "object") {
    bad(file, "an empty or scalar document");
    continue;
  }
  const { apiVersion, kind } = doc;
  let Cls;
  try {
    Cls = await modelClass(apiVersion, kind);
  } catch (e) {
    bad(file, `no Kubernetes schema for ${apiVersion} ${kind}`);
    continue;
  }
  const name = doc.metadata?.name;
  try {
    new Cls(doc).validate();
  } catch (e) {
    bad(file, `${kind} ${name}: schema: ${e.message}`);
  }
  if (typeof name !== "string" || name.length > 63 ||
      !(kind === "Service" ? DNS1035 : DNS_LABEL).test(name))
    bad(file, `${kind} name '${name}' is not a DNS label`);
  if (doc.metadata?.namespace !== undefined && !DNS_LABEL.test(doc.metadata.namespace))
    bad(file, `namespace '${doc.metadata.namespace}' is not a DNS label`);
  checkLabels(file, `${kind} ${name} metadata`, doc.metadata?.labels);
  if (kind === "ConfigMap") {
    configMaps.add(name);
    for (const [k, v] of Object.entries(doc.data || {}))
      if (!/^[-._a-zA-Z0-9]+$/.test(k) || typeof v !== "string")
        bad(file, `ConfigMap ${name}: data key '${k}' or its value`);
  }
  if (kind === "Deployment") {
    const sel = doc.spec?.selector?.matchLabels || {};
    const tl = doc.spec?.template?.metadata?.labels || {};
    checkLabels(file, `Deployment ${name} pod template`, tl);
    for (const [k, v] of Object.entries(sel))
      if (tl[k] !== v) bad(file, `Deployment ${name}: selector ${k}=${v} does not match its template`);
    if (!Object.keys(sel).length) bad(file, `Deployment ${name}: empty selector`);
    podTemplates.push({ file, labels: tl });
    const spec = doc.spec?.template?.spec || {};
    const vols = new Set((spec.volumes || []).map((v) => v.name));
    for (const v of spec.volumes || [])
      if (v.configMap) mounted.push({ file, name: v.configMap.name });
    if (spec.nodeName !== undefined && !DNS_SUB.test(spec.nodeName))
      bad(file, `Deployment ${name}: nodeName '${spec.nodeName}'`);
    for (const [k, v] of Object.entries(spec.nodeSelector || {}))
      if (!labelKey(k) || !labelValue(v)) bad(file, `Deployment ${name}: nodeSelector ${k}=${v}`);
    for (const c of spec.containers || []) {
      const ports = new Set();
      for (const p of c.ports || []) {
        if (p.name !== undefined) {
          if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || p.name.length > 15 || !/[a-z]/.test(p.name))
            bad(file, `container ${c.name}: port name '${p.name}'`);
          ports.add(p.name);
        }
        if (!(p.containerPort >= 1 && p.containerPort <= 65535)) bad(file, `containerPort ${p.containerPort}`);
      }
      for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
        const h = c[probe]?.httpGet;
        if (!h) continue;
        if (typeof h.port === "string" && !ports.has(h.port))
          bad(file, `container ${c.name}: ${probe} names port '${h.port}', not declared`);
        if (!String(h.path).startsWith("/")) bad(file, `${probe} path '${h.path}'`);
      }
      for (const m of c.volumeMounts || [])
        if (!vols.has(m.name)) bad(file, `container ${c.name}: mounts volume '${m.name}', not declared`);
      const req = c.resources?.requests || {}, lim = c.resources?.limits || {};
      for (const k of new Set([...Object.keys(req), ...Object.keys(lim)])) {
        if (!k.includes("/")) continue; // cpu, memory
        if (!labelKey(k)) bad(file, `resource name '${k}'`);
        if (lim[k] === undefined) bad(file, `extended resource ${k}: no limit`);
        else if (req[k] !== undefined && String(req[k]) !== String(lim[k]))
          bad(file, `extended resource ${k}: request ${req[k]} != limit ${lim[k]}`);
        if (!Number.isInteger(Number(lim[k])) || Number(lim[k]) < 1)
          bad(file, `extended resource ${k}: ${lim[k]}, a whole number`);
      }
    }
  }
  if (kind === "Service") {
    checkLabels(file, `Service ${name} selector`, doc.spec?.selector);
    services.push({ file, name, selector: doc.spec?.selector || {}, labels: doc.metadata?.labels || {},
                    ports: (doc.spec?.ports || []).map((p) => p.name) });
  }
  if (kind === "ServiceMonitor")
    monitors.push({ file, name, selector: doc.spec?.selector?.matchLabels || {},
                    ports: Array.isArray(doc.spec?.endpoints) ? doc.spec.endpoints.map((e) => e?.port) : [] });
}
for (const m of monitors) {
  const picks = services.filter((s) => Object.entries(m.selector).every(([k, v]) => s.labels[k] === v));
  if (!picks.length) bad(m.file, `ServiceMonitor ${m.name}: its selector picks no Service of these manifests`);
  for (const port of m.ports)
    if (!picks.every((s) => s.ports.includes(port)))
      bad(m.file, `ServiceMonitor ${m.name}: port '${port}' is not a named port of every Service it picks`);
}
for (const s of services) {
  const picks = podTemplates.filter((t) => Object.entries(s.selector).every(([k, v]) => t.labels[k] === v));
  if (!picks.length) bad(s.file, `Service ${s.name}: its selector picks no pod of these manifests`);
}
for (const m of mounted)
  if (!configMaps.has(m.name)) bad(m.file, `mounts ConfigMap ${m.name}, which these manifests lack`);

for (const p of problems) console.log(p);
console.log(`k8s_validate: ${docs.length} objects, ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
process.exit(problems.length ? 1 : 0);
