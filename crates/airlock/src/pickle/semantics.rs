//! What each pickle opcode does, in one table both interpreters dispatch on: the full
//! machine ([`super::machine`], which keeps values) and the fast pass ([`super::lite`],
//! which keeps 16-byte cells). Per opcode: its stack effect as CPython's `pickletools`
//! states it (checked against a table generated from `pickletools` by
//! `scripts/gen-pickletools-effects.py`), and the [`Action`] it performs: what it pushes,
//! builds, mutates, imports or calls. The argument encoding is the opcode table's
//! ([`Opcode::arg_kind`]), so an opcode is defined by these two tables and nowhere else.
//!
//! Each interpreter matches on [`Action`] and applies it to its own representation of
//! values; opcodes that share an action differ only in how their argument is encoded. A
//! missing opcode fails the build (the table is checked when it is built).

use super::opcodes::{ArgKind, OPCODE_COUNT, Opcode};
use super::value::CallKind;

/// One item of a stack effect, as `pickletools` describes it (typed items are [`Slot::Any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// One value.
    Any,
    /// The mark MARK pushed.
    Mark,
    /// Every value above the mark.
    StackSlice,
}

/// The container an opcode builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Tuple,
    List,
    Dict,
    Set,
    FrozenSet,
}

/// Where a new container's items come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// None: an empty container.
    Empty,
    /// The top `n` values (above the last mark).
    Top(u8),
    /// Every value above the last mark, which is popped.
    Mark,
}

/// What an opcode does.
///
/// One flat list rather than nested kinds (`Push(Atom)`, `Build(Container, Items)`, ...):
/// the fast pass dispatches on it for every opcode, and a `match` on nested enums compiled
/// to a chain of comparisons, 14 instructions an opcode (+31 % on a 17 MB pickle of small
/// objects), where a flat one is a jump table. [`Action::builds`] and [`Action::call`] give
/// the structure back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Mark,
    Stop,
    Pop,
    PopMark,
    Dup,
    // Push a value the argument encodes (or the opcode itself, for None, True, False).
    PushNone,
    PushTrue,
    PushFalse,
    PushInt,
    PushFloat,
    PushStr,
    PushBytes,
    PushByteArray,
    // Build a container from the stack: [`Action::builds`].
    EmptyTuple,
    Tuple1,
    Tuple2,
    Tuple3,
    TupleFromMark,
    EmptyList,
    ListFromMark,
    EmptyDict,
    DictFromMark,
    EmptySet,
    FrozenSetFromMark,
    // Mutate the value below the operands (the top once they are popped).
    /// One value to a list.
    Append,
    /// The values above the mark to a list.
    Appends,
    /// The values above the mark to a set.
    AddItems,
    /// One key and value to a dict.
    SetItem,
    /// The key-value pairs above the mark to a dict.
    SetItems,
    /// A state to an object (`__setstate__` or a `__dict__` update).
    Build,
    // The memo.
    /// Push the value at the argument's index.
    MemoGet,
    /// Store the top at the argument's index.
    MemoPut,
    /// Store the top at the next index (the memo's size).
    Memoize,
    // Imports: module and name from the argument's two lines, or popped strings.
    ImportLines,
    ImportStack,
    // Calls: [`Action::call`]. `INST` imports its class from its argument first.
    CallInst,
    CallObj,
    CallReduce,
    CallNewObj,
    CallNewObjEx,
    // Persistent loads: the id from the argument's line, or popped.
    PersistentLoadLine,
    PersistentLoadStack,
    /// `EXT1`, `EXT2`, `EXT4`: an import through the copyreg extension registry.
    Ext,
    Proto,
    Frame,
    NextBuffer,
    ReadonlyBuffer,
}

impl Action {
    /// The container a building action makes, and where its items come from.
    pub const fn builds(self) -> Option<(Container, Items)> {
        use Container as C;
        Some(match self {
            Action::EmptyTuple => (C::Tuple, Items::Empty),
            Action::Tuple1 => (C::Tuple, Items::Top(1)),
            Action::Tuple2 => (C::Tuple, Items::Top(2)),
            Action::Tuple3 => (C::Tuple, Items::Top(3)),
            Action::TupleFromMark => (C::Tuple, Items::Mark),
            Action::EmptyList => (C::List, Items::Empty),
            Action::ListFromMark => (C::List, Items::Mark),
            Action::EmptyDict => (C::Dict, Items::Empty),
            Action::DictFromMark => (C::Dict, Items::Mark),
            Action::EmptySet => (C::Set, Items::Empty),
            Action::FrozenSetFromMark => (C::FrozenSet, Items::Mark),
            _ => return None,
        })
    }

