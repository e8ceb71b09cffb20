"""Walks the standard library and the ML packages Airlock's profiles cover, and writes two
generated tables for `crates/airlock/src/policy/`:

    python walk_names.py aliases OUT.txt   # module attributes that re-export other objects
    python walk_names.py dangerous OUT.txt # callables whose own source runs code, loads native
                                           # code, imports by name or opens URLs

Run through `scripts/policy/gen-names.sh` (a throwaway virtualenv with the packages). Nothing
is unpickled; modules are imported (their import-time code runs, as it would in any program
that uses them), never called.

**Aliases** (`path<TAB>target`): for every walked module `M` and attribute `a` of `vars(M)`:
- `a` is a module whose `__name__` is not `M.a` (`random._os` → `os`, `enum.bltns` →
  `builtins`, `numpy._utils._inspect`...): recorded when the target module is, or contains,
  something the denylist labels (bounded: `sklearn.base.np` → `numpy` is kept because of
  `numpy.load`; an alias to a harmless module is not);
- `a` is a function, builtin or class whose canonical `__module__.__qualname__` differs from
  `M.a` and is itself labelled by the denylist (`torch.serialization.pickle_load`...).
Python resolves `find_class(M, "a.b")` by `getattr` walks, so Airlock resolves a dotted name
through this table before labelling it.

**Dangerous callables** (`category<TAB>path`): a function defined in a walked module whose
source *directly* calls a sink with a non-literal first argument (by AST: a bare `exec(...)`, `eval(...)`,
`compile(...)`, `__import__(...)`, or an attribute call `x.import_module(...)`,
`x.CDLL(...)`, `x.dlopen(...)`, `x.LoadLibrary(...)`, `x.load_library(...)`,
`x.urlopen(...)`, `x.urlretrieve(...)`, `x.load_state_dict_from_url(...)`). Transitive
callers are not followed (bounded); `NOT_SINKS` are reviewed exceptions; the reviewed explicit list in `denylist.rs` covers the
well-known wrappers (`torch.hub.load`, `unittest` loaders, ...). The list only labels: a
missing entry makes a global *suspicious*, never safe.
"""

import ast
import contextlib
import importlib
import inspect
import io
import os
import pkgutil
import re
import sys
import textwrap
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DENYLIST_RS = os.path.join(ROOT, "crates/airlock/src/policy/denylist.rs")

# Third-party packages the profiles cover (walked when importable).
PACKAGES = [
    "numpy", "torch", "sklearn", "joblib", "safetensors", "scipy", "pandas", "dill",
    "omegaconf", "lightgbm", "xgboost", "catboost", "statsmodels", "gensim", "yaml",
]

# Never imported: side effects at import (a browser, printing, GUI) or test suites.
SKIP_PARTS = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__",
    "test", "tests", "testing", "_testing", "conftest", "benchmarks", "_pyrepl",
    "lib2to3", "ensurepip", "venv", "pydoc_data",
}
# Subtrees that are slow or noisy to import and already denylisted as a whole.
SKIP_PREFIXES = (
    "torch._inductor", "torch._dynamo", "torch.utils.tensorboard", "torch.testing",
    "torch.distributed", "torch.onnx", "torch._export", "torch.export", "torch.contrib",
    "numpy.f2py", "numpy.distutils", "scipy._lib.array_api_compat", "torch._functorch",
    "torch.ao", "torch._numpy", "torch.backends._coreml", "torch.utils.benchmark",
    "sklearn.externals", "catboost.widget", "pandas.io.clipboard", "torch._higher_order_ops",
    "torch._prims", "torch._refs", "torch._decomp",
)

SINK_NAMES = {"exec": "code", "eval": "code", "compile": "code", "__import__": "import"}
SINK_ATTRS = {
    "import_module": "import", "CDLL": "native", "PyDLL": "native", "WinDLL": "native",
    "dlopen": "native", "LoadLibrary": "native", "load_library": "native",
    "urlopen": "url", "urlretrieve": "url", "load_state_dict_from_url": "url",
    "download_url_to_file": "url",
}
# Reviewed: they call a sink but cannot be steered into running code by their arguments.
NOT_SINKS = {
    "ast.parse",  # compile(..., PyCF_ONLY_AST): builds a tree, runs nothing
    "encodings.search_function",  # imports only `encodings.<normalised codec name>`
}
CATEGORY = {"code": "CodeExecution", "import": "Resolver", "native": "NativeCode", "url": "Network"}


