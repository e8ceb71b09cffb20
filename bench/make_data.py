#!/usr/bin/env python3
"""Generate the benchmark corpus under bench/data/ (deterministic, seeded).

Sets (each skipped when already complete, so re-running is cheap):
  small/      2,000 benign pickles of 1-100 KB: dicts/lists of Python objects, pickled
              NumPy arrays, scikit-learn models (joblib and pickle), small torch state dicts.
  medium/     200 torch.save state dicts of ~5 MB each.
  large/      3 torch.save checkpoints of ~1 GB, 300+ tensors, f32/f16/bf16, tied weights.
  pickle500/  one ~500 MB protocol-4 pickle made of many small objects (engine throughput).
  convert/    (only with --convert) checkpoints of ~1 GB and ~5 GB for `airlock convert`.
  formats/    (only with --formats) ~5 GB safetensors, ~4 GB GGUF, ONNX + ~500 MB external
              data, a Keras 3 .keras: issue 4's folder (also needs gguf, onnx, h5py, keras).

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


# ---------------------------------------------------------------- formats/
# One folder of non-pickle models (issue 4's performance target): a ~5 GB safetensors
# transformer, a ~4 GB llama-style GGUF, a ONNX model with ~500 MB of external data and a
# Keras 3 `.keras` model. The big files are written streaming: headers from the real format
# definitions, tensor bytes cycled from one in-memory block of random float16 values, so
# generation needs about 100 MB of RAM whatever the sizes.

PATTERN_BYTES = 16 * MB


class Pattern:
    """Seeded random float16 values in (-1, 1): any 2-byte-aligned run of them reads as
    finite float16, bfloat16 and float32 values, and as finite Q4_0/Q8_0 block scales."""

    def __init__(self, seed):
        nprng = np.random.default_rng(seed)
        values = np.clip(nprng.standard_normal(PATTERN_BYTES // 2) * 0.02, -0.99, 0.99)
        self.block = memoryview(values.astype(np.float16).tobytes())

    def write(self, f, nbytes, salt):
        """Write nbytes of pattern to f, starting at an even offset chosen by salt."""
        pos = (salt * 7919 * 2) % len(self.block)
        while nbytes:
            n = min(nbytes, len(self.block) - pos)
            f.write(self.block[pos : pos + n])
            nbytes -= n
            pos = 0


def pick_width(total_bytes, bytes_per_layer, fixed_bytes, min_layers, width, floor=64):
    """Halve the model width until at least min_layers layers fit into total_bytes."""
    while width > floor and fixed_bytes(width) + min_layers * bytes_per_layer(width) > total_bytes:
        width //= 2
    layers = max(min_layers, int((total_bytes - fixed_bytes(width)) // bytes_per_layer(width)))
    return width, layers


ST_DTYPES = {"float32": ("F32", 4), "float16": ("F16", 2), "bfloat16": ("BF16", 2)}


def safetensors_layout(rng, total_bytes):
    """A Llama-style decoder (hidden 2560 at full size: 31 layers, 283 tensors) in bfloat16,
    a quarter of the layers in float16, norms in float32, untied lm_head."""
    vocab = 32000

    def inter(h):
        return h * 8 // 3 // 256 * 256 or h * 2

    def per_layer(h):
        return 2 * (4 * h * h + 3 * h * inter(h))

    width, layers = pick_width(total_bytes, per_layer, lambda h: 2 * 2 * vocab * h, 4, 2560)
    h, ff = width, inter(width)
    entries = [("model.embed_tokens.weight", "bfloat16", (vocab, h))]
    for i in range(layers):
        p = f"model.layers.{i}"
        dt = "bfloat16" if rng.random() < 0.75 else "float16"
        entries += [
            (f"{p}.self_attn.q_proj.weight", dt, (h, h)),
            (f"{p}.self_attn.k_proj.weight", dt, (h, h)),
            (f"{p}.self_attn.v_proj.weight", dt, (h, h)),
            (f"{p}.self_attn.o_proj.weight", dt, (h, h)),
            (f"{p}.mlp.gate_proj.weight", dt, (ff, h)),
            (f"{p}.mlp.up_proj.weight", dt, (ff, h)),
            (f"{p}.mlp.down_proj.weight", dt, (h, ff)),
            (f"{p}.input_layernorm.weight", "float32", (h,)),
            (f"{p}.post_attention_layernorm.weight", "float32", (h,)),
        ]
    entries += [("model.norm.weight", "float32", (h,)), ("lm_head.weight", "bfloat16", (vocab, h))]
    return entries


def write_safetensors(path, entries, pattern):
    """The safetensors layout: u64 header length, JSON header (padded with spaces to a
    multiple of 8), then the tensors back to back, ordered like the library orders them
    (larger dtypes first, then by name)."""
    import json
    import struct

    order = sorted(entries, key=lambda e: (-ST_DTYPES[e[1]][1], e[0]))
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    sizes = []
    for name, dtype, shape in order:
        code, itemsize = ST_DTYPES[dtype]
        n = itemsize * int(np.prod(shape))
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        sizes.append(n)
        offset += n
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for i, n in enumerate(sizes):
            pattern.write(f, n, i)
    os.replace(tmp, path)
    return len(order)


def check_safetensors(path, expected):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:  # numpy: no torch import
        assert f.metadata() == {"format": "pt"}, f.metadata()
        keys = list(f.keys())
        assert len(keys) == expected, (len(keys), expected)
        f.get_slice(keys[0]).get_shape()


GGUF_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def gguf_vocab(rng, size):
    """A SentencePiece-like vocabulary: control tokens, 256 byte tokens, then words."""
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [2, 3, 3, 3, 3]  # UNKNOWN, CONTROL
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256  # BYTE
    seen = set(tokens)
    while len(tokens) < size:
        word = ("\u2581" if rng.random() < 0.6 else "") + random_word(rng, 1, 10)
        if word not in seen:
            seen.add(word)
            tokens.append(word)
            types.append(1)  # NORMAL
    scores = [0.0] * 261 + [-float(i) for i in range(size - 261)]
    return tokens[:size], scores[:size], types[:size]


def gguf_layout(total_bytes):
    """Llama-style tensors (numpy order: rows, cols): Q4_0 weights, Q8_0 attn_v and output,
    F16 token embedding... sized to total_bytes; F32 norms as llama.cpp keeps them."""
    from gguf import GGMLQuantizationType as Q

    vocab = 32000

    def q4(n):
        return n // 32 * 18

    def q8(n):
        return n // 32 * 34

    def inter(h):
        return h * 11008 // 4096 // 32 * 32

    def per_layer(h):
        return q4(3 * h * h) + q8(h * h) + q4(3 * h * inter(h)) + 8 * h

    width, layers = pick_width(total_bytes, per_layer, lambda h: q4(vocab * h) + q8(vocab * h), 4, 4096, 128)
    h, ff = width, inter(width)
    entries = [("token_embd.weight", Q.Q4_0, (vocab, h))]
    for i in range(layers):
        p = f"blk.{i}"
        entries += [
            (f"{p}.attn_norm.weight", Q.F32, (h,)),
            (f"{p}.attn_q.weight", Q.Q4_0, (h, h)),
            (f"{p}.attn_k.weight", Q.Q4_0, (h, h)),
            (f"{p}.attn_v.weight", Q.Q8_0, (h, h)),
            (f"{p}.attn_output.weight", Q.Q4_0, (h, h)),
            (f"{p}.ffn_norm.weight", Q.F32, (h,)),
            (f"{p}.ffn_gate.weight", Q.Q4_0, (ff, h)),
            (f"{p}.ffn_up.weight", Q.Q4_0, (ff, h)),
            (f"{p}.ffn_down.weight", Q.Q4_0, (h, ff)),
        ]
    entries += [("output_norm.weight", Q.F32, (h,)), ("output.weight", Q.Q8_0, (vocab, h))]
    # A little F16, as llama.cpp writes for small tensors it does not quantize.
    entries.append(("rope_freqs.weight", Q.F16, (h // 64,)))
    return entries, h, ff, layers, vocab


def gguf_nbytes(qtype, shape):
    from gguf import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * size


def write_gguf(path, rng, total_bytes, pattern):
    """GGUF v3 via gguf's GGUFWriter for header, metadata and tensor infos; the tensor
    data (each aligned to general.alignment = 32) is then appended streaming."""
    import gguf

    entries, h, ff, layers, vocab = gguf_layout(total_bytes)
    tokens, scores, types = gguf_vocab(rng, vocab)
    tmp = path.with_suffix(".tmp")
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name("Bench Llama 7B Chat")
    w.add_basename("bench-llama")
    w.add_size_label("7B")
    w.add_license("apache-2.0")
    w.add_context_length(4096)
    w.add_embedding_length(h)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_rope_dimension_count(128 if h >= 1024 else max(8, h // 32))
    w.add_head_count(max(1, h // 128))
    w.add_head_count_kv(max(1, h // 128))
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(GGUF_CHAT_TEMPLATE)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    sizes = []
    for name, qtype, shape in entries:
        n = gguf_nbytes(qtype, shape)
        # A non-uint8 dtype keeps the shape as given (element counts, numpy order).
        w.add_tensor_info(name, shape, np.dtype(np.float32), n, raw_dtype=qtype)
        sizes.append(n)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    align = gguf.GGUF_DEFAULT_ALIGNMENT
    with open(tmp, "ab") as f:
        f.write(b"\0" * (-f.tell() % align))
        for i, n in enumerate(sizes):
            pattern.write(f, n, 1000 + i)
            f.write(b"\0" * (-n % align))
    os.replace(tmp, path)
    return len(entries)


def check_gguf(path, expected):
    import gguf

    reader = gguf.GGUFReader(str(path))
    assert len(reader.tensors) == expected, (len(reader.tensors), expected)
    last = reader.tensors[-1]
    assert last.data_offset + last.n_bytes <= path.stat().st_size
    assert "tokenizer.chat_template" in reader.fields


def write_onnx(folder, total_bytes, pattern):
    """An MLP encoder (MatMul + Add + Gelu per block, a final LayerNorm-free projection)
    whose float32 initialisers all live in model.onnx.data, each at a 4 KB-aligned offset
    (as onnx.save_model(save_as_external_data=True) lays them out). The protobuf holds only
    the external-data pointers, so the 500 MB never pass through memory."""
    import onnx
    from onnx import TensorProto, helper

    def per_layer(h):
        return 4 * (2 * h * 4 * h + 5 * h)

    h, layers = pick_width(total_bytes, per_layer, lambda h: 0, 2, 1024)
    data_name = "model.onnx.data"
    inits, sizes, offset = [], [], 0

    def external(name, dims):
        nonlocal offset
        n = 4 * int(np.prod(dims))
        offset += -offset % 4096
        t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(n))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        inits.append(t)
        sizes.append((offset, n))
        offset += n
        return name

    nodes, x = [], "input"
    for i in range(layers):
        p = f"encoder.layer.{i}"
        w1 = external(f"{p}.intermediate.dense.weight", (h, 4 * h))
        b1 = external(f"{p}.intermediate.dense.bias", (4 * h,))
        w2 = external(f"{p}.output.dense.weight", (4 * h, h))
        b2 = external(f"{p}.output.dense.bias", (h,))
        nodes += [
            helper.make_node("MatMul", [x, w1], [f"{p}/mm1"], name=f"{p}/MatMul"),
            helper.make_node("Add", [f"{p}/mm1", b1], [f"{p}/add1"], name=f"{p}/Add"),
            helper.make_node("Gelu", [f"{p}/add1"], [f"{p}/gelu"], name=f"{p}/Gelu"),
            helper.make_node("MatMul", [f"{p}/gelu", w2], [f"{p}/mm2"], name=f"{p}/MatMul_1"),
            helper.make_node("Add", [f"{p}/mm2", b2], [f"{p}/add2"], name=f"{p}/Add_1"),
            helper.make_node("Add", [f"{p}/add2", x], [f"{p}/out"], name=f"{p}/Residual"),
        ]
        x = f"{p}/out"
    nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    graph = helper.make_graph(
        nodes,
        "bench_encoder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", h])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", h])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="pytorch", producer_version="2.5.0")
    with open(folder / data_name, "wb") as f:
        for i, (at, n) in enumerate(sizes):
            f.write(b"\0" * (at - f.tell()))
            pattern.write(f, n, 5000 + i)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    onnx.checker.check_model(str(folder / "model.onnx"))
    return len(inits)


def write_keras(path, total_bytes):
    """A real Keras 3 model saved by keras itself (torch backend): a small transformer
    text classifier, `.keras` zip of config.json, metadata.json, model.weights.h5."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(SEED)
    dim, seq = 256, 128
    vocab = max(1000, int(total_bytes * 0.8) // (4 * dim))
    inputs = keras.Input(shape=(seq,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab, dim, name="embedding")(inputs)
    for i in range(2):
        attn = keras.layers.MultiHeadAttention(num_heads=4, key_dim=dim // 4, name=f"block{i}_attention")(x, x)
        x = keras.layers.LayerNormalization(name=f"block{i}_norm1")(x + attn)
        ff = keras.layers.Dense(4 * dim, activation="gelu", name=f"block{i}_ff1")(x)
        ff = keras.layers.Dense(dim, name=f"block{i}_ff2")(ff)
        x = keras.layers.LayerNormalization(name=f"block{i}_norm2")(x + ff)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(8, activation="softmax", name="classifier")(x)
    model = keras.Model(inputs, outputs, name="text_classifier")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(path)
    return len(model.weights)


def make_formats(out, scale):
    folder = out / "formats"
    if is_done(folder):
        return
    fresh(folder)
    rng = random.Random(SEED + 5)
    pattern = Pattern(SEED + 6)
    st = folder / "model.safetensors"
    n = write_safetensors(st, safetensors_layout(rng, int(5 * GB * scale)), pattern)
    check_safetensors(st, n)
    print(f"  formats/{st.name}: {n} tensors, {human(st.stat().st_size)}", flush=True)
    gg = folder / "model.gguf"
    n = write_gguf(gg, rng, int(4 * GB * scale), pattern)
    check_gguf(gg, n)
    print(f"  formats/{gg.name}: {n} tensors, {human(gg.stat().st_size)}", flush=True)
    n = write_onnx(folder, int(500 * MB * scale), pattern)
    size = (folder / "model.onnx.data").stat().st_size
    print(f"  formats/model.onnx: {n} external initialisers, model.onnx.data {human(size)}", flush=True)
    ks = folder / "model.keras"
    n = write_keras(ks, max(2 * MB, int(64 * MB * scale)))
    print(f"  formats/{ks.name}: {n} weights, {human(ks.stat().st_size)}", flush=True)
    mark_done(folder)


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["small", "medium", "large", "pickle500", "convert", "formats"],
        help="generate only these sets",
    )
    parser.add_argument("--convert", action="store_true", help="also generate convert/ (1 GB + 5 GB)")
    parser.add_argument("--formats", action="store_true", help="also generate formats/ (safetensors, GGUF, ONNX, Keras: 9.5 GB)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every size (e.g. 0.01 for a smoke test)")
    args = parser.parse_args()

    sets = args.only or ["small", "medium", "large", "pickle500"] + (["convert"] if args.convert else []) + (["formats"] if args.formats else [])
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
        "formats": lambda: make_formats(args.out, s),
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