    /// How a calling action calls.
    pub const fn call(self) -> Option<CallKind> {
        Some(match self {
            Action::CallInst => CallKind::Inst,
            Action::CallObj => CallKind::Obj,
            Action::CallReduce => CallKind::Reduce,
            Action::CallNewObj => CallKind::NewObj,
            Action::CallNewObjEx => CallKind::NewObjEx,
            _ => return None,
        })
    }
}

/// One opcode's semantics.
#[derive(Debug, Clone, Copy)]
pub struct Semantics {
    pub op: Opcode,
    /// The stack before and after, top last, as `pickletools` lists them.
    pub before: &'static [Slot],
    pub after: &'static [Slot],
    pub action: Action,
}

impl Semantics {
    /// How the opcode's argument is encoded.
    pub fn arg(&self) -> ArgKind {
        self.op.arg_kind()
    }
}

/// The semantics of `op`.
#[inline(always)]
pub fn of(op: Opcode) -> &'static Semantics {
    &TABLE[op as usize]
}

/// The action of the opcode whose byte is `byte`; `None` for bytes that are not opcodes.
#[inline(always)]
pub fn action_of_byte(byte: u8) -> Option<Action> {
    ACTION_BY_BYTE[byte as usize]
}

static ACTION_BY_BYTE: [Option<Action>; 256] = {
    let mut by_byte = [None; 256];
    let mut i = 0;
    while i < OPCODE_COUNT {
        let s = &TABLE[i];
        by_byte[s.op.byte() as usize] = Some(s.action);
        i += 1;
    }
    by_byte
};

macro_rules! semantics {
    ($($op:ident: [$($before:ident),*] -> [$($after:ident),*], $action:expr;)*) => {
        /// Indexed by opcode. Built at compile time: an opcode without an entry (or with two)
        /// stops the build.
        static TABLE: [Semantics; OPCODE_COUNT] = {
            const UNSET: Semantics = Semantics {
                op: Opcode::STOP,
                before: &[],
                after: &[],
                action: Action::NextBuffer,
            };
            let mut table = [UNSET; OPCODE_COUNT];
            let mut set = [false; OPCODE_COUNT];
            $(
                let i = Opcode::$op as usize;
                assert!(!set[i], concat!("two entries for ", stringify!($op)));
                set[i] = true;
                table[i] = Semantics {
                    op: Opcode::$op,
                    before: &[$(Slot::$before),*],
                    after: &[$(Slot::$after),*],
                    action: $action,
                };
            )*
            let mut i = 0;
            while i < OPCODE_COUNT {
                assert!(set[i], "an opcode has no semantics");
                i += 1;
            }
            table
        };
    };
}

use Action as A;

