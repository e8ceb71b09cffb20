//! Values of the symbolic machine: what the unpickler's stack and memo would hold, without
//! ever creating a Python object.
//!
//! Small atoms (None, bools, ints, floats, strings and bytes that borrow from the input) are
//! [`Value`]s, copied freely; everything with identity (containers, imported globals, call
//! results, persistent loads) lives in the [`Arena`] and is referenced by index, so that
//! memo `GET` shares it exactly as CPython shares the object, and mutation through one
//! reference (`APPEND` to a memoized list) is seen through every other.

use std::borrow::Cow;

use super::reader::Long;
use crate::report::Rating;

/// A byte range of the input.
///
/// Packed to 4-byte alignment so that a [`Value`] holding one takes 16 bytes instead of 24:
/// every stack slot, memo entry and tuple item is a `Value`, and on a checkpoint's `data.pkl`
/// the page faults of touching that memory cost more than decoding the opcodes. Fields are
/// read by value (`span.start`), never borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct Span {
    pub start: u64,
    pub len: u32,
}

/// Index of a node in the arena.
pub type NodeId = u32;

/// One stack or memo entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A `str` borrowed from the input (valid UTF-8).
    Str(Span),
    /// A `bytes` borrowed from the input.
    Bytes(Span),
    Node(NodeId),
}

const _: () = assert!(std::mem::size_of::<Value>() == 16);
const _: () = assert!(std::mem::size_of::<Node<'static>>() == 32);

/// How a call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Reduce,
    NewObj,
    NewObjEx,
    Obj,
    Inst,
}

impl CallKind {
    pub fn opcode_name(self) -> &'static str {
        match self {
            CallKind::Reduce => "REDUCE",
            CallKind::NewObj => "NEWOBJ",
            CallKind::NewObjEx => "NEWOBJ_EX",
            CallKind::Obj => "OBJ",
            CallKind::Inst => "INST",
        }
    }
}

/// An imported global (`find_class` result).
#[derive(Debug, Clone, PartialEq)]
pub struct Global<'a> {
    pub module: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub offset: u64,
    pub rating: Rating,
    pub loads_nested: bool,
    /// The global is a resolver gadget (`builtins.getattr`, ...): calls of it with constant
    /// arguments are resolved to the global they yield (see [`super::gadgets`]).
    pub gadget: Option<super::gadgets::Gadget>,
}

/// The result of calling something.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub kind: CallKind,
    pub callable: Value,
    /// The positional arguments (a tuple node for REDUCE/NEWOBJ, a synthetic tuple for OBJ/INST).
    pub args: Value,
    pub kwargs: Option<Value>,
    pub offset: u64,
    /// What BUILD, SETITEM(S) and APPEND(S) did to the result; most results are never
    /// touched, so this is only allocated on first use.
    effects: Option<Box<Effects>>,
}

/// Mutations applied to a call result after the call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// States applied by BUILD, in order.
    pub built: Vec<Value>,
    /// Items set by SETITEM(S) (an OrderedDict being filled).
    pub items: Vec<(Value, Value)>,
    /// Items appended by APPEND(S).
    pub appended: Vec<Value>,
}

impl Call {
    pub fn new(
        kind: CallKind,
        callable: Value,
        args: Value,
        kwargs: Option<Value>,
        offset: u64,
    ) -> Self {
        Call {
            kind,
            callable,
            args,
            kwargs,
            offset,
            effects: None,
        }
    }

    /// States applied by BUILD, in order.
    pub fn built(&self) -> &[Value] {
        self.effects.as_ref().map_or(&[], |e| &e.built)
    }

    /// Items set by SETITEM(S) on the result.
    pub fn items(&self) -> &[(Value, Value)] {
        self.effects.as_ref().map_or(&[], |e| &e.items)
    }

    /// Items appended by APPEND(S) to the result.
    pub fn appended(&self) -> &[Value] {
        self.effects.as_ref().map_or(&[], |e| &e.appended)
    }

    /// The mutations, allocated on first use.
    pub fn effects_mut(&mut self) -> &mut Effects {
        self.effects.get_or_insert_with(Box::default)
    }
}

