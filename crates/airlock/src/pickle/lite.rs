//! A fast pass for pickles that only build data.
//!
//! A pickle with no import (`GLOBAL`, `STACK_GLOBAL`, `INST`, `EXT*`), no call (`REDUCE`,
//! `NEWOBJ`, `NEWOBJ_EX`, `OBJ`), no `BUILD` and no persistent load can only build lists,
//! dicts, tuples, sets, strings and numbers: nothing in it can run code. For such pickles the
//! full symbolic machine's values are not needed, so this pass runs the same stack, mark and
//! memo rules over 8-byte cells that only know a value's kind and, for containers, their
//! logical size. It reports the same structural findings (malformed pickle, frames, repeated
//! PROTO, memo expansion, mutation of non-containers) and the same end offset.
//!
//! The first opcode outside that vocabulary makes the pass give up ([`LiteResult::NeedsFull`]);
//! the caller then runs the full machine from the start. Its findings are returned, not
//! reported, so giving up leaves no trace.

use crate::hash::{HashMap, HashMapExt};

use super::machine::{DICT_LIKE, LIST_LIKE, SET_LIKE};
use super::opcodes::{HIGHEST_PROTOCOL, Opcode};
use super::reader::{RawInstr, Reader};
use crate::policy::Policy;
use crate::report::{Finding, Rating};
use crate::rules::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Atom,
    /// A string: `id` is its offset and `len` its length when borrowed from the input
    /// (`len == u32::MAX` when it had to be decoded).
    Str,
    List,
    Dict,
    Set,
    Tuple,
    Other,
    /// An imported global: `id` indexes the globals table.
    Global,
    /// A call result: `id` indexes the size table, and the callee table says what was called.
    Call,
}

/// A stack or memo cell: the kind, and an index or span depending on it.
///
/// A container's logical size lives in the cell itself (`len == INLINE`, `id` = size) while
/// the cell is its only reference: every tuple (immutable, so copies stay exact), and lists,
/// dicts and sets until DUP or a memo PUT shares them, when the size moves to the size table
/// (`id` indexes it) so that mutation through one reference is seen through all. A pickle
/// without memo opcodes then keeps no table at all (a 500 MB one kept 160 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    kind: Kind,
    len: u32,
    id: u64,
}

/// `Cell::len` of a container whose size is held inline.
const INLINE: u32 = 1;

impl Cell {
    fn is_inline(self) -> bool {
        matches!(self.kind, Kind::Tuple | Kind::List | Kind::Dict | Kind::Set) && self.len == INLINE
    }

    /// This cell with its size moved to the table, for a second reference to share.
    fn shared(self, sizes: &mut Vec<u64>) -> Cell {
        if !self.is_inline() || self.kind == Kind::Tuple {
            return self;
        }
        let id = sizes.len() as u64;
        sizes.push(self.id);
        Cell {
            kind: self.kind,
            len: 0,
            id,
        }
    }
}

const ATOM: Cell = Cell {
    kind: Kind::Atom,
    len: 0,
    id: u64::MAX,
};

/// What the fast pass concluded.
#[derive(Debug)]
pub enum LiteResult {
    /// The pickle holds an opcode that needs the full machine.
    NeedsFull,
    /// The pickle was read to its end (or to where the loader fails).
    Done(LiteOutcome),
}

#[derive(Debug)]
pub struct LiteOutcome {
    pub end: usize,
    pub stopped: bool,
    pub error: Option<(u64, String)>,
    pub limited: bool,
    pub opcodes: u64,
    pub protocol: u8,
    pub findings: Vec<Finding>,
    /// Every import (module, name, offset), all rated innocuous by the policy.
    pub imports: Vec<(String, String, u64)>,
    pub calls: u32,
}

/// Limits the fast pass honours (the same as the full machine's).
#[derive(Debug, Clone, Copy)]
pub struct LiteLimits {
    pub max_opcodes: u64,
    pub max_stack_depth: usize,
    pub max_memo_entries: usize,
}

