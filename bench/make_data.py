#!/usr/bin/env python3
"""Generate the benchmark corpus under bench/data/ (deterministic, seeded).

Sets (each skipped when already complete, so re-running is cheap):
  small/      2,000 benign pickles of 1-100 KB: dicts/lists of Python objects, pickled
              NumPy arrays, scikit-learn models (joblib and pickle), small torch state dicts.
  medium/     200 torch.save state dicts of ~5 MB each.
  large/      3 torch.save checkpoints of ~1 GB, 300+ tensors, f32/f16/bf16, tied weights.
  pickle500/  one ~500 MB protocol-4 pickle made of many small objects (engine throughput).
  convert/    (only with --convert) checkpoints of ~1 GB and ~5 GB for `airlock convert`.

Every file here is benign and produced by the real libraries. Needs torch, numpy,
scikit-learn, joblib: run with bench/.venv/data/bin/python (see bench/setup.sh).

Large checkpoints are written without holding the model in memory: every tensor's storage
is a private read-only mapping of one scratch file of random bytes (torch's `from_file`), so
the bytes stream from the page cache into torch.save.
"""

import argparse
import io
import os
import pickle
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

SEED = 20261122
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data"
KB = 1024
MB = 1024 * KB
GB = 1024 * MB


def human(n):
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def folder_size(path):
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def done_marker(folder):
    # Beside the folder, not in it: the scanners must see only the corpus files.
    return folder.parent / f".{folder.name}.complete"


def is_done(folder):
    return done_marker(folder).exists()


def mark_done(folder):
    done_marker(folder).write_text("ok\n")


def fresh(folder):
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


# ---------------------------------------------------------------- small/


def random_word(rng, lo=3, hi=12):
    letters = "abcdefghijklmnopqrstuvwxyz_"
    return "".join(rng.choice(letters) for _ in range(rng.randint(lo, hi)))


