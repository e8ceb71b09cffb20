#!/usr/bin/env python3
"""Write issue 21's evasion set under bench/evasions/out/: MALICIOUS files, never to be loaded.

Every file here is written byte by byte (pickle opcodes, zip members, .npy headers, JSON):
this script imports no ML library and never unpickles, renders or loads anything. The payloads
are inert commands (`echo airlock-evasion`), but a loader that opened these files WOULD run them:
do not open them with torch.load, numpy.load(allow_pickle=True), pickle.load, joblib.load,
keras.saving.load_model, dill.load or a Jinja renderer.

One folder per class of issue 21 ("Why"), several variants each. Every file is expected
to be rated dangerous; run_evasions.py scans the folder and prints the table.

    python3 bench/evasions/make_evasions.py [--out bench/evasions/out]
    python3 bench/evasions/make_evasions.py --out /tmp/ev --jsonl tests/fixtures/evasions/cases.jsonl
    python3 bench/evasions/make_evasions.py --jsonl tests/fixtures/evasions/cases.jsonl --check
"""

import argparse
import json
import shutil
import struct
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CMD = "echo airlock-evasion"


class FixedZip(zipfile.ZipFile):
    """A ZipFile whose members carry a fixed time, so that the output is byte-for-byte the
    same on every run (the committed test copy, tests/fixtures/evasions/, is checked by it)."""

    def writestr(self, name, data, compress_type=None, compresslevel=None):
        if isinstance(name, str):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = self.compression if compress_type is None else compress_type
            info.external_attr = 0o644 << 16
            name = info
        super().writestr(name, data, compress_type, compresslevel)


# ----------------------------------------------------------------- pickle opcodes by hand


def s(text):
    """SHORT_BINUNICODE / BINUNICODE of a str."""
    b = text.encode()
    return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + struct.pack("<I", len(b)) + b)


def stack_global(module, name):
    return s(module) + s(name) + b"\x93"


def call(module, name, *args):
    """module.name(*args) as protocol-4 opcodes: STACK_GLOBAL, MARK args TUPLE, REDUCE."""
    return stack_global(module, name) + b"(" + b"".join(args) + b"tR"


def pickle4(body):
    return b"\x80\x04" + body + b"."


# ----------------------------------------------------------------- classes


def aliased_names(d):
    """Module attributes that are dangerous modules under another name (protocol 4 dotted names)."""
    for module, name in [("random", "_os.system"), ("argparse", "_os.system"), ("enum", "bltns.eval"), ("tempfile", "_os.system"),
                         ("logging", "os.system"), ("pathlib", "os.system"), ("shutil", "os.system"), ("importlib", "_bootstrap._call_with_frames_removed")]:
        payload = s(CMD) if "eval" not in name else s("__import__('os').system('echo airlock-evasion')")
        if name.endswith("_call_with_frames_removed"):
            body = stack_global(module, name) + b"(" + stack_global("os", "system") + s(CMD) + b"tR"
        else:
            body = call(module, name, payload)
        (d / f"{module}_{name.replace('.', '_')}.pkl").write_bytes(pickle4(body))


def code_executing(d):
    """Callables that run code, load native libraries, import by name or fetch URLs."""
    cases = {
        "torch_fx_reduce_graph_module": call("torch.fx.graph_module", "reduce_graph_module", b"}", s("import os\nos.system('echo airlock-evasion')\n")),
        "torch_ops_load_library": call("torch.ops", "load_library", s("/tmp/libevil.so")),
        "cpp_extension_load_inline": call("torch.utils.cpp_extension", "load_inline", s("evil"), s("int x;")),
        "numpy_ctypeslib_load_library": call("numpy.ctypeslib", "load_library", s("libevil"), s("/tmp")),
        "pydoc_importfile": call("pydoc", "importfile", s("/tmp/evil.py")),
        "pydoc_safeimport": call("pydoc", "safeimport", s("os")),
        "unittest_loader_name": call("unittest.loader", "TestLoader.loadTestsFromName", s("os.system")),
        "model_zoo_load_url": call("torch.utils.model_zoo", "load_url", s("http://127.0.0.1/evil.pt")),
        "hub_load_state_dict_from_url": call("torch.hub", "load_state_dict_from_url", s("http://127.0.0.1/evil.pt")),
    }
    for name, body in cases.items():
        (d / f"{name}.pkl").write_bytes(pickle4(body))