/// Runs the fast pass over the pickle at `start`.
pub fn run(data: &[u8], start: usize, limits: LiteLimits, policy: &Policy) -> LiteResult {
    let mut reader = Reader::new(data, start);
    let mut stack: Vec<Cell> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: Vec<Option<Cell>> = Vec::new();
    let mut memo_len = 0usize;
    let mut sizes: Vec<u64> = Vec::new();
    let threshold = (data.len() as u64).saturating_mul(64).max(10_000_000);
    let mut out = LiteOutcome {
        end: start,
        stopped: false,
        error: None,
        limited: false,
        opcodes: 0,
        protocol: 0,
        findings: Vec::new(),
        imports: Vec::new(),
        calls: 0,
    };
    // Imported globals (normalised `module.name`), and for each call result the global called.
    let mut globals: Vec<String> = Vec::new();
    let mut callees: HashMap<u64, u32> = HashMap::new();
    let mut seen_proto = false;
    // End of the current FRAME, or NO_FRAME.
    let mut frame_end: usize = NO_FRAME;
    let (mut frame_flagged, mut expansion_flagged) = (false, false);

    macro_rules! fail {
        ($at:expr, $msg:expr) => {{
            out.error = Some(($at, $msg.to_string()));
            out.end = reader.position();
            return LiteResult::Done(out);
        }};
    }
    macro_rules! pop {
        ($at:expr) => {{
            let fence = marks.last().copied().unwrap_or(0);
            if stack.len() <= fence {
                fail!($at, "unpickling stack underflow");
            }
            stack.pop().unwrap_or(ATOM)
        }};
    }
    macro_rules! pop_mark {
        ($at:expr) => {{
            let Some(mark) = marks.pop() else {
                fail!($at, "could not find MARK")
            };
            let mark = mark.min(stack.len());
            let items = &stack[mark..];
            let size = items
                .iter()
                .fold(1u64, |acc, c| acc.saturating_add(size_of(&sizes, *c)));
            stack.truncate(mark);
            size
        }};
    }

    loop {
        out.opcodes += 1;
        if out.opcodes > limits.max_opcodes || stack.len() + marks.len() > limits.max_stack_depth {
            out.limited = true;
            out.end = reader.position();
            return LiteResult::Done(out);
        }
        let instr: RawInstr = match reader.next_raw() {
            Ok(instr) => instr,
            Err(e) => fail!(e.offset, e.message),
        };
        let at = instr.offset;
        // Inside a frame, almost every opcode ends within it: one comparison. An opcode that
        // ends past the frame either starts after it (the frame is over) or straddles it.
        if instr.end as usize > frame_end {
            let end = frame_end;
            if instr.offset as usize >= end {
                frame_end = NO_FRAME;
            } else if instr.op != Opcode::FRAME && !frame_flagged {
                frame_flagged = true;
                out.findings.push(
                    Finding::new(
                        Rule::FrameViolation,
                        format!(
                            "{} at offset {at} runs past the end of its FRAME (offset {end})",
                            instr.op.name()
                        ),
                    )
                    .at(at),
                );
            }
        }
        use Opcode as O;
        // A plain function behind a macro, not a closure defined in the loop: the closure's
        // captures were rebuilt on every opcode once it stopped being inlined (10 % of the
        // instructions on a 500 MB pickle).
        macro_rules! new_container {
            ($kind:expr, $size:expr) => {
                new_container(
                    $kind,
                    $size,
                    &mut sizes,
                    Expansion {
                        threshold,
                        flagged: &mut expansion_flagged,
                        findings: &mut out.findings,
                        at,
                    },
                )
            };
        }
        // APPEND(S), SETITEM(S), ADDITEMS on the top of the stack (above the last mark).
        macro_rules! mutate_top {
            ($want:expr, $by:expr) => {{
                let fence = marks.last().copied().unwrap_or(0);
                if stack.len() <= fence {
                    fail!(at, "unpickling stack underflow");
                }
                let last = stack.len() - 1;
                let mutation = Mutation {
                    want: $want,
                    by: $by,
                    at,
                    op: instr.op,
                };
                if !mutate(
                    &mut sizes,
                    &mut stack[last],
                    &mut out.findings,
                    &callees,
                    &globals,
                    mutation,
                ) {
                    return LiteResult::NeedsFull;
                }
            }};
        }
        match instr.op {
            O::EXT1 | O::EXT2 | O::EXT4 | O::PERSID | O::BINPERSID => {
                return LiteResult::NeedsFull;
            }
            O::GLOBAL | O::INST => {
                if instr.op == O::INST && marks.is_empty() {
                    fail!(at, "could not find MARK");
                }
                let Ok(full) = Reader::new(data, at as usize).next_instr() else {
                    return LiteResult::NeedsFull;
                };
                let super::reader::Arg::Pair(module, name) = full.arg else {
                    return LiteResult::NeedsFull;
                };
                if !super::machine::is_python_path(&module)
                    || !super::machine::is_python_path(&name)
                {
                    return LiteResult::NeedsFull;
                }
                let Some(global) =
                    import(policy, &module, &name, at, &mut globals, &mut out.imports)
                else {
                    return LiteResult::NeedsFull;
                };
                if instr.op == O::INST {
                    let size = pop_mark!(at);
                    let cell = new_container!(Kind::Call, size);
                    callees.insert(cell.id, global.id as u32);
                    out.calls += 1;
                    stack.push(cell);
                } else {
                    stack.push(global);
                }
            }
            O::STACK_GLOBAL => {
                let name = pop!(at);
                let module = pop!(at);
                let (Some(m), Some(n)) = (borrowed_text(data, module), borrowed_text(data, name))
                else {
                    if [module, name].iter().all(|c| {
                        c.kind != Kind::Str && c.kind != Kind::Global && c.kind != Kind::Call
                    }) {
                        fail!(at, "STACK_GLOBAL requires str operands");
                    }
                    return LiteResult::NeedsFull;
                };
                if !super::machine::is_python_path(m) || !super::machine::is_python_path(n) {
                    return LiteResult::NeedsFull;
                }
                let Some(global) = import(policy, m, n, at, &mut globals, &mut out.imports) else {
                    return LiteResult::NeedsFull;
                };
                stack.push(global);
            }
            O::REDUCE | O::NEWOBJ | O::NEWOBJ_EX | O::OBJ => {
                let callable = match instr.op {
                    O::OBJ => {
                        let Some(&mark) = marks.last() else {
                            fail!(at, "could not find MARK")
                        };
                        let Some(first) = stack.get(mark).copied() else {
                            fail!(at, "unpickling stack underflow")
                        };
                        pop_mark!(at);
                        first
                    }
                    O::NEWOBJ_EX => {
                        pop!(at);
                        pop!(at);
                        pop!(at)
                    }
                    O::NEWOBJ => {
                        pop!(at);
                        pop!(at)
                    }
                    _ => {
                        let args = pop!(at);
                        let callable = pop!(at);
                        if !matches!(args.kind, Kind::Tuple | Kind::Global | Kind::Call) {
                            fail!(at, "REDUCE argument list must be a tuple");
                        }
                        callable
                    }
                };
                if callable.kind != Kind::Global {
                    return LiteResult::NeedsFull;
                }
                let cell = new_container!(Kind::Call, 1);
                callees.insert(cell.id, callable.id as u32);
                out.calls += 1;
                stack.push(cell);
            }
            O::BUILD => {
                let state = pop!(at);
                let Some(target) = peek(&stack, &marks) else {
                    fail!(at, "unpickling stack underflow")
                };
                if target.kind != Kind::Call {
                    // BUILD on a global, or on a plain value: the full machine judges it.
                    return LiteResult::NeedsFull;
                }
                let by = size_of(&sizes, state);
                if let Some(size) = sizes.get_mut(target.id as usize) {
                    *size = size.saturating_add(by);
                }
            }
            O::MARK => marks.push(stack.len()),
            O::STOP => {
                pop!(at);
                out.stopped = true;
                out.end = reader.position();
                return LiteResult::Done(out);
            }
            O::POP => {
                if !marks.is_empty() && marks.last() == Some(&stack.len()) {
                    marks.pop();
                } else {
                    pop!(at);
                }
            }
            O::POP_MARK => {
                pop_mark!(at);
            }
            O::DUP => {
                let fence = marks.last().copied().unwrap_or(0);
                if stack.len() <= fence {
                    fail!(at, "unpickling stack underflow");
                }
                let last = stack.len() - 1;
                let top = stack[last].shared(&mut sizes);
                stack[last] = top;
                stack.push(top);
            }
            O::NONE
            | O::NEWTRUE
            | O::NEWFALSE
            | O::INT
            | O::BININT
            | O::BININT1
            | O::BININT2
            | O::LONG
            | O::LONG1
            | O::LONG4
            | O::FLOAT
            | O::BINFLOAT
            | O::BINBYTES
            | O::SHORT_BINBYTES
            | O::BINBYTES8
            | O::BYTEARRAY8 => {
                stack.push(ATOM);
            }
            O::SHORT_BINUNICODE | O::BINUNICODE | O::BINUNICODE8 => {
                let width = match instr.op {
                    O::SHORT_BINUNICODE => 1,
                    O::BINUNICODE => 4,
                    _ => 8,
                };
                let body = instr.offset + 1 + width;
                let len = u32::try_from(instr.end - body).unwrap_or(u32::MAX);
                stack.push(Cell {
                    kind: Kind::Str,
                    len,
                    id: body,
                });
            }
            O::STRING | O::BINSTRING | O::SHORT_BINSTRING | O::UNICODE => {
                stack.push(Cell {
                    kind: Kind::Str,
                    len: u32::MAX,
                    id: 0,
                });
            }
            O::EMPTY_TUPLE => {
                let cell = new_container!(Kind::Tuple, 1);
                stack.push(cell);
            }
            O::TUPLE1 | O::TUPLE2 | O::TUPLE3 => {
                let n = match instr.op {
                    O::TUPLE1 => 1,
                    O::TUPLE2 => 2,
                    _ => 3,
                };
                if stack.len() < marks.last().copied().unwrap_or(0) + n {
                    fail!(at, "unpickling stack underflow");
                }
                let first = stack.len() - n;
                let size = stack[first..]
                    .iter()
                    .fold(1u64, |acc, c| acc.saturating_add(size_of(&sizes, *c)));
                stack.truncate(first);
                let cell = new_container!(Kind::Tuple, size);
                stack.push(cell);
            }
            O::TUPLE | O::FROZENSET => {
                let size = pop_mark!(at);
                let kind = if instr.op == O::TUPLE {
                    Kind::Tuple
                } else {
                    Kind::Other
                };
                let cell = new_container!(kind, size);
                stack.push(cell);
            }
            O::EMPTY_LIST => {
                let cell = new_container!(Kind::List, 1);
                stack.push(cell);
            }
            O::LIST => {
                let size = pop_mark!(at);
                let cell = new_container!(Kind::List, size);
                stack.push(cell);
            }
            O::EMPTY_DICT => {
                let cell = new_container!(Kind::Dict, 1);
                stack.push(cell);
            }
            O::DICT => {
                let mark = marks.last().copied().unwrap_or(0);
                if (stack.len().saturating_sub(mark)) % 2 == 1 {
                    fail!(at, "odd number of items for DICT");
                }
                let size = pop_mark!(at);
                let cell = new_container!(Kind::Dict, size);
                stack.push(cell);
            }
            O::EMPTY_SET => {
                let cell = new_container!(Kind::Set, 1);
                stack.push(cell);
            }
            O::APPEND | O::SETITEM => {
                let mut added = size_of(&sizes, pop!(at));
                if instr.op == O::SETITEM {
                    added = added.saturating_add(size_of(&sizes, pop!(at)));
                }
                let want = if instr.op == O::APPEND {
                    Kind::List
                } else {
                    Kind::Dict
                };
                mutate_top!(want, added);
            }
            O::APPENDS | O::SETITEMS | O::ADDITEMS => {
                let mark = marks.last().copied().unwrap_or(0);
                if instr.op == O::SETITEMS && (stack.len().saturating_sub(mark)) % 2 == 1 {
                    fail!(at, "odd number of items for SETITEMS");
                }
                let added = pop_mark!(at).saturating_sub(1);
                let want = match instr.op {
                    O::APPENDS => Kind::List,
                    O::SETITEMS => Kind::Dict,
                    _ => Kind::Set,
                };
                mutate_top!(want, added);
            }
            O::GET | O::BINGET | O::LONG_BINGET => {
                let Some(index) = memo_index(&instr) else {
                    fail!(at, "invalid memo index")
                };
                match memo.get(index).copied().flatten() {
                    Some(cell) => stack.push(cell),
                    None => fail!(at, format!("memo value not found at index {index}")),
                }
            }
            O::PUT | O::BINPUT | O::LONG_BINPUT | O::MEMOIZE => {
                let index = if instr.op == O::MEMOIZE {
                    memo_len
                } else {
                    match memo_index(&instr) {
                        Some(i) => i,
                        None => fail!(at, format!("negative {} argument", instr.op.name())),
                    }
                };
                let Some(top) = peek(&stack, &marks) else {
                    fail!(at, "unpickling stack underflow")
                };
                if index >= limits.max_memo_entries.min(1 << 26) {
                    // Sparse, huge indices: leave them to the full machine's map.
                    return LiteResult::NeedsFull;
                }
                let last = stack.len() - 1;
                let top = top.shared(&mut sizes);
                stack[last] = top;
                if index >= memo.len() {
                    memo.resize(index + 1, None);
                }
                if memo[index].replace(top).is_none() {
                    memo_len += 1;
                }
            }
            O::PROTO => {
                let version = instr.int;
                if version > i64::from(HIGHEST_PROTOCOL) {
                    fail!(at, format!("unsupported pickle protocol: {version}"));
                }
                if seen_proto && !out.findings.iter().any(|f| f.rule == Rule::RepeatedProto) {
                    out.findings.push(
                        Finding::new(Rule::RepeatedProto, "PROTO appears again inside the pickle")
                            .at(at),
                    );
                }
                seen_proto = true;
                out.protocol = version as u8;
            }
            O::FRAME => {
                let end = frame_end;
                if end != NO_FRAME && (at as usize) < end && !frame_flagged {
                    frame_flagged = true;
                    out.findings.push(
                        Finding::new(Rule::FrameViolation, format!("a FRAME opens at offset {at} before the previous frame ends at {end}"))
                            .at(at),
                    );
                }
                frame_end = (instr.end as usize)
                    .saturating_add(instr.int as usize)
                    .min(NO_FRAME - 1);
            }
            O::NEXT_BUFFER => fail!(
                at,
                "NEXT_BUFFER: the pickle refers to out-of-band data, which model loaders never pass"
            ),
            O::READONLY_BUFFER => {
                if peek(&stack, &marks).is_none() {
                    fail!(at, "unpickling stack underflow");
                }
            }
        }
    }
}

