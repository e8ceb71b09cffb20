#!/usr/bin/env python3
"""The Hugging Face Hub's conversion method, as the baseline for `airlock convert`.

Mirrors `convert_file` of the Hub's safetensors conversion script: `torch.load(weights_only=True)`,
unwrap a top-level "state_dict", drop the names that share storage with a kept name (keeping one
that covers the whole storage, recording {removed: kept} in the metadata), make every tensor
contiguous, `safetensors.torch.save_file` with metadata {"format": "pt"}. `--verify` adds the
script's reload-and-compare step (off by default, which favours the baseline). `--fsync` fsyncs the
output after writing it, for a like-for-like comparison with `airlock convert`, which fsyncs by default.

Only ever run on the benign checkpoints bench/make_data.py generated.
usage: hf_convert.py INPUT OUTPUT [--verify] [--fsync]
"""

import os
import sys
from collections import defaultdict

import torch
from safetensors.torch import load_file, save_file


def shared_groups(state):
    by_storage = defaultdict(set)
    for name, tensor in state.items():
        if tensor.device.type != "meta":
            by_storage[(tensor.untyped_storage().data_ptr(), tensor.device)].add(name)
    return [names for names in by_storage.values() if len(names) > 1]


def covers_storage(tensor):
    return tensor.data_ptr() == tensor.untyped_storage().data_ptr() and (
        tensor.nelement() * tensor.element_size() == tensor.untyped_storage().nbytes()
    )


def remove_duplicate_names(state):
    removed = {}
    for group in shared_groups(state):
        complete = sorted(n for n in group if covers_storage(state[n]))
        if not complete:
            raise RuntimeError(f"no name covers the whole shared storage of {sorted(group)}")
        keep = complete[0]
        for name in sorted(group - {keep}):
            removed[name] = keep
    return removed


def main():
    src, dst = sys.argv[1], sys.argv[2]
    loaded = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" in loaded:
        loaded = loaded["state_dict"]
    metadata = {"format": "pt"}
    for name, kept in remove_duplicate_names(loaded).items():
        metadata.setdefault(name, kept)
        del loaded[name]
    loaded = {k: v.contiguous() for k, v in loaded.items()}
    save_file(loaded, dst, metadata=metadata)
    if "--fsync" in sys.argv[3:]:
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if "--verify" in sys.argv[3:]:
        reloaded = load_file(dst)
        for k, v in loaded.items():
            if not torch.equal(v, reloaded[k]):
                raise RuntimeError(f"mismatch in {k}")
    print(f"converted {len(loaded)} tensors -> {dst}")


if __name__ == "__main__":
    main()
