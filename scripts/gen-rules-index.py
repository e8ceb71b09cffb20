#!/usr/bin/env python3
"""Regenerates the tables of docs/rules/README.md from crates/airlock/src/rules.rs.

The intro (everything before the first `## ` heading) is kept; one table per code prefix
follows. Run after adding a rule; the CLI's tests check the index lists every rule.
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTIONS = [
    ("PKL", "Pickle engine (`PKL`)"),
    ("PT", "PyTorch containers (`PT`)"),
    ("ARC", "Archives and compression (`ARC`)"),
    ("NPY", "NumPy (`NPY`)"),
    ("JBL", "joblib (`JBL`)"),
    ("ST", "safetensors (`ST`)"),
    ("GGUF", "GGUF (`GGUF`)"),
    ("KER", "Keras and HDF5 (`KER`)"),
    ("TF", "TensorFlow SavedModel (`TF`)"),
    ("ONNX", "ONNX (`ONNX`)"),
    ("EXE", "Executables and other identified formats (`EXE`)"),
    ("GEN", "Reading the file (`GEN`)"),
]
RULE = re.compile(
    r'(\w+) = \("([A-Z]+\d+)", "([\w-]+)", (\w+), incomplete: (true|false),\s*"((?:[^"\\]|\\.)*)"\);'
)


def main() -> None:
    rules = RULE.findall((ROOT / "crates/airlock/src/rules.rs").read_text())
    index = ROOT / "docs/rules/README.md"
    text = index.read_text()
    out = text[: text.index("\n## ")].rstrip() + "\n"
    listed = 0
    for prefix, title in SECTIONS:
        rows = [r for r in rules if re.fullmatch(prefix + r"\d+", r[1])]
        out += f"\n## {title}\n\n| Code | Name | Severity | Incomplete | Summary |\n|---|---|---|---|---|\n"
        for _, code, name, severity, incomplete, summary in rows:
            mark = "yes" if incomplete == "true" else ""
            out += f"| [{code}]({code}.md) | `{name}` | {severity.lower()} | {mark} | {summary.replace(chr(92) + chr(34), chr(34))} |\n"
        listed += len(rows)
    if listed != len(rules):
        raise SystemExit(f"{len(rules) - listed} rules have a prefix with no section")
    out += "\nThis index is regenerated from `crates/airlock/src/rules.rs` by `scripts/gen-rules-index.py`.\n"
    index.write_text(out)


if __name__ == "__main__":
    main()