fn peek(stack: &[Cell], marks: &[usize]) -> Option<Cell> {
    let fence = marks.last().copied().unwrap_or(0);
    (stack.len() > fence).then(|| stack[stack.len() - 1])
}

fn size_of(sizes: &[u64], cell: Cell) -> u64 {
    match cell.kind {
        Kind::Atom | Kind::Str | Kind::Global => 1,
        _ if cell.is_inline() => cell.id,
        _ => sizes.get(cell.id as usize).copied().unwrap_or(1),
    }
}

/// The text of a string cell borrowed from the input.
fn borrowed_text(data: &[u8], cell: Cell) -> Option<&str> {
    if cell.kind != Kind::Str || cell.len == u32::MAX {
        return None;
    }
    let start = usize::try_from(cell.id).ok()?;
    std::str::from_utf8(data.get(start..start.checked_add(cell.len as usize)?)?).ok()
}

/// Records an import the policy rates innocuous and returns its cell; `None` when the full
/// machine must judge it (anything else, or joblib's wrapper, whose array bytes need values).
fn import(
    policy: &Policy,
    module: &str,
    name: &str,
    at: u64,
    globals: &mut Vec<String>,
    imports: &mut Vec<(String, String, u64)>,
) -> Option<Cell> {
    let assessment = policy.assess(module, name);
    let qualified = crate::policy::normalize_qualified(&format!("{module}.{name}"));
    if assessment.rating != Rating::Innocuous
        || assessment.loads_nested
        || qualified == crate::formats::joblib::NUMPY_ARRAY_WRAPPER
    {
        return None;
    }
    if imports.len() < 100_000 {
        imports.push((module.to_string(), name.to_string(), at));
    }
    let id = match globals.iter().position(|g| *g == qualified) {
        Some(i) => i,
        None => {
            globals.push(qualified);
            globals.len() - 1
        }
    };
    Some(Cell {
        kind: Kind::Global,
        len: 0,
        id: id as u64,
    })
}

