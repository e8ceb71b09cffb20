#!/usr/bin/env python3
"""Identity check: the JSON report of every file, from two builds, must be byte-identical.

A structural change (moving code between modules, a new reader, a registry) must not change what
Airlock says about any file. This script scans a fixed set of folders with each build, strips
what legitimately varies between runs (timings), and compares the per-file reports.

    scripts/identity.py snapshot BIN OUT.jsonl [--root DIR ...]   # one build's reports
    scripts/identity.py compare A.jsonl B.jsonl                   # exit 1 on any difference
    scripts/identity.py check BIN_BEFORE BIN_AFTER [--root ...]   # both, and the new build
                                                                  # run twice (determinism)

Default roots (those that exist): tests/fixtures, samples, bench/data (made by
bench/make_data.py), ../shared/corpora. Each root is scanned with one invocation of
`BIN scan --format json --include-info --threads 2` (so folder walking, ordering and archive
members are covered too); the process's exit status is part of the snapshot. A report line is
`{"root", "path", "report"}` with the file's JSON object, `elapsed_ms` removed at every depth.

Standard library only; runs anywhere the binaries run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOTS = ["tests/fixtures", "samples", "bench/data", "../shared/corpora"]
# Keys whose values differ from run to run on the same input, removed before comparing.
VOLATILE_KEYS = {"elapsed_ms"}


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def default_roots() -> list[str]:
    return [r for r in DEFAULT_ROOTS if (REPO / r).exists()]


def scan_root(binary: str, root: str) -> tuple[int, dict]:
    # The working directory is the repository, and roots are given relative to it, so the
    # paths in the reports do not depend on where the checkout lives.
    proc = subprocess.run(
        [binary, "scan", "--format", "json", "--include-info", "--threads", "2", root],
        cwd=REPO,
        capture_output=True,
    )
    if proc.returncode not in (0, 1):
        sys.exit(
            f"{binary} scan {root}: exit {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[:2000]}"
        )
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"{binary} scan {root}: output is not JSON ({e})")


def snapshot(binary: str, out: Path, roots: list[str]) -> int:
    lines = 0
    with open(out, "w", encoding="utf-8") as f:
        for root in roots:
            status, report = scan_root(binary, root)
            f.write(json.dumps({"root": root, "exit_status": status,
                                "summary": strip_volatile(report.get("summary"))},
                               sort_keys=True) + "\n")
            for item in report.get("files", []):
                f.write(json.dumps({"root": root, "path": item.get("path"),
                                    "report": strip_volatile(item)}, sort_keys=True) + "\n")
                lines += 1
            print(f"{root}: {len(report.get('files', []))} files, exit {status}", file=sys.stderr)
    return lines


def load(path: Path) -> dict[tuple, str]:
    entries = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            key = (row["root"], row.get("path", "<root summary>"))
            entries[key] = line.rstrip("\n")
    return entries


def compare(a: Path, b: Path, show: int = 20) -> int:
    before, after = load(a), load(b)
    only_before = sorted(set(before) - set(after))
    only_after = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    for key in only_before[:show]:
        print(f"only before: {key[0]}: {key[1]}")
    for key in only_after[:show]:
        print(f"only after:  {key[0]}: {key[1]}")
    for key in changed[:show]:
        print(f"changed:     {key[0]}: {key[1]}")
        old = json.dumps(json.loads(before[key]), indent=1, sort_keys=True).splitlines()
        new = json.dumps(json.loads(after[key]), indent=1, sort_keys=True).splitlines()
        for line in list(difflib.unified_diff(old, new, lineterm="", n=1))[2:40]:
            print(f"    {line}")
    total = len(only_before) + len(only_after) + len(changed)
    print(f"{len(before)} reports before, {len(after)} after: "
          f"{len(changed)} changed, {len(only_before)} gone, {len(only_after)} new"
          + ("" if total <= show else f" (first {show} of each shown)"))
    return 1 if total else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot", help="one build's per-file reports")
    p.add_argument("binary")
    p.add_argument("out", type=Path)
    p.add_argument("--root", action="append", help="a folder to scan (repeatable)")
    p = sub.add_parser("compare", help="compare two snapshots; exit 1 on any difference")
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p = sub.add_parser("check", help="snapshot two builds and compare them")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--root", action="append")
    args = parser.parse_args()

    if args.command == "compare":
        return compare(args.before, args.after)
    roots = args.root or default_roots()
    if args.command == "snapshot":
        n = snapshot(os.path.abspath(args.binary), args.out, roots)
        print(f"{n} reports written to {args.out}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "before.jsonl"), Path(tmp, "after.jsonl")
        again = Path(tmp, "after-again.jsonl")
        snapshot(os.path.abspath(args.before), a, roots)
        snapshot(os.path.abspath(args.after), b, roots)
        # A report must not depend on the run (hash seeds, thread timing): the new build is
        # run twice, so a difference that is only nondeterminism is named as such.
        snapshot(os.path.abspath(args.after), again, roots)
        print("determinism (the new build run twice):")
        if compare(b, again):
            print("the new build's reports differ between two runs: fix that first")
            return 1
        print("before vs after:")
        return compare(a, b)


if __name__ == "__main__":
    sys.exit(main())
