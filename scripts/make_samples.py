#!/usr/bin/env python3
"""Builds samples/: the files the README's first command scans.

Standard library only. The benign model files are copies of fixtures made by real torch and
scikit-learn (see tests/fixtures/benign/README.md). The malicious pickle is written byte by
byte and never loaded: it would run `echo` if it were.
"""
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
BENIGN = ROOT / "tests/fixtures/benign"

COPIES = {
    "pytorch_model.bin": "torch_module_state_dict.pt",
    "classifier.joblib": "sklearn_pipeline.joblib",
}

# Protocol 2: GLOBAL posix.system, a string argument, TUPLE1, REDUCE, STOP.
MALICIOUS = b"\x80\x02cposix\nsystem\nq\x00X\x19\x00\x00\x00echo airlock-sample-pwnedq\x01\x85q\x02Rq\x03."


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    for target, source in COPIES.items():
        shutil.copyfile(BENIGN / source, SAMPLES / target)
    (SAMPLES / "training_args.bin").write_bytes(MALICIOUS)


if __name__ == "__main__":
    main()