/// One APPEND(S)/SETITEM(S)/ADDITEMS: what it wants to be applied to and what it adds.
struct Mutation {
    want: Kind,
    by: u64,
    at: u64,
    op: Opcode,
}

/// `frame_end` when no FRAME is open: no opcode ends past it.
const NO_FRAME: usize = usize::MAX;

/// Where a container too large for its input is reported (once per pickle).
struct Expansion<'f> {
    threshold: u64,
    flagged: &'f mut bool,
    findings: &'f mut Vec<Finding>,
    at: u64,
}

/// A new container cell whose logical size (shared references expanded) is `size`.
#[inline(always)]
fn new_container(kind: Kind, size: u64, sizes: &mut Vec<u64>, expansion: Expansion) -> Cell {
    if size > expansion.threshold && !*expansion.flagged {
        *expansion.flagged = true;
        expansion
            .findings
            .push(expansion_finding(size, expansion.at));
    }
    if kind == Kind::Call {
        // Call results keep a table entry: their id also keys the callee table.
        let id = sizes.len() as u64;
        sizes.push(size);
        return Cell { kind, len: 0, id };
    }
    Cell {
        kind,
        len: INLINE,
        id: size,
    }
}

#[cold]
fn expansion_finding(size: u64, at: u64) -> Finding {
    Finding::new(
        Rule::MemoExpansion,
        format!("memo references expand to more than {size} values"),
    )
    .at(at)
}

