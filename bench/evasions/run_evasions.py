#!/usr/bin/env python3
"""Scan bench/evasions/out/ with an Airlock binary; per class: files, dangerous, and each miss.

    python3 bench/evasions/run_evasions.py target/release/airlock

Every file is malicious, so anything below dangerous is a miss (suspicious still fails a
default scan, but issue 21 asks for dangerous). A second column counts the files where the
payload's own import was reported as dangerous: a file can be dangerous for a side rule (a
header over numpy's cap) while the pickle behind it is never read. Standard library only; reads the files only
through Airlock.
"""

import collections
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    binary = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "out"
    report = HERE / "report.json"
    classes = sorted(p for p in out.iterdir() if p.is_dir())
    subprocess.run([str(binary), "scan", *map(str, classes), "--format", "json", "-o", str(report), "--no-progress"], capture_output=True)
    files = json.loads(report.read_text())["files"]
    rows = collections.defaultdict(collections.Counter)
    misses = []
    for f in files:
        rel = Path(f["path"]).resolve().relative_to(out.resolve())
        cls = rel.parts[0]
        rows[cls]["files"] += 1
        rows[cls][f["verdict"]] += 1
        # Dangerous for the payload itself, not only for a side rule (a header cap, a layout):
        # the payload's import was reported and rated dangerous.
        if any(i.get("rating") == "dangerous" for i in f.get("imports", [])):
            rows[cls]["payload_import"] += 1
        if f["verdict"] != "dangerous":
            codes = sorted({x["rule"] for x in f.get("findings", []) if x.get("severity") != "info"})
            misses.append(f"- `{rel}`: {f['verdict']} ({', '.join(codes) or 'no finding'})")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Binary: `{binary}` ({version})\n")
    print("| class | files | dangerous | of which a dangerous import reported | suspicious | unscannable | safe |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    total = collections.Counter()
    for cls, r in sorted(rows.items()):
        print(f"| {cls} | {r['files']} | {r['dangerous']} | {r['payload_import']} | {r['suspicious']} | {r['unscannable']} | {r['safe']} |")
        total.update(r)
    print(f"| **total** | **{total['files']}** | **{total['dangerous']}** | {total['payload_import']} | {total['suspicious']} | {total['unscannable']} | {total['safe']} |\n")
    print("Not dangerous (misses):\n")
    print("\n".join(misses) or "- none")


if __name__ == "__main__":
    main()