def templates(d):
    """Chat templates that assemble dunder names while rendering and walk to os.popen."""
    routes = {
        # Control: the dunder names written out, which the token-based check already catches.
        "control_literal": "{{ cycler.__init__.__globals__.os.popen('echo airlock-evasion').read() }}",
        "tilde_concat": "{% set a = '__glo' ~ 'bals__' %}{% set i = '__in' ~ 'it__' %}{{ (cycler|attr(i)|attr(a)).os.popen('echo airlock-evasion').read() }}",
        "string_multiply": "{% set u = '_' * 2 %}{{ (cycler|attr(u ~ 'init' ~ u)|attr(u ~ 'globals' ~ u)).os.popen('echo airlock-evasion').read() }}",
        "set_block": "{% set i %}__init__{% endset %}{% set g %}__globals__{% endset %}{{ (cycler|attr(i)|attr(g)).os.popen('echo airlock-evasion').read() }}",
        "format_filter": "{% set i = '%c%cinit%c%c'|format(95,95,95,95) %}{% set g = '%c%cglobals%c%c'|format(95,95,95,95) %}{{ (joiner|attr(i)|attr(g)).os.popen('echo airlock-evasion').read() }}",
        "str_format_method": "{% set i = '{0}{0}init{0}{0}'.format('_') %}{% set g = '{0}{0}globals{0}{0}'.format('_') %}{{ (namespace|attr(i)|attr(g)).os.popen('echo airlock-evasion').read() }}",
        "join_filter": "{% set i = ['_','_','init','_','_']|join %}{% set g = ['__','globals','__']|join %}{{ (cycler|attr(i)|attr(g)).get('os').popen('echo airlock-evasion').read() }}",
        "replace_filter": "{% set i = 'XXinitXX'|replace('X','_') %}{% set g = 'XXglobalsXX'|replace('X','_') %}{{ (lipsum|attr(g)).get('os').popen('echo airlock-evasion').read() }}",
        "loop_accumulate": "{% set ns = namespace(n='') %}{% for c in ['_','_','globals','_','_'] %}{% set ns.n = ns.n ~ c %}{% endfor %}{{ (lipsum|attr(ns.n)).os.popen('echo airlock-evasion').read() }}",
        "get_item_chain": "{{ lipsum['__glob' ~ 'als__'].get('__buil' ~ 'tins__').get('__imp' ~ 'ort__')('os').popen('echo airlock-evasion').read() }}",
        "reverse_filter": "{% set g = '__slabolg__'|reverse %}{{ (lipsum|attr(g)).os.popen('echo airlock-evasion').read() }}",
    }
    routes.update(fully_folded())
    for name, tpl in routes.items():
        # Where transformers reads it (tokenizer_config.json) and where llama.cpp reads it (GGUF).
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": tpl, "bos_token": "<s>", "eos_token": "</s>"}
        sub = d / name
        sub.mkdir()
        (sub / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))
        (sub / "model.gguf").write_bytes(gguf_with_template(tpl))


def _codes(text):
    return ",".join(str(ord(c)) for c in text)