def denylist_entries():
    """The hand-written denylist paths (quoted strings inside `GROUPS` in denylist.rs)."""
    text = open(DENYLIST_RS).read()
    body = text[text.index("const GROUPS"):text.index("static TABLE")]
    return set(re.findall(r'"([A-Za-z_][\w.]*)"', body))


def labelled(path, entries):
    parts = path.split(".")
    return any(".".join(parts[:i]) in entries for i in range(1, len(parts) + 1))


def contains_labelled(module, entries):
    return labelled(module, entries) or any(e.startswith(module + ".") for e in entries)


def skipped(name):
    return bool(SKIP_PARTS.intersection(name.split("."))) or name.startswith(SKIP_PREFIXES)


def quiet_import(name):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module that fails to import is skipped
            return None


def walk(top):
    """`top` and every submodule below it that imports, in a deterministic order."""
    if skipped(top):
        return
    module = quiet_import(top)
    if module is None:
        return
    yield module
    path = getattr(module, "__path__", None)
    if not path:
        return
    for info in sorted(pkgutil.iter_modules(path, top + "."), key=lambda i: i.name):
        yield from walk(info.name)


def walked_modules():
    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_") or n in
                   {"_osx_support", "_aix_support", "_pyio", "_compat_pickle", "_strptime"})
    seen = {}
    for top in names + PACKAGES:
        for module in walk(top):
            seen.setdefault(module.__name__, module)
    return [seen[k] for k in sorted(seen)]


def canonical(obj):
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    return f"{module}.{qualname}"


def aliases(out):
    entries = denylist_entries()
    rows = {}
    for module in walked_modules():
        mname = module.__name__
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("__") and attr.endswith("__"):
                continue
            path = f"{mname}.{attr}"
            if isinstance(value, types.ModuleType):
                target = value.__name__
                if target != path and contains_labelled(target, entries):
                    rows[path] = target
            elif callable(value):
                target = canonical(value)
                if target and target != path and labelled(target, entries) \
                        and not labelled(path, entries):
                    rows[path] = target
    with open(out, "w") as f:
        f.write(header("aliases", "path\ttarget: `path` is the object `target` names"))
        for path in sorted(rows):
            f.write(f"{path}\t{rows[path]}\n")
    print(f"{len(rows)} aliases", file=sys.stderr)


def sinks_in(source):
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if node.args and isinstance(node.args[0], ast.Constant):
            continue  # a literal operand: the callee picks what runs, not its caller
        func = node.func
        if isinstance(func, ast.Name) and func.id in SINK_NAMES:
            found.add(SINK_NAMES[func.id])
        elif isinstance(func, ast.Attribute) and func.attr in SINK_ATTRS:
            found.add(SINK_ATTRS[func.attr])
    return found


def dangerous(out):
    entries = denylist_entries()
    rows = {}
    for module in walked_modules():
        mname = module.__name__
        for attr, value in sorted(vars(module).items()):
            objs = []
            if inspect.isfunction(value) and value.__module__ == mname:
                objs.append((f"{mname}.{attr}", value))
            elif inspect.isclass(value) and value.__module__ == mname:
                for mattr, meth in sorted(vars(value).items()):
                    if inspect.isfunction(meth) and mattr in ("__init__", "__new__", "__call__",
                                                               "__setstate__", "__reduce__"):
                        objs.append((f"{mname}.{attr}", meth))
            for path, fn in objs:
                if labelled(path, entries) or path in NOT_SINKS:
                    continue
                try:
                    source = inspect.getsource(fn)
                except (OSError, TypeError):
                    continue
                kinds = sinks_in(source)
                # `compile` is also `re.compile`'s name when imported bare; count it only when
                # the function's module does not bind `compile` to something else.
                if kinds == {"code"} and "compile" in source and not re.search(
                        r"\b(exec|eval)\s*\(", source) and getattr(module, "compile", compile) \
                        is not compile:
                    continue
                for kind in sorted(kinds):
                    rows.setdefault(path, CATEGORY[kind])
    with open(out, "w") as f:
        f.write(header("dangerous", "category\tpath: a callable whose source calls a sink"))
        for path in sorted(rows):
            f.write(f"{rows[path]}\t{path}\n")
    print(f"{len(rows)} dangerous callables", file=sys.stderr)


def header(kind, columns):
    versions = []
    for name in PACKAGES:
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            versions.append(f"{name} {mod.__version__}")
    return (f"# GENERATED by scripts/policy/walk_names.py {kind}; do not edit by hand.\n"
            f"# Python {sys.version.split()[0]}; {', '.join(versions)}\n# {columns}\n")


if __name__ == "__main__":
    {"aliases": aliases, "dangerous": dangerous}[sys.argv[1]](sys.argv[2])
