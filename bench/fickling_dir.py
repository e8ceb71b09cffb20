#!/usr/bin/env python3
"""Scan every file under a folder with fickling's public API, in one process.

fickling's CLI (`fickling --check-safety FILE`) takes a single raw pickle and does not open
zip-format torch files; this wrapper gives it the same one-invocation-per-folder footing as
the other tools: zip files go through `fickling.scan_zip_archive` (its members with pickle
extensions), everything else through `fickling.scan_file`, both with graceful=True.

Writes JSON {"files": [{"path", "severity", "errors"}]} to the output path and prints a
one-line summary. Exit status: 1 when any file is at or above LIKELY_UNSAFE, else 0.
"""

import json
import sys
import zipfile
from pathlib import Path

import fickling
from fickling.analysis import Severity


def scan_one(path):
    if zipfile.is_zipfile(path):
        members = fickling.scan_zip_archive(str(path), graceful=True)
        results = list(members.values())
        if not results:
            return Severity.LIKELY_SAFE, ["no pickle member scanned"]
        worst = max((r.severity for r in results), key=lambda s: s.value)
        return worst, [e for r in results for e in r.errors]
    result = fickling.scan_file(str(path), graceful=True)
    return result.severity, result.errors


def main():
    folder, output = Path(sys.argv[1]), Path(sys.argv[2])
    paths = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else [folder]
    files = []
    for path in paths:
        try:
            severity, errors = scan_one(path)
            name = severity.name
        except Exception as exc:  # a crash on one file must not end the folder scan
            name, errors = "ERROR", [f"{type(exc).__name__}: {exc}"]
        files.append({"path": str(path), "severity": name, "errors": errors[:3]})
    output.write_text(json.dumps({"files": files}, indent=1))
    unsafe = [f for f in files if f["severity"] in ("LIKELY_UNSAFE", "LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS")]
    print(f"fickling: {len(files)} files, {len(unsafe)} likely unsafe or worse")
    return 1 if unsafe else 0


if __name__ == "__main__":
    sys.exit(main())