# Each route spells a name without writing it: (variable, name) -> template statement.
FOLDS = {
    "tilde": lambda v, t: f"{{% set {v} = '{t[: len(t) // 2]}' ~ '{t[len(t) // 2:]}' %}}",
    "multiply": lambda v, t: f"{{% set {v} = " + " ~ ".join(f"'{c}' * 1" if c != "_" else "'_' * 1" for c in t) + " %}",
    "set_block": lambda v, t: f"{{% set {v} %}}{t[:1]}{{{{ '{t[1:]}' }}}}{{% endset %}}",
    "format_filter": lambda v, t: f"{{% set {v} = '{'%c' * len(t)}'|format({_codes(t)}) %}}",
    "str_format": lambda v, t: f"{{% set {v} = '{'{}' * len(t)}'.format({', '.join(repr(c) for c in t)}) %}}",
    "join": lambda v, t: f"{{% set {v} = {list(t)!r}|join %}}",
    "replace": lambda v, t: f"{{% set {v} = '{t.replace('_', 'Q').replace('o', 'Z')}'|replace('Q', '_')|replace('Z', 'o') %}}",
    "reverse": lambda v, t: f"{{% set {v} = '{t[::-1]}'|reverse %}}",
    "loop": lambda v, t: f"{{% set ns_{v} = namespace(s='') %}}{{% for c in {list(t)!r} %}}{{% set ns_{v}.s = ns_{v}.s ~ c %}}{{% endfor %}}{{% set {v} = ns_{v}.s %}}",
}


def fully_folded():
    """Every name on the walk (dunders, `os`, `popen`, `read`) folded, walked with attr and get."""
    names = {"i": "__init__", "g": "__globals__", "o": "os", "p": "popen", "r": "read"}
    out = {}
    for route, fold in FOLDS.items():
        sets = "".join(fold(v, t) for v, t in names.items())
        out[f"folded_{route}_attr"] = sets + "{{ (((cycler|attr(i)|attr(g)).get(o)|attr(p))('echo airlock-evasion')|attr(r))() }}"
        out[f"folded_{route}_item"] = sets + "{{ ((lipsum|attr(g))[o]|attr(p))('echo airlock-evasion')|attr(r) }}"
    return out


def gguf_str(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_with_template(template):
    """A GGUF v3 file with no tensors and three metadata strings (type 8), padded to 32 bytes."""
    kvs = [("general.architecture", "llama"), ("general.name", "evasion"), ("tokenizer.chat_template", template)]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, value in kvs:
        out += gguf_str(key) + struct.pack("<I", 8) + gguf_str(value)
    return out + b"\0" * (-len(out) % 32)


def zip_methods(d):
    """A pickle payload in zip members compressed with LZMA (14) and bzip2 (12): zipfile reads both."""
    payload = pickle4(call("os", "system", s(CMD)))
    for method, tag in ((zipfile.ZIP_LZMA, "lzma"), (zipfile.ZIP_BZIP2, "bzip2")):
        # torch.save layout: archive/data.pkl + archive/version (torch's own reader refuses these
        # methods; Python-zipfile loaders below do not).
        with FixedZip(d / f"torch_like_{tag}.pt", "w", compression=method) as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/version", "3\n")
        # np.savez layout: an object array whose body is the pickle (numpy.load uses zipfile).
        with FixedZip(d / f"npz_object_{tag}.npz", "w", compression=method) as z:
            z.writestr("x.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", payload))
        # Plain pickle-in-zip, as a joblib/zip loader of user code would read it.
        with FixedZip(d / f"pickle_in_zip_{tag}.zip", "w", compression=method) as z:
            z.writestr("model.pkl", payload)
        # Keras archive whose config names a Lambda with bytecode is out of scope here; a config
        # member compressed with the method is enough to test that it is read.
        with FixedZip(d / f"keras_{tag}.keras", "w", compression=method) as z:
            z.writestr("config.json", json.dumps({"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}}))
            z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))


def npy_bytes(header, body, version=1):
    header = header.ljust(len(header) + 1)
    if version == 1:
        pad = (-(10 + len(header) + 1)) % 64
        h = (header + " " * pad + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + body
    pad = (-(12 + len(header) + 1)) % 64
    h = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h)) + h + body


def numpy_big_header(d):
    """Object-dtype .npy headers over numpy's 10,000-character cap: allow_pickle=True lifts it."""
    payload = pickle4(call("os", "system", s(CMD)))
    base = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    for size in (10_001, 20_000, 200_000):
        (d / f"big_header_v2_{size}.npy").write_bytes(npy_bytes(base + " " * (size - len(base)), payload, version=2))
    # Padding inside the dict (a long key the parser must step over) rather than trailing spaces.
    long_dict = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'pad': '" + "A" * 12_000 + "'}"
    (d / "big_header_dict_pad.npy").write_bytes(npy_bytes(long_dict, payload, version=2))