/// Applies a mutation to `target`, the stack cell it is applied to: a container of the right
/// kind grows (an inline size in the cell itself, a shared one in the table); a plain value
/// of the wrong kind is a finding; a call result or an imported object is accepted only when
/// it is one of the container classes. Returns false when the full machine must judge it.
fn mutate(
    sizes: &mut [u64],
    target: &mut Cell,
    findings: &mut Vec<Finding>,
    callees: &HashMap<u64, u32>,
    globals: &[String],
    m: Mutation,
) -> bool {
    let cell = *target;
    let mut grow = |sizes: &mut [u64]| {
        if target.is_inline() {
            target.id = target.id.saturating_add(m.by);
        } else if let Some(size) = sizes.get_mut(cell.id as usize) {
            *size = size.saturating_add(m.by);
        }
    };
    if matches!(cell.kind, Kind::Call | Kind::Global) {
        let classes = match m.want {
            Kind::List => LIST_LIKE,
            Kind::Dict => DICT_LIKE,
            _ => SET_LIKE,
        };
        let callee = (cell.kind == Kind::Call)
            .then(|| callees.get(&cell.id).copied())
            .flatten()
            .and_then(|g| globals.get(g as usize));
        if !callee.is_some_and(|c| classes.contains(&c.as_str())) {
            return false;
        }
        grow(sizes);
    } else if cell.kind == m.want {
        grow(sizes);
    } else if findings.len() < 100 {
        findings.push(
            Finding::new(
                Rule::MutationTarget,
                format!(
                    "{} applied to a value that is not a {:?}",
                    m.op.name(),
                    m.want
                ),
            )
            .at(m.at),
        );
    }
    true
}

fn memo_index(instr: &RawInstr) -> Option<usize> {
    usize::try_from(instr.int).ok()
}