/// Everything with identity.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// An integer too large for `i64` (boxed: rare, and 16-byte aligned).
    Long(Box<Long>),
    /// A string that had to be decoded (escapes, surrogates) rather than borrowed.
    Str(Box<str>),
    ByteArray(Span),
    /// A tuple's items, kept in the arena's item pool (tuples never change after they are
    /// built, so they need no vector of their own).
    Tuple(Items),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    FrozenSet(Vec<Value>),
    Global(Box<Global<'a>>),
    /// A global resolved through the copyreg extension registry (EXT1/2/4).
    Ext(i64),
    Call(Box<Call>),
    PersistentLoad {
        pid: Value,
        offset: u64,
    },
    /// The array joblib reads after a `NumpyArrayWrapper` (raw bytes or a nested pickle).
    JoblibArray {
        offset: u64,
        bytes: u64,
    },
    /// An out-of-band buffer (`NEXT_BUFFER`) or a read-only view of one.
    Buffer,
}

impl Node<'_> {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Node::Long(_) => "int",
            Node::Str(_) => "str",
            Node::ByteArray(_) => "bytearray",
            Node::Tuple(_) => "tuple",
            Node::List(_) => "list",
            Node::Dict(_) => "dict",
            Node::Set(_) => "set",
            Node::FrozenSet(_) => "frozenset",
            Node::Global(_) => "global",
            Node::Ext(_) => "extension global",
            Node::Call(_) => "call result",
            Node::PersistentLoad { .. } => "persistent load",
            Node::JoblibArray { .. } => "joblib array",
            Node::Buffer => "buffer",
        }
    }
}

/// Where a tuple's items sit in [`Arena`]'s item pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Items {
    start: usize,
    len: usize,
}

/// Storage for nodes, with the input they borrow from.
#[derive(Debug)]
pub struct Arena<'a> {
    pub data: &'a [u8],
    nodes: Vec<Node<'a>>,
    /// Items of every tuple, one after another.
    items: Vec<Value>,
}

