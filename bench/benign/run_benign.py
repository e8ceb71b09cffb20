#!/usr/bin/env python3
"""Scan the benign set (bench/benign/out/) with an Airlock binary and write the per-library table.

    python3 bench/benign/run_benign.py target/release/airlock [--out bench/benign/out] [--report FILE]

Runs `airlock scan <each library folder> --format json` once, joins each file's verdict with
out/manifest.json (which library made it, and whether it is a documented by-design case), and
writes a Markdown report (default out/results-<date>.md, also printed):

- per library: files, safe, not safe (suspicious / unscannable / dangerous), by-design files
  not safe, and why: the rule codes of the findings and every import not rated innocuous;
- totals, and the not-safe rate outside the by-design cases (issue 21's target: 0 dangerous,
  at most 2 %);
- every false alarm (a not-safe file that is not by design), grouped by its reason, so a fix
  can be checked against it.

Standard library only: it needs no virtualenv. Exit status 0 whatever the verdicts (it measures;
the target is checked by reading the table).
"""

import argparse
import collections
import datetime
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_SAFE = ("suspicious", "unscannable", "dangerous")


def scan(binary, out):
    libs = sorted(p for p in out.iterdir() if p.is_dir())
    report = out.parent / "report.json"
    cmd = [str(binary), "scan", *map(str, libs), "--format", "json", "-o", str(report), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not report.exists():
        sys.exit(f"airlock wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    return json.loads(report.read_text()), proc.returncode, version


def short(msg, n=110):
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 1] + "…"


def rule_codes(entry):
    return sorted({f["rule"] for f in entry.get("findings", []) if f.get("severity") != "info"})


def classify(entry):
    """The false-alarm class a not-safe file falls in: its rules plus the imports not allowed."""
    codes = rule_codes(entry)
    bad = sorted({f"{i['module']}.{i['name']}" for i in entry.get("imports", []) if i.get("rating") != "innocuous"})
    if bad:
        return " + ".join(codes) + " — " + ", ".join(bad[:6]) + (" …" if len(bad) > 6 else "")
    msgs = sorted({short(f.get("message", ""), 90) for f in entry.get("findings", []) if f.get("severity") != "info"})
    return " + ".join(codes) + (" — " + "; ".join(msgs[:2]) if msgs else "")


def build(report, manifest, out):
    by_path = {}
    for entry in report["files"]:
        rel = str(Path(entry["path"]).resolve().relative_to(out.resolve()))
        by_path[rel] = entry
    rows = collections.OrderedDict()
    false_alarms = collections.defaultdict(list)
    by_design = []
    unlisted = [p for p in by_path if p not in manifest["files"]]
    missing = [p for p in manifest["files"] if p not in by_path]
    for rel, meta in sorted(manifest["files"].items()):
        entry = by_path.get(rel)
        lib = meta["library"]
        row = rows.setdefault(lib, collections.Counter())
        row["files"] += 1
        verdict = entry["verdict"] if entry else "missing"
        if verdict == "safe":
            row["safe"] += 1
            continue
        if meta.get("by_design"):
            row["by_design_not_safe"] += 1
            by_design.append((rel, verdict, meta["by_design"], classify(entry) if entry else "not in report"))
            continue
        row[verdict] += 1
        row["not_safe"] += 1
        # Counted in files: each rule code and each import not allowed once per file.
        why = set(rule_codes(entry)) if entry else {"missing"}
        why |= {f"{i['module']}.{i['name']}" for i in (entry or {}).get("imports", []) if i.get("rating") != "innocuous"}
        rows.setdefault(f"__why__{lib}", collections.Counter()).update(why)
        false_alarms[(verdict, classify(entry) if entry else "not in report")].append(rel)
    return rows, false_alarms, by_design, unlisted, missing


def table(rows, manifest):
    lines = ["| library | version | files | safe | not safe | suspicious | unscannable | dangerous | by design (not safe) | why (rule codes, imports not allowed: files) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    total = collections.Counter()
    versions = manifest.get("versions", {})
    version_key = {"sklearn": "scikit-learn", "sentence_transformers": "sentence-transformers", "pickle": "python"}
    for lib, row in rows.items():
        if lib.startswith("__why__"):
            continue
        why = rows.get(f"__why__{lib}", {})
        why_text = ", ".join(f"{k} ({v})" for k, v in sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))[:8]) or ""
        if len(why) > 8:
            why_text += f", … {len(why) - 8} more"
        version = versions.get(version_key.get(lib, lib), "")
        lines.append(f"| {lib} | {version} | {row['files']} | {row['safe']} | {row['not_safe']} | {row['suspicious']} | {row['unscannable']} | {row['dangerous']} | {row['by_design_not_safe']} | {why_text} |")
        for k in ("files", "safe", "not_safe", "suspicious", "unscannable", "dangerous", "by_design_not_safe"):
            total[k] += row[k]
    lines.append(f"| **total** | | **{total['files']}** | **{total['safe']}** | **{total['not_safe']}** | {total['suspicious']} | {total['unscannable']} | **{total['dangerous']}** | {total['by_design_not_safe']} | |")
    return lines, total


def render(binary, version, exit_code, report, manifest, out):
    rows, false_alarms, by_design, unlisted, missing = build(report, manifest, out)
    lines, total = table(rows, manifest)
    libs = [k for k in rows if not k.startswith("__why__")]
    counted = total["files"] - total["by_design_not_safe"]
    rate = 100.0 * total["not_safe"] / counted if counted else 0.0
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"# Benign set: {now}", "",
          f"Binary: `{binary}` ({version}); scan exit status {exit_code}.", "",
          f"{total['files']} files from {len(libs)} libraries; {total['by_design_not_safe']} by-design files not safe (not counted). "
          f"Outside them: **{total['not_safe']} of {counted} not safe ({rate:.1f} %), {total['dangerous']} dangerous** "
          f"(target: 0 dangerous, at most 2 %).", ""]
    md += lines
    md += ["", "## False alarms by class (not safe, not by design)", ""]
    for (verdict, cls), files in sorted(false_alarms.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        md.append(f"- **{verdict}**, {len(files)} file(s): {cls}")
        for f in files[:8]:
            md.append(f"  - `{f}`")
        if len(files) > 8:
            md.append(f"  - … {len(files) - 8} more")
    md += ["", "## By-design cases (allowed to be not safe)", ""]
    for rel, verdict, why, cls in by_design:
        md.append(f"- `{rel}`: {verdict} ({why}): {cls}")
    if manifest.get("skipped"):
        md += ["", "## Libraries skipped by the generator", ""]
        md += [f"- {k}: {short(v, 200)}" for k, v in sorted(manifest["skipped"].items())]
    if manifest.get("failed"):
        md += ["", "## Artifacts the generator could not make", ""]
        md += [f"- {f['library']}: {f['what']}: {short(f['error'], 200)}" for f in manifest["failed"]]
    if unlisted or missing:
        md += ["", "## Manifest mismatches", "", f"- in the report, not the manifest: {unlisted[:10]}", f"- in the manifest, not the report: {missing[:10]}"]
    md += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in sorted(manifest.get("versions", {}).items()))]
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("airlock", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()
    manifest = json.loads((args.out / "manifest.json").read_text())
    report, code, version = scan(args.airlock, args.out)
    text = render(args.airlock, version, code, report, manifest, args.out)
    dest = args.report or args.out.parent / f"results-{datetime.date.today().isoformat()}.md"
    dest.write_text(text)
    print(text)
    print(f"written to {dest}", file=sys.stderr)


if __name__ == "__main__":
    main()
