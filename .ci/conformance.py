#!/usr/bin/env python3
"""Conformance: runs `airlock scan` on every file of a labelled corpus and checks the verdicts.

    .ci/conformance.py CORPUS_DIR AIRLOCK_BIN

CORPUS_DIR holds `labels.csv` (`file,expected` with expected `malicious` or `benign`). Each file
is scanned alone with `AIRLOCK_BIN scan --format json FILE`, and:
- `malicious`: the exit status must be 1 and `files[0].verdict` must be `dangerous`;
- `benign`: `files[0].verdict` must be `safe`. A benign file rated `dangerous` is a mismatch; one
  rated `suspicious` or `unscannable` is *not clean*: listed (`NOT CLEAN` lines), counted, and a
  failure too, unless `EXPECTED_UNCLEAN` below names it with that verdict and says why. A gate
  that only rejected `dangerous` let false positives (and files Airlock stopped reading) creep
  in unnoticed. The one benign file of the picklescan corpus that is not safe today is an
  encrypted zip: Airlock cannot read its members, so it is unscannable, and must stay so (a
  file that is not read is never safe).

Prints one line per mismatch (file, expected, got, finding codes) and per benign file that is
not clean, then exactly `conformance: N passed, M failed, K benign not clean (J expected)`. Exits
1 on any mismatch or unexpected unclean benign file, 2 when the corpus or binary is missing.
Standard library only; files are scanned in parallel.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_SECONDS = 120

# Benign files that are rightly not safe: file name -> (the verdict they must get, why).
EXPECTED_UNCLEAN = {
    "benign_password_protected.zip": (
        "unscannable", "encrypted members cannot be read (ARC004), so the file is never safe"),
}


@dataclass
class Outcome:
    file: str
    expected: str
    ok: bool
    got: str
    codes: str
    # A benign file rated anything but safe (suspicious, unscannable).
    unclean: bool = False


def scan(binary: str, corpus: Path, file: str, expected: str) -> Outcome:
    path = corpus / file
    try:
        run = subprocess.run([binary, "scan", "--format", "json", str(path)],
                             capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(file, expected, False, f"timeout after {TIMEOUT_SECONDS} s", "")
    except OSError as e:
        return Outcome(file, expected, False, f"cannot run {binary}: {e}", "")
    try:
        report = json.loads(run.stdout)["files"][0]
        verdict = report["verdict"]
        codes = ",".join(sorted({f.get("rule", "?") for f in report.get("findings", [])}))
    except (ValueError, KeyError, IndexError, TypeError) as e:
        stderr = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return Outcome(file, expected, False,
                       f"exit {run.returncode}, unreadable JSON ({type(e).__name__}) {stderr[0]}", "")
    got = f"{verdict} (exit {run.returncode})"
    if expected == "malicious":
        ok = verdict == "dangerous" and run.returncode == 1
    elif expected == "benign":
        unclean = verdict not in ("safe", "dangerous")
        if file in EXPECTED_UNCLEAN:
            ok = verdict == EXPECTED_UNCLEAN[file][0]
            if not ok:
                got += f" (expected {EXPECTED_UNCLEAN[file][0]}: {EXPECTED_UNCLEAN[file][1]})"
        else:
            ok = verdict != "dangerous"
        return Outcome(file, expected, ok, got, codes, unclean=unclean)
    else:
        return Outcome(file, expected, False, f"unknown label `{expected}`", codes)
    return Outcome(file, expected, ok, got, codes)


def read_labels(corpus: Path) -> list[tuple[str, str]]:
    with open(corpus / "labels.csv", newline="") as f:
        return [(row["file"], row["expected"].strip()) for row in csv.DictReader(f)]


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    corpus, binary = Path(sys.argv[1]), sys.argv[2]
    if not (corpus / "labels.csv").is_file():
        print(f"conformance: no corpus at {corpus} (labels.csv missing)", file=sys.stderr)
        return 2
    if not os.access(binary, os.X_OK):
        print(f"conformance: {binary} is not an executable", file=sys.stderr)
        return 2
    labels = read_labels(corpus)
    missing = [file for file, _ in labels if not (corpus / file).is_file()]
    workers = max(2, min(8, os.cpu_count() or 2))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda row: scan(binary, corpus, *row), labels))
    failed = [o for o in outcomes if not o.ok]
    unclean = [o for o in outcomes if o.unclean]
    for o in failed:
        reason = "file missing from corpus" if o.file in missing else o.got
        print(f"MISMATCH {o.file}: expected {o.expected}, got {reason}; findings: {o.codes or '-'}")
    for o in unclean:
        why = EXPECTED_UNCLEAN.get(o.file, (None, "unexpected: a benign file must scan safe"))[1]
        print(f"NOT CLEAN {o.file}: benign, got {o.got}; findings: {o.codes or '-'}; {why}")
    unexpected = [o for o in unclean if o.file not in EXPECTED_UNCLEAN]
    print(f"conformance: {len(outcomes) - len(failed)} passed, {len(failed)} failed, "
          f"{len(unclean)} benign not clean ({len(unclean) - len(unexpected)} expected)")
    return 1 if failed or unexpected or not outcomes else 0

if __name__ == "__main__":
    sys.exit(main())
