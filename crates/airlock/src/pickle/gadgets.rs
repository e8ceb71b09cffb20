//! Resolver gadgets: importable functions that turn constant arguments into another object.
//!
//! `builtins.getattr(G, 'name')`, numpy's `_ufunc_reconstruct('module', 'name')`, dill's
//! `_load_type('Name')` and `_eval_repr('range(1, 5)')` are rated *dangerous* by name, because
//! with arbitrary arguments they reach anything (`getattr(os, 'system')`). Real libraries call
//! them with constants: pandas pickles a time-zone column as `getattr(zoneinfo.ZoneInfo,
//! '_unpickle')`, old NumPy pickles a ufunc as `_ufunc_reconstruct('numpy', 'add')`, dill a
//! type as `_load_type('bytearray')` and a `range` as `_eval_repr('range(3, 9, 2)')`.
//!
//! The pickle machine resolves such a call the way the loader would ([`resolve`]) and rates
//! the object it yields as an import of that global at the call's offset: the result *is*
//! that global, so calling it later is calling that global. Anything that cannot be resolved
//! exactly (a name that is not a constant identifier, a dunder or private name, an object that
//! is not an imported global, a default argument, keyword arguments, a string `_eval_repr`
//! would evaluate to anything but what dill writes) leaves the gadget rated as before. See
//! `docs/policy.md` ("Resolver gadgets").

use super::value::{Arena, Node, Value};

/// A function that resolves its constant arguments to another object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gadget {
    /// `builtins.getattr(obj, name)` (`__builtin__.getattr` and its re-exports).
    GetAttr,
    /// `numpy.core._ufunc_reconstruct(module, name)`: `getattr(__import__(module), name)`.
    UfuncReconstruct,
    /// `dill._dill._load_type(name)`: `_reverse_typemap[name]` ([`DILL_TYPEMAP`]).
    DillLoadType,
    /// `dill._dill._eval_repr(text)`: `eval(text)`; dill writes it for `range`, `Ellipsis` and
    /// `NotImplemented` (`save_singleton`).
    DillEvalRepr,
}

/// What a resolved gadget call yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The global `module.name`, exactly as if the pickle had imported it.
    Global { module: String, name: String },
    /// `range(*args)` with integer literals: data built by an allowlisted class.
    Range(Vec<i64>),
}

impl Gadget {
    /// The gadget a global is, through the unpickler's name mapping and the alias table
    /// (`__builtin__.getattr`, `enum.bltns.getattr`); `None` for everything else. Cheap
    /// for ordinary names (one suffix test, no allocation), as it runs for every import.
    pub fn of(module: &str, name: &str) -> Option<Gadget> {
        const SUFFIXES: [&str; 4] = ["getattr", "_ufunc_reconstruct", "_load_type", "_eval_repr"];
        if !SUFFIXES.iter().any(|s| name.ends_with(s)) {
            return None;
        }
        let (m, n) = crate::policy::normalize(module, name);
        let full = format!("{m}.{n}");
        let path = crate::policy::resolve_alias(&full).unwrap_or(full);
        match path.as_str() {
            "builtins.getattr" => Some(Gadget::GetAttr),
            "numpy.core._ufunc_reconstruct" | "numpy._core._ufunc_reconstruct" => {
                Some(Gadget::UfuncReconstruct)
            }
            "dill._dill._load_type" => Some(Gadget::DillLoadType),
            "dill._dill._eval_repr" => Some(Gadget::DillEvalRepr),
            _ => None,
        }
    }
}