def python_record(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return {"id": rng.randrange(10**9), "name": random_word(rng), "score": rng.random()}
    if kind == 1:
        return (random_word(rng), rng.randrange(1000), rng.random() * 100, rng.random() < 0.5)
    if kind == 2:
        return [rng.randrange(-(10**6), 10**6) for _ in range(rng.randint(1, 8))]
    if kind == 3:
        return {random_word(rng): random_word(rng, 5, 30) for _ in range(rng.randint(1, 4))}
    return random_word(rng, 10, 60).encode()


def write_python_objects(path, rng, target):
    records = []
    while len(pickle.dumps(records, 4)) < target:
        records.extend(python_record(rng) for _ in range(16))
    payload = {
        "version": rng.randint(1, 9),
        "config": {"lr": rng.random() / 100, "epochs": rng.randint(1, 50), "tags": ["a", "b"]},
        "records": records,
    }
    protocol = rng.choice([2, 3, 4, 5])
    path.with_suffix(".pkl").write_bytes(pickle.dumps(payload, protocol))


def write_numpy_array(path, rng, target):
    dtype = rng.choice([np.float32, np.float64, np.int64, np.int32, np.uint8])
    count = max(1, target // np.dtype(dtype).itemsize)
    nprng = np.random.default_rng(rng.randrange(2**32))
    arr = (nprng.standard_normal(count) * 100).astype(dtype)
    if rng.random() < 0.5 and count > 16:
        arr = arr[: count - count % 16].reshape(-1, 16)
    obj = arr if rng.random() < 0.5 else {"weights": arr, "mean": float(arr.mean())}
    path.with_suffix(".pkl").write_bytes(pickle.dumps(obj, rng.choice([2, 4, 5])))


def sklearn_model(rng, target):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    nprng = np.random.default_rng(rng.randrange(2**32))
    features = max(2, min(400, target // 800))
    x = nprng.standard_normal((200, features))
    y = (x[:, 0] + nprng.standard_normal(200) > 0).astype(int)
    kind = rng.randrange(5)
    if kind == 0:
        return LogisticRegression(max_iter=50).fit(x, y)
    if kind == 1:
        return Ridge().fit(x, x[:, 0])
    if kind == 2:
        return DecisionTreeClassifier(max_depth=rng.randint(3, 12), random_state=0).fit(x, y)
    if kind == 3:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=50)).fit(x, y)
    return PCA(n_components=min(features, 20)).fit(x)


def write_sklearn(path, rng, target):
    import warnings

    import joblib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sklearn_model(rng, target)
    if rng.random() < 0.6:
        joblib.dump(model, path.with_suffix(".joblib"))
    else:
        path.with_suffix(".pkl").write_bytes(pickle.dumps(model, 4))


def write_torch_small(path, rng, target):
    import torch

    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    state = {}
    remaining = max(64, target - 1500) // 4
    layer = 0
    while remaining > 0:
        out = rng.randint(2, 64)
        inp = max(1, min(remaining // out, rng.randint(2, 128)))
        state[f"layers.{layer}.weight"] = torch.randn(out, inp, generator=gen)
        state[f"layers.{layer}.bias"] = torch.randn(out, generator=gen)
        remaining -= out * inp + out
        layer += 1
    torch.save(state, path.with_suffix(".pt"))


SMALL_WRITERS = [
    (write_python_objects, 0.30),
    (write_numpy_array, 0.20),
    (write_sklearn, 0.20),
    (write_torch_small, 0.30),
]


def make_small(out, count):
    folder = out / "small"
    if is_done(folder):
        return
    fresh(folder)
    rng = random.Random(SEED)
    writers = [w for w, _ in SMALL_WRITERS]
    weights = [p for _, p in SMALL_WRITERS]
    for i in range(count):
        writer = rng.choices(writers, weights)[0]
        target = int(KB * 10 ** rng.uniform(0, 2))  # 1 KB .. 100 KB, log-uniform
        writer(folder / f"{i:04d}_{writer.__name__[6:]}", rng, target)
    mark_done(folder)


# ---------------------------------------------------------------- medium/


def make_medium(out, count, size):
    import torch

    folder = out / "medium"
    if is_done(folder):
        return
    fresh(folder)
    rng = random.Random(SEED + 1)
    gen = torch.Generator().manual_seed(SEED + 1)
    for i in range(count):
        state, remaining, layer = {}, size // 4, 0
        while remaining > 1024:
            cols = rng.choice([64, 128, 256, 512])
            rows = max(1, min(remaining // cols, rng.randint(64, 1024)))
            state[f"block.{layer}.weight"] = torch.randn(rows, cols, generator=gen)
            state[f"block.{layer}.bias"] = torch.randn(rows, generator=gen)
            remaining -= rows * cols + rows
            layer += 1
        torch.save(state, folder / f"model_{i:03d}.pt")
    mark_done(folder)


# ---------------------------------------------------------------- large checkpoints

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def scratch_file(out, nbytes):
    """A file of seeded random bytes that tensor storages map (page cache, not RSS)."""
    path = out / ".scratch.bin"
    if path.exists() and path.stat().st_size == nbytes:
        return path
    nprng = np.random.default_rng(SEED + 7)
    with open(path, "wb") as f:
        left = nbytes
        while left:
            chunk = min(left, 64 * MB)
            # float16 values below 1: every 2-byte half has an exponent field that is not
            # all ones, so the bytes read as finite float16, bfloat16 and float32 alike.
            values = np.clip(nprng.standard_normal(chunk // 2) * 0.02, -0.99, 0.99)
            f.write(values.astype(np.float16).tobytes())
            left -= chunk
    return path


def mapped_tensor(scratch, dtype, shape):
    import torch

    numel = 1
    for dim in shape:
        numel *= dim
    itemsize = torch.empty((), dtype=dtype).element_size()
    storage = torch.UntypedStorage.from_file(str(scratch), False, numel * itemsize)
    return torch.tensor([], dtype=dtype).set_(storage, 0, shape)


def transformer_layout(rng, total_bytes, min_tensors):
    """Tensor names/shapes/dtypes of a decoder-only model of roughly total_bytes."""
    dtype = rng.choice(DTYPE_NAMES)
    itemsize = 4 if dtype == "float32" else 2
    hidden = 1024
    vocab = 32000
    embed = vocab * hidden * itemsize
    per_layer = 12 * hidden * hidden * itemsize
    layers = max(min_tensors // 11 + 1, int((total_bytes - embed) / per_layer))
    # Keep the size on target: shrink the width when many layers are needed.
    while embed + layers * per_layer > total_bytes * 1.1 and hidden > 128:
        hidden //= 2
        embed = vocab * hidden * itemsize
        per_layer = 12 * hidden * hidden * itemsize
        layers = max(min_tensors // 11 + 1, int((total_bytes - embed) / per_layer))
    entries = [("model.embed_tokens.weight", dtype, (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}"
        layer_dtype = dtype if rng.random() < 0.8 else rng.choice(DTYPE_NAMES)
        entries += [
            (f"{p}.self_attn.q_proj.weight", layer_dtype, (hidden, hidden)),
            (f"{p}.self_attn.k_proj.weight", layer_dtype, (hidden, hidden)),
            (f"{p}.self_attn.v_proj.weight", layer_dtype, (hidden, hidden)),
            (f"{p}.self_attn.o_proj.weight", layer_dtype, (hidden, hidden)),
            (f"{p}.mlp.gate_proj.weight", layer_dtype, (hidden * 8 // 3, hidden)),
            (f"{p}.mlp.up_proj.weight", layer_dtype, (hidden * 8 // 3, hidden)),
            (f"{p}.mlp.down_proj.weight", layer_dtype, (hidden, hidden * 8 // 3)),
            (f"{p}.input_layernorm.weight", "float32", (hidden,)),
            (f"{p}.post_attention_layernorm.weight", "float32", (hidden,)),
            (f"{p}.self_attn.rotary_emb.inv_freq", "float32", (hidden // 32,)),
            (f"{p}.self_attn.o_proj.bias", layer_dtype, (hidden,)),
        ]
    entries.append(("model.norm.weight", "float32", (hidden,)))
    return entries


def make_checkpoint(path, out, rng, total_bytes, min_tensors):
    import torch

    entries = transformer_layout(rng, total_bytes, min_tensors)
    largest = max(
        torch.empty((), dtype=getattr(torch, d)).element_size() * int(np.prod(s))
        for _, d, s in entries
    )
    scratch = scratch_file(out, max(largest, 64 * MB))
    state = {}
    for name, dtype, shape in entries:
        state[name] = mapped_tensor(scratch, getattr(torch, dtype), shape)
    # Tied weights: the output head is the embedding (same tensor, two names), and
    # every 8th layer's k_proj is a view covering the first half of its q_proj storage
    # (a name whose tensor does not cover its whole storage, as the Hub converter meets).
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    for i, (name, _, _) in enumerate(entries):
        if name.endswith("q_proj.weight") and i % 88 == 1:
            q = state[name]
            state[name.replace("q_proj", "k_proj")] = q[: q.shape[0] // 2]
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": state} if rng.random() < 0.34 else state, tmp)
    os.replace(tmp, path)
    return len(state)


def make_large(out, count, size, folder_name="large", names=None):
    folder = out / folder_name
    if is_done(folder):
        return
    fresh(folder)
    rng = random.Random(SEED + 2 + len(folder_name))
    for i in range(count):
        name = names[i] if names else f"checkpoint_{i}.pt"
        target = size[i] if isinstance(size, list) else size
        tensors = make_checkpoint(folder / name, out, rng, target, 300)
        print(f"  {folder_name}/{name}: {tensors} names, {human((folder / name).stat().st_size)}")
    mark_done(folder)


# ---------------------------------------------------------------- pickle500/


class StreamedList:
    """Pickles as `list()` followed by APPENDS batches drawn from a generator, so a
    500 MB pickle is written without building the list in memory."""

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return (list, (), None, self.items)


def small_objects(rng, target_bytes, counter):
    words = [random_word(rng) for _ in range(5000)]
    while counter.tell() < target_bytes:
        n = rng.randrange(6)
        if n == 0:
            yield (rng.randrange(1 << 30), rng.random(), rng.choice(words))
        elif n == 1:
            yield {"id": rng.randrange(1 << 20), "name": rng.choice(words), "ok": True}
        elif n == 2:
            yield rng.randrange(-(1 << 40), 1 << 40)
        elif n == 3:
            yield rng.choice(words) + str(rng.randrange(1000))
        elif n == 4:
            yield [rng.random(), rng.random(), None]
        else:
            yield (rng.choice(words).encode(), rng.randrange(256))


def make_pickle500(out, size):
    folder = out / "pickle500"
    if is_done(folder):
        return
    fresh(folder)
    rng = random.Random(SEED + 3)
    path = folder / "objects.pkl"
    with open(path, "wb") as f:
        pickler = pickle.Pickler(f, protocol=4)
        pickler.fast = True  # no memo: the memo would keep every object alive
        pickler.dump(StreamedList(small_objects(rng, size, f)))
    mark_done(folder)


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["small", "medium", "large", "pickle500", "convert"],
        help="generate only these sets",
    )
    parser.add_argument("--convert", action="store_true", help="also generate convert/ (1 GB + 5 GB)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every size (e.g. 0.01 for a smoke test)")
    args = parser.parse_args()

    sets = args.only or ["small", "medium", "large", "pickle500"] + (["convert"] if args.convert else [])
    args.out.mkdir(parents=True, exist_ok=True)
    s = args.scale
    plan = {
        "small": lambda: make_small(args.out, max(10, int(2000 * s))),
        "medium": lambda: make_medium(args.out, max(2, int(200 * s)), 5 * MB),
        "large": lambda: make_large(args.out, 3, int(1 * GB * s)),
        "pickle500": lambda: make_pickle500(args.out, int(500 * MB * s)),
        "convert": lambda: make_large(
            args.out, 2, [int(1 * GB * s), int(5 * GB * s)], "convert", ["ckpt_1g.pt", "ckpt_5g.pt"]
        ),
    }
    for name in sets:
        start = time.monotonic()
        print(f"{name}: generating...", flush=True)
        plan[name]()
        files, total = folder_size(args.out / name)
        print(f"{name}: {files} files, {human(total)} ({time.monotonic() - start:.0f}s)", flush=True)
    scratch = args.out / ".scratch.bin"
    if scratch.exists():
        scratch.unlink()
    files, total = folder_size(args.out)
    print(f"total under {args.out}: {human(total)}")


if __name__ == "__main__":
    sys.exit(main())