def torchscript_list_helpers(d):
    """torch.jit._pickle list helpers handed a call result or a callable."""
    for helper in ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "restore_type_tag"):
        extra = s("List[int]") if helper == "restore_type_tag" else b""
        body = stack_global("torch.jit._pickle", helper) + b"(" + call("os", "system", s(CMD)) + extra + b"tR"
        (d / f"{helper}_call.pkl").write_bytes(pickle4(body))
        body = stack_global("torch.jit._pickle", helper) + b"(" + call("random", "_os.system", s(CMD)) + extra + b"tR"
        (d / f"{helper}_aliased.pkl").write_bytes(pickle4(body))
    with FixedZip(d / "scripted_archive.pt", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle4(stack_global("torch.jit._pickle", "build_intlist") + b"(" + call("os", "system", s(CMD)) + b"tR"))
        z.writestr("archive/constants.pkl", pickle4(b")"))
        z.writestr("archive/code/__torch__.py", "class M(Module):\n  def forward(self):\n    return 1\n")
        z.writestr("archive/version", "3\n")


def dill_array_helper(d):
    """dill._dill._create_array(f, args, state, npdict) calls f(*args): f smuggled in."""
    variants = {
        "os_system": stack_global("os", "system"),
        "builtins_eval": stack_global("builtins", "eval"),
        "aliased_random_os": stack_global("random", "_os.system"),
        "getattr_chain": call("builtins", "getattr", call("importlib", "import_module", s("os")), s("system")),
    }
    for name, func in variants.items():
        arg = s(CMD) if name != "builtins_eval" else s("__import__('os').system('echo airlock-evasion')")
        body = stack_global("dill._dill", "_create_array") + b"(" + func + b"(" + arg + b"t" + b"N" + b"}" + b"tR"
        (d / f"create_array_{name}.pkl").write_bytes(pickle4(body))


def keras_archive(path, config, members=()):
    with FixedZip(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(config))
        for name in members:
            z.writestr(name, json.dumps({"keras_version": "3.15.1", "date_saved": "2026-12-07@00:00:00"}))


def sequential(*layers):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "input"}}, *layers]},
        "registered_name": None}


def lambda_layer():
    # compile() builds a code object from source without running it; marshal serialises it the
    # way Keras' Lambda does (base64 of marshal.dumps(function.__code__)).
    import base64
    import marshal

    module = compile("f = lambda x: __import__('os').system('echo airlock-evasion') or x", "<evasion>", "exec")
    code = next(c for c in module.co_consts if hasattr(c, "co_code"))
    fn = {"class_name": "__lambda__", "config": {"code": base64.b64encode(marshal.dumps(code)).decode(), "defaults": None, "closure": None}}
    return {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "lambda", "function": fn, "arguments": {}}, "registered_name": None}


def keras_config_only(d):
    """.keras archives holding config.json (and maybe metadata.json) but no weights: the loader
    deserialises the config, running a Lambda, before it looks for weights."""
    keras_archive(d / "lambda_config_only.keras", sequential(lambda_layer()))
    keras_archive(d / "lambda_config_metadata.keras", sequential(lambda_layer()), ["metadata.json"])
    keras_archive(d / "lambda_functional_config_only.keras", {"module": "keras", "class_name": "Functional", "config": {"name": "f", "layers": [lambda_layer()], "input_layers": [], "output_layers": []}})


def keras_host_paths(d):
    """Preprocessing layers whose file arguments name host paths or URLs, read when the config is built."""
    cases = {
        "textvectorization_etc_passwd": ("TextVectorization", {"vocabulary": "/etc/passwd", "max_tokens": None, "output_mode": "int"}),
        "stringlookup_url": ("StringLookup", {"vocabulary": "http://127.0.0.1/vocab.txt", "num_oov_indices": 1}),
        "integerlookup_ssh_key": ("IntegerLookup", {"vocabulary": "/root/.ssh/id_rsa"}),
        "textvectorization_idf_weights_path": ("TextVectorization", {"vocabulary": "~/.aws/credentials", "output_mode": "tf_idf", "idf_weights": "/etc/shadow"}),
    }
    for name, (cls, cfg) in cases.items():
        layer = {"module": "keras.layers", "class_name": cls, "config": {"name": name, **cfg}, "registered_name": None}
        keras_archive(d / f"{name}.keras", sequential(layer), ["metadata.json"])


