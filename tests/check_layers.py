"""check_layers.py SRC_DIR - the layers of docs/architecture.md ("Target layout"),
enforced: every `#include "folder/..."` in src/FOLDER must name a folder that
FOLDER may include (its own, core's siblings below it as the table allows, or
include/usher/). A folder's own headers may also be included without the folder
prefix (so can generated and vendor headers). The CLI may include only
include/usher/ and its own cli.h, except the files listed in CLI_EXCEPTIONS. Prints each forbidden include with file:line and
exits 1; exits 0 when there is none. Keep ALLOWED and the table in
docs/architecture.md the same."""
import os
import re
import sys

ALLOWED = {
    "core": set(),
    "ir": {"core"},
    "gpu": {"core"},
    "planfile": {"core"},
    "client": {"core"},
    "onnx": {"ir", "core"},
    "backend": {"gpu", "core"},
    "estimate": {"onnx", "ir", "gpu", "core"},
    "runtime": {"backend", "core"},
    "merge": {"onnx", "ir", "backend", "gpu", "core"},
    "interfere": {"estimate", "onnx", "ir", "gpu", "core"},
    "plan": {"interfere", "estimate", "planfile", "onnx", "ir", "gpu", "core"},
    "server": {"runtime", "backend", "planfile", "gpu", "core"},
    "sim": {"runtime", "interfere", "planfile", "gpu", "core"},
    "cli": set(),
}
# documented exceptions (docs/architecture.md): the worker's main is the runtime's,
# `usher load` is the client library's front end, `usher serve` sets the log format
CLI_EXCEPTIONS = {
    "worker.c": {"runtime"},
    "load.c": {"client", "core"},
    "serve.c": {"core"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    src = sys.argv[1]
    bad = []
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for folder in folders:
        if folder not in ALLOWED:
            bad.append("%s/: a folder docs/architecture.md's layout does not list" % folder)
            continue
        for name in sorted(os.listdir(os.path.join(src, folder))):
            if not name.endswith((".c", ".h", ".def")):
                continue
            path = os.path.join(src, folder, name)
            allowed = set(ALLOWED[folder]) | {folder, "usher"}
            if folder == "cli":
                allowed |= CLI_EXCEPTIONS.get(name, set())
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    if "/" not in inc:
                        continue  # the folder's own header, or a generated or vendor one
                    top = inc.split("/", 1)[0]
                    if top not in allowed:
                        bad.append("%s:%d: #include \"%s\": src/%s may include %s" %
                                   (path, n, inc, folder,
                                    ", ".join(sorted(allowed - {folder})) or "include/usher/ only"))
    for b in bad:
        print(b)
    print("layers: %d forbidden include%s" % (len(bad), "" if len(bad) == 1 else "s"))
    return 1 if bad else 0


sys.exit(main())