impl<'a> Arena<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self::with_capacity(data, 0)
    }

    /// An arena with room for `nodes` nodes and as many tuple items reserved up front.
    pub fn with_capacity(data: &'a [u8], nodes: usize) -> Self {
        Arena {
            data,
            nodes: Vec::with_capacity(nodes),
            items: Vec::with_capacity(nodes),
        }
    }

    /// Nodes the arena has room for without growing.
    pub fn capacity(&self) -> usize {
        self.nodes.capacity()
    }

    /// Makes room for `more` nodes and as many tuple items.
    pub fn reserve(&mut self, more: usize) {
        self.nodes.reserve(more);
        self.items.reserve(more);
    }

    /// Stores a tuple's items in the pool; the returned node refers to them.
    pub fn tuple(&mut self, items: &[Value]) -> Node<'a> {
        let start = self.items.len();
        self.items.extend_from_slice(items);
        Node::Tuple(Items {
            start,
            len: items.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn push(&mut self, node: Node<'a>) -> Value {
        let id = NodeId::try_from(self.nodes.len()).unwrap_or(NodeId::MAX);
        self.nodes.push(node);
        Value::Node(id)
    }

    pub fn node(&self, value: Value) -> Option<&Node<'a>> {
        match value {
            Value::Node(id) => self.nodes.get(id as usize),
            _ => None,
        }
    }

    pub fn node_mut(&mut self, value: Value) -> Option<&mut Node<'a>> {
        match value {
            Value::Node(id) => self.nodes.get_mut(id as usize),
            _ => None,
        }
    }

    pub fn span(&self, span: Span) -> &'a [u8] {
        let start = usize::try_from(span.start).unwrap_or(usize::MAX);
        self.data
            .get(start..start.saturating_add(span.len as usize))
            .unwrap_or(&[])
    }

    /// The text of a string value, if it is one.
    pub fn str_of(&self, value: Value) -> Option<&str> {
        match value {
            Value::Str(span) => std::str::from_utf8(self.span(span)).ok(),
            Value::Node(_) => match self.node(value)? {
                Node::Str(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// The bytes of a bytes-like literal (`bytes`, `bytearray`).
    pub fn bytes_of(&self, value: Value) -> Option<&'a [u8]> {
        match value {
            Value::Bytes(span) => Some(self.span(span)),
            Value::Node(_) => match self.node(value)? {
                Node::ByteArray(span) => Some(self.span(*span)),
                _ => None,
            },
            _ => None,
        }
    }

    /// An integer value (small ints and longs that fit in i128).
    pub fn int_of(&self, value: Value) -> Option<i128> {
        match value {
            Value::Int(i) => Some(i128::from(i)),
            Value::Bool(b) => Some(i128::from(b)),
            Value::Node(_) => match self.node(value)? {
                Node::Long(long) => match **long {
                    Long::Small(i) => Some(i),
                    Long::Big(_) => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// The items of a tuple or list value.
    pub fn seq_of(&self, value: Value) -> Option<&[Value]> {
        match self.node(value)? {
            Node::Tuple(items) => self.items.get(items.start..items.start + items.len),
            Node::List(items) => Some(items),
            _ => None,
        }
    }

    /// The imported global a value is, if it is one.
    pub fn global_of(&self, value: Value) -> Option<&Global<'a>> {
        match self.node(value)? {
            Node::Global(g) => Some(g),
            _ => None,
        }
    }

    /// The call a value is the result of, if it is one.
    pub fn call_of(&self, value: Value) -> Option<&Call> {
        match self.node(value)? {
            Node::Call(c) => Some(c),
            _ => None,
        }
    }

    /// Which of `candidates` (sorted node ids) a tuple item, a container or a call still
    /// holds: they are part of the object graph the load builds, or handed to something
    /// that runs. One pass over the arena.
    pub fn referenced_among(&self, candidates: &[NodeId]) -> Vec<NodeId> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut hit = vec![false; candidates.len()];
        let mut see = |value: Value| {
            if let Value::Node(id) = value
                && let Ok(i) = candidates.binary_search(&id)
            {
                hit[i] = true;
            }
        };
        self.items.iter().for_each(|v| see(*v));
        for node in &self.nodes {
            match node {
                Node::List(items) | Node::Set(items) | Node::FrozenSet(items) => {
                    items.iter().for_each(|v| see(*v));
                }
                Node::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
                    see(*k);
                    see(*v);
                }),
                Node::Call(call) => {
                    see(call.callable);
                    see(call.args);
                    call.kwargs.into_iter().for_each(&mut see);
                    call.built().iter().for_each(|v| see(*v));
                    call.appended().iter().for_each(|v| see(*v));
                    call.items().iter().for_each(|(k, v)| {
                        see(*k);
                        see(*v);
                    });
                }
                Node::PersistentLoad { pid, .. } => see(*pid),
                _ => {}
            }
        }
        candidates
            .iter()
            .zip(hit)
            .filter_map(|(id, hit)| hit.then_some(*id))
            .collect()
    }

    /// `module.name` of the global that was called to make `value`.
    pub fn callee_name(&self, value: Value) -> Option<String> {
        let call = self.call_of(value)?;
        let g = self.global_of(call.callable)?;
        Some(format!("{}.{}", g.module, g.name))
    }

    /// Looks a key up in a dict value (or the items set on a call result).
    pub fn dict_get(&self, dict: Value, key: &str) -> Option<Value> {
        let pairs: &[(Value, Value)] = match self.node(dict)? {
            Node::Dict(pairs) => pairs,
            Node::Call(c) => c.items(),
            _ => return None,
        };
        pairs
            .iter()
            .rev()
            .find(|(k, _)| self.str_of(*k) == Some(key))
            .map(|(_, v)| *v)
    }

    /// A short description of a value for messages.
    pub fn describe(&self, value: Value) -> String {
        match value {
            Value::None => "None".into(),
            Value::Bool(b) => if b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(_) => format!("{:?}", truncate(self.str_of(value).unwrap_or(""), 60)),
            Value::Bytes(s) => format!("bytes of length {}", s.len),
            Value::Node(_) => match self.node(value) {
                Some(Node::Global(g)) => format!("global {}.{}", g.module, g.name),
                Some(Node::Str(s)) => format!("{:?}", truncate(s, 60)),
                Some(Node::Call(_)) => match self.callee_name(value) {
                    Some(name) => format!("result of calling {name}"),
                    None => "result of a call".into(),
                },
                Some(node) => node.kind_name().into(),
                None => "unknown value".into(),
            },
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