def pb_field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    key, size = varint(number << 3 | 2), varint(len(payload))
    return key + size + payload


def varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def saved_model(d):
    """Minimal saved_model.pb files whose graph holds a PyFunc node (runs a registered Python
    function) or file-reading ops; the first bytes are protobuf, never text."""
    for name, op, attrs in (("pyfunc", "PyFunc", {"token": b"pyfunc_0"}), ("eager_pyfunc", "EagerPyFunc", {"token": b"pyfunc_1"}),
                            ("readfile", "ReadFile", {}), ("writefile", "WriteFile", {})):
        attr_entries = b"".join(pb_field(5, pb_field(1, k.encode()) + pb_field(2, pb_field(2, v))) for k, v in attrs.items())
        node = pb_field(1, f"{op.lower()}_node".encode()) + pb_field(2, op.encode()) + attr_entries
        graph_def = pb_field(1, node)
        meta_graph = pb_field(2, graph_def)
        pb = b"\x08\x01" + pb_field(2, meta_graph)  # saved_model_schema_version = 1, meta_graphs
        sub = d / name
        sub.mkdir()
        (sub / "saved_model.pb").write_bytes(pb)


CLASSES = {
    "names": aliased_names,
    "code_executing": code_executing,
    "templates": templates,
    "zip_methods": zip_methods,
    "numpy_header": numpy_big_header,
    "torchscript_helpers": torchscript_list_helpers,
    "dill_helper": dill_array_helper,
    "keras_config_only": keras_config_only,
    "keras_host_paths": keras_host_paths,
    "saved_model": saved_model,
}


# Where Airlock reads a chat template of a repository's `tokenizer_config.json`: the repository
# checks of issue 23, not the file scan of issue 21. Until then these rows are carried in the
# committed copy with `pending` set, and the test reports rather than asserts them.
PENDING = {"tokenizer_config.json": "issue 23 (repository checks read tokenizer_config.json)"}


def write_jsonl(out_dir: Path, jsonl: Path) -> str:
    """Every file under `out_dir` as one JSON line (base64 bytes, never a loadable file)."""
    import base64

    lines = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(out_dir).as_posix()
        row = {
            "class": rel.split("/")[0],
            "path": rel,
            "expected": "dangerous",
            "pending": PENDING.get(path.name),
            "data": base64.b64encode(path.read_bytes()).decode(),
        }
        lines.append(json.dumps(row, sort_keys=True))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--jsonl", type=Path, help="also pack every file into this JSON-lines file "
                    "(the test copy: tests/fixtures/evasions/cases.jsonl)")
    ap.add_argument("--check", action="store_true",
                    help="with --jsonl: fail if that file is not what this script writes")
    args = ap.parse_args()
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for name, maker in CLASSES.items():
                (Path(tmp) / name).mkdir()
                maker(Path(tmp) / name)
            if args.jsonl.read_text() != write_jsonl(Path(tmp), args.jsonl):
                raise SystemExit(f"{args.jsonl} is not current: run {__file__} --jsonl {args.jsonl}")
        print(f"{args.jsonl} is current")
        return
    if args.out.exists():
        shutil.rmtree(args.out)
    for name, maker in CLASSES.items():
        d = args.out / name
        d.mkdir(parents=True)
        maker(d)
    n = sum(1 for p in args.out.rglob("*") if p.is_file())
    print(f"{n} malicious (inert) files in {len(CLASSES)} classes under {args.out}")
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        args.jsonl.write_text(write_jsonl(args.out, args.jsonl))
        print(f"packed into {args.jsonl}")


if __name__ == "__main__":
    main()