/// Resolves one call of `gadget` with positional `args` (a tuple value) the way the loader
/// would, or says why it cannot be resolved exactly.
pub fn resolve(gadget: Gadget, arena: &Arena<'_>, args: Value) -> Result<Resolution, String> {
    let items = arena
        .seq_of(args)
        .filter(|_| matches!(arena.node(args), Some(Node::Tuple(_))))
        .ok_or("its arguments are not a tuple built by the pickle")?;
    match gadget {
        Gadget::GetAttr => resolve_getattr(arena, items),
        Gadget::UfuncReconstruct => match items {
            [module, name] => {
                let module = constant_text(arena, *module, "module")?;
                let name = attribute_name(arena, *name)?;
                if !super::machine::is_python_path(module) {
                    return Err(format!("module {module:?} is not a dotted Python name"));
                }
                Ok(Resolution::Global {
                    module: module.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!("it takes 2 arguments, not {}", items.len())),
        },
        Gadget::DillLoadType => match items {
            [name] => {
                let name = constant_text(arena, *name, "type name")?;
                let (module, name) =
                    dill_type(name).ok_or_else(|| format!("{name:?} is not in dill's type map"))?;
                Ok(Resolution::Global {
                    module: module.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!("it takes 1 argument, not {}", items.len())),
        },
        Gadget::DillEvalRepr => match items {
            [text] => eval_repr(constant_text(arena, *text, "expression")?),
            _ => Err(format!("it takes 1 argument, not {}", items.len())),
        },
    }
}

/// `getattr(G, 'name')` with `G` an imported global (or an earlier resolution) and `name` a
/// constant identifier: the global `G.module`, `G.name + '.' + name`. The three-argument form
/// (with a default) is not resolved: it hides whether the attribute exists.
fn resolve_getattr(arena: &Arena<'_>, items: &[Value]) -> Result<Resolution, String> {
    let [target, name] = items else {
        return Err(format!(
            "it is called with {} arguments (only getattr(global, 'name') is resolved)",
            items.len()
        ));
    };
    let name = attribute_name(arena, *name)?;
    let global = arena.global_of(*target).ok_or_else(|| {
        format!(
            "its object is {}, not an imported global",
            arena.describe(*target)
        )
    })?;
    if !super::machine::is_python_path(&global.module)
        || !super::machine::is_python_path(&global.name)
    {
        return Err("its object is a global computed at load time".into());
    }
    Ok(Resolution::Global {
        module: global.module.to_string(),
        name: format!("{}.{name}", global.name),
    })
}

fn constant_text<'x>(arena: &'x Arena<'_>, value: Value, what: &str) -> Result<&'x str, String> {
    arena.str_of(value).ok_or_else(|| {
        format!(
            "its {what} is {}, not a constant string",
            arena.describe(value)
        )
    })
}

/// A constant attribute name `getattr` can resolve: one identifier, not starting with `__`
/// (dunder names reach interpreter internals; `__x` names are private and name-mangled).
fn attribute_name<'x>(arena: &'x Arena<'_>, value: Value) -> Result<&'x str, String> {
    let name = constant_text(arena, value, "attribute name")?;
    if name.contains('.') || !super::machine::is_python_path(name) {
        return Err(format!("attribute name {name:?} is not an identifier"));
    }
    if name.starts_with("__") {
        return Err(format!(
            "attribute name {name:?} is a dunder or private name"
        ));
    }
    Ok(name)
}

/// What `eval` makes of the strings dill's `save_singleton` writes (`obj.__repr__()` of a
/// `range`, `Ellipsis` or `NotImplemented`), matched exactly: `range`'s repr is always
/// `range(start, stop)` or `range(start, stop, step)` with `, ` separators and canonical
/// integer literals. Anything else is arbitrary code for `eval`.
fn eval_repr(text: &str) -> Result<Resolution, String> {
    let global = |name: &str| Resolution::Global {
        module: "builtins".into(),
        name: name.into(),
    };
    match text {
        "Ellipsis" => return Ok(global("Ellipsis")),
        "NotImplemented" => return Ok(global("NotImplemented")),
        _ => {}
    }
    let refuse = || {
        let shown: String = text.chars().take(60).collect();
        format!("{shown:?} is not a repr dill writes (range, Ellipsis, NotImplemented)")
    };
    let inner = text
        .strip_prefix("range(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(refuse)?;
    let args: Vec<i64> = inner
        .split(", ")
        .map(int_literal)
        .collect::<Option<_>>()
        .ok_or_else(refuse)?;
    if !(2..=3).contains(&args.len()) {
        return Err(refuse());
    }
    Ok(Resolution::Range(args))
}

/// A canonical Python `int` repr that fits in an `i64` (`0`, `-12`; no `+`, no leading zeros,
/// no underscores).
fn int_literal(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// The global dill's `_reverse_typemap[name]` is, spelled as Python imports it.
fn dill_type(name: &str) -> Option<(&'static str, &'static str)> {
    DILL_TYPEMAP
        .binary_search_by(|(key, _, _)| (*key).cmp(name))
        .ok()
        .map(|i| (DILL_TYPEMAP[i].1, DILL_TYPEMAP[i].2))
}

/// dill's `_reverse_typemap` (dill 0.4.1 on CPython 3.11, `dill/_dill.py`
/// `_create_typemap()` and the hand-built entries after it), as `(key, module, name)`: the
/// `builtins` and `types` entries are the same objects as `builtins.<key>` / `types.<key>`;
/// the four hand-built ones are spelled by the class they are. Made by listing
/// `_reverse_typemap` in the benign-set virtualenv and checking each value is `builtins.<key>`
/// or `types.<key>` (`scripts/fixtures/make_resolver_gadgets.py --typemap` prints it). dill's
/// "incidental" entries (`FileType`, `DictKeysType`, ... implementation types with no public
/// spelling) are left out: `_load_type` of them stays dangerous, as any unknown name does.
/// The policy then rates the global: `types.CodeType` and `types.FunctionType` are dangerous.
const DILL_TYPEMAP: &[(&str, &str, &str)] = &[
    ("ArithmeticError", "builtins", "ArithmeticError"),
    ("AssertionError", "builtins", "AssertionError"),
    ("AsyncGeneratorType", "types", "AsyncGeneratorType"),
    ("AttrGetterType", "operator", "attrgetter"),
    ("AttributeError", "builtins", "AttributeError"),
    ("BaseException", "builtins", "BaseException"),
    ("BaseExceptionGroup", "builtins", "BaseExceptionGroup"),
    ("BlockingIOError", "builtins", "BlockingIOError"),
    ("BrokenPipeError", "builtins", "BrokenPipeError"),
    ("BufferError", "builtins", "BufferError"),
    ("BuiltinFunctionType", "types", "BuiltinFunctionType"),
    ("BuiltinMethodType", "types", "BuiltinMethodType"),
    ("BytesWarning", "builtins", "BytesWarning"),
    ("CellType", "types", "CellType"),
    ("ChildProcessError", "builtins", "ChildProcessError"),
    (
        "ClassMethodDescriptorType",
        "types",
        "ClassMethodDescriptorType",
    ),
    ("CodeType", "types", "CodeType"),
    (
        "ConnectionAbortedError",
        "builtins",
        "ConnectionAbortedError",
    ),
    ("ConnectionError", "builtins", "ConnectionError"),
    (
        "ConnectionRefusedError",
        "builtins",
        "ConnectionRefusedError",
    ),
    ("ConnectionResetError", "builtins", "ConnectionResetError"),
    ("CoroutineType", "types", "CoroutineType"),
    ("DeprecationWarning", "builtins", "DeprecationWarning"),
    ("EOFError", "builtins", "EOFError"),
    ("EllipsisType", "types", "EllipsisType"),
    ("EncodingWarning", "builtins", "EncodingWarning"),
    ("EnvironmentError", "builtins", "EnvironmentError"),
    ("Exception", "builtins", "Exception"),
    ("ExceptionGroup", "builtins", "ExceptionGroup"),
    ("FileExistsError", "builtins", "FileExistsError"),
    ("FileNotFoundError", "builtins", "FileNotFoundError"),
    ("FloatingPointError", "builtins", "FloatingPointError"),
    ("FrameType", "types", "FrameType"),
    ("FunctionType", "types", "FunctionType"),
    ("FutureWarning", "builtins", "FutureWarning"),
    ("GeneratorExit", "builtins", "GeneratorExit"),
    ("GeneratorType", "types", "GeneratorType"),
    ("GetSetDescriptorType", "types", "GetSetDescriptorType"),
    ("IOError", "builtins", "IOError"),
    ("ImportError", "builtins", "ImportError"),
    ("ImportWarning", "builtins", "ImportWarning"),
    ("IndentationError", "builtins", "IndentationError"),
    ("IndexError", "builtins", "IndexError"),
    ("InterruptedError", "builtins", "InterruptedError"),
    ("IsADirectoryError", "builtins", "IsADirectoryError"),
    ("ItemGetterType", "operator", "itemgetter"),
    ("KeyError", "builtins", "KeyError"),
    ("KeyboardInterrupt", "builtins", "KeyboardInterrupt"),
    ("LambdaType", "types", "LambdaType"),
    ("LookupError", "builtins", "LookupError"),
    ("MappingProxyType", "types", "MappingProxyType"),
    ("MemberDescriptorType", "types", "MemberDescriptorType"),
    ("MemoryError", "builtins", "MemoryError"),
    ("MethodDescriptorType", "types", "MethodDescriptorType"),
    ("MethodType", "types", "MethodType"),
    ("MethodWrapperType", "types", "MethodWrapperType"),
    ("ModuleNotFoundError", "builtins", "ModuleNotFoundError"),
    ("ModuleType", "types", "ModuleType"),
    ("NameError", "builtins", "NameError"),
    ("NoneType", "types", "NoneType"),
    ("NotADirectoryError", "builtins", "NotADirectoryError"),
    ("NotImplementedError", "builtins", "NotImplementedError"),
    ("NotImplementedType", "types", "NotImplementedType"),
    ("OSError", "builtins", "OSError"),
    ("OverflowError", "builtins", "OverflowError"),
    ("PartialType", "functools", "partial"),
    (
        "PendingDeprecationWarning",
        "builtins",
        "PendingDeprecationWarning",
    ),
    ("PermissionError", "builtins", "PermissionError"),
    ("ProcessLookupError", "builtins", "ProcessLookupError"),
    ("RecursionError", "builtins", "RecursionError"),
    ("ReferenceError", "builtins", "ReferenceError"),
    ("ResourceWarning", "builtins", "ResourceWarning"),
    ("RuntimeError", "builtins", "RuntimeError"),
    ("RuntimeWarning", "builtins", "RuntimeWarning"),
    ("StopAsyncIteration", "builtins", "StopAsyncIteration"),
    ("StopIteration", "builtins", "StopIteration"),
    ("SuperType", "builtins", "super"),
    ("SyntaxError", "builtins", "SyntaxError"),
    ("SyntaxWarning", "builtins", "SyntaxWarning"),
    ("SystemError", "builtins", "SystemError"),
    ("SystemExit", "builtins", "SystemExit"),
    ("TabError", "builtins", "TabError"),
    ("TimeoutError", "builtins", "TimeoutError"),
    ("TracebackType", "types", "TracebackType"),
    ("TypeError", "builtins", "TypeError"),
    ("UnboundLocalError", "builtins", "UnboundLocalError"),
    ("UnicodeDecodeError", "builtins", "UnicodeDecodeError"),
    ("UnicodeEncodeError", "builtins", "UnicodeEncodeError"),
    ("UnicodeError", "builtins", "UnicodeError"),
    ("UnicodeTranslateError", "builtins", "UnicodeTranslateError"),
    ("UnicodeWarning", "builtins", "UnicodeWarning"),
    ("UserWarning", "builtins", "UserWarning"),
    ("ValueError", "builtins", "ValueError"),
    ("Warning", "builtins", "Warning"),
    ("WrapperDescriptorType", "types", "WrapperDescriptorType"),
    ("ZeroDivisionError", "builtins", "ZeroDivisionError"),
    ("bool", "builtins", "bool"),
    ("bytearray", "builtins", "bytearray"),
    ("bytes", "builtins", "bytes"),
    ("classmethod", "builtins", "classmethod"),
    ("complex", "builtins", "complex"),
    ("dict", "builtins", "dict"),
    ("enumerate", "builtins", "enumerate"),
    ("filter", "builtins", "filter"),
    ("float", "builtins", "float"),
    ("frozenset", "builtins", "frozenset"),
    ("int", "builtins", "int"),
    ("list", "builtins", "list"),
    ("map", "builtins", "map"),
    ("memoryview", "builtins", "memoryview"),
    ("object", "builtins", "object"),
    ("property", "builtins", "property"),
    ("range", "builtins", "range"),
    ("reversed", "builtins", "reversed"),
    ("set", "builtins", "set"),
    ("slice", "builtins", "slice"),
    ("staticmethod", "builtins", "staticmethod"),
    ("str", "builtins", "str"),
    ("super", "builtins", "super"),
    ("tuple", "builtins", "tuple"),
    ("type", "builtins", "type"),
    ("zip", "builtins", "zip"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dill_typemap_is_sorted_for_binary_search() {
        for pair in DILL_TYPEMAP.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} !< {:?}", pair[0], pair[1]);
        }
        assert_eq!(dill_type("bytearray"), Some(("builtins", "bytearray")));
        assert_eq!(dill_type("CodeType"), Some(("types", "CodeType")));
        assert_eq!(dill_type("FileType"), None);
    }

    #[test]
    fn gadgets_are_found_under_every_spelling() {
        assert_eq!(Gadget::of("builtins", "getattr"), Some(Gadget::GetAttr));
        assert_eq!(Gadget::of("__builtin__", "getattr"), Some(Gadget::GetAttr));
        assert_eq!(
            Gadget::of("numpy.core", "_ufunc_reconstruct"),
            Some(Gadget::UfuncReconstruct)
        );
        assert_eq!(
            Gadget::of("numpy._core", "_ufunc_reconstruct"),
            Some(Gadget::UfuncReconstruct)
        );
        assert_eq!(
            Gadget::of("dill._dill", "_load_type"),
            Some(Gadget::DillLoadType)
        );
        assert_eq!(
            Gadget::of("dill._dill", "_eval_repr"),
            Some(Gadget::DillEvalRepr)
        );
        assert_eq!(Gadget::of("builtins", "setattr"), None);
        assert_eq!(Gadget::of("mylib", "getattr"), None);
    }

    #[test]
    fn eval_repr_accepts_only_what_dill_writes() {
        assert_eq!(
            eval_repr("range(3, 9, 2)"),
            Ok(Resolution::Range(vec![3, 9, 2]))
        );
        assert_eq!(eval_repr("range(0, 5)"), Ok(Resolution::Range(vec![0, 5])));
        assert_eq!(
            eval_repr("range(-4, -10, -1)"),
            Ok(Resolution::Range(vec![-4, -10, -1]))
        );
        assert!(matches!(
            eval_repr("Ellipsis"),
            Ok(Resolution::Global { ref name, .. }) if name == "Ellipsis"
        ));
        for bad in [
            "range(5)",
            "range(1,5)",
            "range(01, 5)",
            "range(-0, 5)",
            "range(1, 5, 2, 3)",
            "range(1_0, 5)",
            "range(+1, 5)",
            "range(1, 5) or __import__('os').system('id')",
            "range(1, __import__('os').system('id'))",
            "__import__('os').system('id')",
            "ellipsis",
            " Ellipsis",
            "range(99999999999999999999, 1)",
        ] {
            assert!(eval_repr(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