semantics! {
    MARK: [] -> [Mark], A::Mark;
    STOP: [Any] -> [], A::Stop;
    POP: [Any] -> [], A::Pop;
    POP_MARK: [Mark, StackSlice] -> [], A::PopMark;
    DUP: [Any] -> [Any, Any], A::Dup;
    FLOAT: [] -> [Any], A::PushFloat;
    INT: [] -> [Any], A::PushInt;
    BININT: [] -> [Any], A::PushInt;
    BININT1: [] -> [Any], A::PushInt;
    LONG: [] -> [Any], A::PushInt;
    BININT2: [] -> [Any], A::PushInt;
    NONE: [] -> [Any], A::PushNone;
    PERSID: [] -> [Any], A::PersistentLoadLine;
    BINPERSID: [Any] -> [Any], A::PersistentLoadStack;
    REDUCE: [Any, Any] -> [Any], A::CallReduce;
    STRING: [] -> [Any], A::PushStr;
    BINSTRING: [] -> [Any], A::PushStr;
    SHORT_BINSTRING: [] -> [Any], A::PushStr;
    UNICODE: [] -> [Any], A::PushStr;
    BINUNICODE: [] -> [Any], A::PushStr;
    APPEND: [Any, Any] -> [Any], A::Append;
    BUILD: [Any, Any] -> [Any], A::Build;
    GLOBAL: [] -> [Any], A::ImportLines;
    DICT: [Mark, StackSlice] -> [Any], A::DictFromMark;
    EMPTY_DICT: [] -> [Any], A::EmptyDict;
    APPENDS: [Any, Mark, StackSlice] -> [Any], A::Appends;
    GET: [] -> [Any], A::MemoGet;
    BINGET: [] -> [Any], A::MemoGet;
    INST: [Mark, StackSlice] -> [Any], A::CallInst;
    LONG_BINGET: [] -> [Any], A::MemoGet;
    LIST: [Mark, StackSlice] -> [Any], A::ListFromMark;
    EMPTY_LIST: [] -> [Any], A::EmptyList;
    OBJ: [Mark, Any, StackSlice] -> [Any], A::CallObj;
    PUT: [] -> [], A::MemoPut;
    BINPUT: [] -> [], A::MemoPut;
    LONG_BINPUT: [] -> [], A::MemoPut;
    SETITEM: [Any, Any, Any] -> [Any], A::SetItem;
    TUPLE: [Mark, StackSlice] -> [Any], A::TupleFromMark;
    EMPTY_TUPLE: [] -> [Any], A::EmptyTuple;
    SETITEMS: [Any, Mark, StackSlice] -> [Any], A::SetItems;
    BINFLOAT: [] -> [Any], A::PushFloat;
    PROTO: [] -> [], A::Proto;
    NEWOBJ: [Any, Any] -> [Any], A::CallNewObj;
    EXT1: [] -> [Any], A::Ext;
    EXT2: [] -> [Any], A::Ext;
    EXT4: [] -> [Any], A::Ext;
    TUPLE1: [Any] -> [Any], A::Tuple1;
    TUPLE2: [Any, Any] -> [Any], A::Tuple2;
    TUPLE3: [Any, Any, Any] -> [Any], A::Tuple3;
    NEWTRUE: [] -> [Any], A::PushTrue;
    NEWFALSE: [] -> [Any], A::PushFalse;
    LONG1: [] -> [Any], A::PushInt;
    LONG4: [] -> [Any], A::PushInt;
    BINBYTES: [] -> [Any], A::PushBytes;
    SHORT_BINBYTES: [] -> [Any], A::PushBytes;
    SHORT_BINUNICODE: [] -> [Any], A::PushStr;
    BINUNICODE8: [] -> [Any], A::PushStr;
    BINBYTES8: [] -> [Any], A::PushBytes;
    EMPTY_SET: [] -> [Any], A::EmptySet;
    ADDITEMS: [Any, Mark, StackSlice] -> [Any], A::AddItems;
    FROZENSET: [Mark, StackSlice] -> [Any], A::FrozenSetFromMark;
    NEWOBJ_EX: [Any, Any, Any] -> [Any], A::CallNewObjEx;
    STACK_GLOBAL: [Any, Any] -> [Any], A::ImportStack;
    MEMOIZE: [Any] -> [Any], A::Memoize;
    FRAME: [] -> [], A::Frame;
    BYTEARRAY8: [] -> [Any], A::PushByteArray;
    NEXT_BUFFER: [] -> [Any], A::NextBuffer;
    READONLY_BUFFER: [Any] -> [Any], A::ReadonlyBuffer;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPython's table, generated by `scripts/gen-pickletools-effects.py`.
    const PICKLETOOLS: &str = include_str!("pickletools_effects.txt");

    fn slots(text: &str) -> Vec<Slot> {
        if text == "-" {
            return Vec::new();
        }
        text.split(',')
            .map(|s| match s {
                "any" => Slot::Any,
                "mark" => Slot::Mark,
                "stackslice" => Slot::StackSlice,
                other => panic!("unknown stack item {other}"),
            })
            .collect()
    }

    fn arg_kind(pickletools_arg: &str) -> ArgKind {
        match pickletools_arg {
            "-" => ArgKind::None,
            "uint1" => ArgKind::U1,
            "uint2" => ArgKind::U2,
            "int4" => ArgKind::I4,
            "uint4" => ArgKind::U4,
            "uint8" => ArgKind::U8,
            "float8" => ArgKind::F8,
            "decimalnl_short" => ArgKind::DecimalLine,
            "decimalnl_long" => ArgKind::LongLine,
            "floatnl" => ArgKind::FloatLine,
            "stringnl" => ArgKind::QuotedLine,
            "unicodestringnl" => ArgKind::UnicodeLine,
            "stringnl_noescape" => ArgKind::RawLine,
            "stringnl_noescape_pair" => ArgKind::TwoLines,
            "string1" | "bytes1" | "unicodestring1" => ArgKind::Len1,
            "string4" => ArgKind::LenI4,
            "bytes4" | "unicodestring4" => ArgKind::LenU4,
            "bytes8" | "unicodestring8" | "bytearray8" => ArgKind::Len8,
            "long1" => ArgKind::Long1,
            "long4" => ArgKind::Long4,
            other => panic!("unknown pickletools argument {other}"),
        }
    }

    /// Every opcode of CPython's table has an entry here with CPython's byte, protocol,
    /// argument encoding and stack effect, and there is no other opcode.
    #[test]
    fn table_agrees_with_pickletools() {
        let mut seen = 0;
        for line in PICKLETOOLS.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(' ').collect();
            let [name, byte, arg, before, after, proto] = f[..] else {
                panic!("bad line {line}");
            };
            let op = Opcode::from_byte(byte.parse().unwrap()).expect(name);
            let s = of(op);
            assert_eq!(s.op, op);
            assert_eq!(op.name(), name);
            assert_eq!(op.protocol().to_string(), proto, "{name}");
            assert_eq!(s.arg(), arg_kind(arg), "{name}");
            assert_eq!(s.before, slots(before), "{name} before");
            assert_eq!(s.after, slots(after), "{name} after");
            seen += 1;
        }
        assert_eq!(seen, OPCODE_COUNT);
        let opcodes = (0..=255u8).filter_map(Opcode::from_byte).count();
        assert_eq!(opcodes, OPCODE_COUNT);
    }

    /// Each action's stack effect is the one its interpreters implement: e.g. a container
    /// built from the top `n` values pops `n`, one built from the mark pops the mark, and
    /// only the actions that read a mark have one in their stack effect.
    #[test]
    fn actions_agree_with_stack_effects() {
        for b in 0..=255u8 {
            let Some(op) = Opcode::from_byte(b) else {
                assert_eq!(action_of_byte(b), None);
                continue;
            };
            let s = of(op);
            assert_eq!(action_of_byte(b), Some(s.action));
            let is_push = matches!(
                s.action,
                Action::PushNone
                    | Action::PushTrue
                    | Action::PushFalse
                    | Action::PushInt
                    | Action::PushFloat
                    | Action::PushStr
                    | Action::PushBytes
                    | Action::PushByteArray
                    | Action::Ext
                    | Action::NextBuffer
                    | Action::MemoGet
                    | Action::ImportLines
                    | Action::PersistentLoadLine
            ) || s
                .action
                .builds()
                .is_some_and(|(_, items)| items == Items::Empty);
            // Pushes from the argument alone (or an empty container): nothing popped, one
            // value pushed.
            assert_eq!(
                is_push,
                s.before.is_empty() && s.after == [Slot::Any],
                "{op:?}"
            );
            if let Some((_, items)) = s.action.builds() {
                let expected: &[Slot] = match items {
                    Items::Empty => &[],
                    Items::Top(1) => &[Slot::Any],
                    Items::Top(2) => &[Slot::Any, Slot::Any],
                    Items::Top(_) => &[Slot::Any, Slot::Any, Slot::Any],
                    Items::Mark => &[Slot::Mark, Slot::StackSlice],
                };
                assert_eq!((s.before, s.after), (expected, &[Slot::Any][..]), "{op:?}");
            }
            let by_mark = matches!(
                s.action,
                Action::Appends | Action::AddItems | Action::SetItems
            );
            if by_mark {
                assert_eq!(
                    s.before,
                    [Slot::Any, Slot::Mark, Slot::StackSlice],
                    "{op:?}"
                );
            }
            if let Some(kind) = s.action.call() {
                // The callable and its arguments: popped, or above a mark (INST, OBJ).
                let above_mark = matches!(kind, CallKind::Inst | CallKind::Obj);
                assert_eq!(s.before.first() == Some(&Slot::Mark), above_mark, "{op:?}");
                assert_eq!(s.after, [Slot::Any], "{op:?}");
            }
            assert_eq!(
                (s.before.contains(&Slot::Mark)),
                by_mark
                    || matches!(
                        s.action,
                        Action::PopMark | Action::CallInst | Action::CallObj
                    )
                    || s.action.builds().is_some_and(|(_, i)| i == Items::Mark),
                "{op:?}: mark use"
            );
        }
    }
}
