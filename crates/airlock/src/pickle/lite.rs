//! A fast pass for pickles that only build data.
//!
//! A pickle whose imports are all innocuous constructors, whose calls only call them and
//! whose persistent loads are torch's `('storage', type, key, location, numel)` ids can only
//! build data: lists, dicts, tuples, sets, strings, numbers, allowlisted objects and tensor
//! storages. For such pickles the full symbolic machine's values are not needed, so this
//! pass runs the same stack, mark and memo rules over 16-byte cells that only know a value's
//! kind and, for containers, their logical size. It reports the same structural findings
//! (malformed pickle, frames, repeated PROTO, memo expansion, mutation of non-containers),
//! the same imports, the same storage references and the same end offset. A torch
//! checkpoint's `data.pkl` takes this path: its 5-item persistent ids are the only values
//! whose contents matter, and the pass keeps the items of the last 5-tuple built for them.
//!
//! The first opcode outside that vocabulary makes the pass give up ([`LiteResult::NeedsFull`]);
//! the caller then runs the full machine from the start. Its findings are returned, not
//! reported, so giving up leaves no trace.
//!
//! Like the full machine, the pass dispatches on each opcode's [`Action`] from the semantics
//! table ([`super::semantics`]), so an opcode's stack effect and meaning are defined once.
//!
//! Decision: the loop stays one function with local macros (`fail!` and `pop!` return from
//! it), not split into one function per action. Dispatching on the table's flat actions
//! instead of the opcode byte already costs 4.2 % more instructions (cachegrind,
//! `airlock scan --threads 1` on a 17.7 MB protocol-4 pickle of 230,000 small dicts:
//! 533,518,547 before, 555,756,886 after; a nested `Action` enum cost 31 %), which leaves
//! less than 1 % of the 5 % the pickle500 benchmark allows for the per-opcode calls a split
//! would add (state passed by reference, the reader no longer kept in registers; see
//! `Reader::next_raw_full`).

use super::machine::{
    DICT_LIKE, FIRST_RESERVE_INPUT, LIST_LIKE, PERIODIC_CHECK_INTERVAL, SET_LIKE,
};
use super::opcodes::{HIGHEST_PROTOCOL, Opcode};
use super::persistent::{self, StorageRef, StorageType};
use super::reader::{RawInstr, Reader};
use super::semantics::{self, Action};
use crate::policy::Policy;
use crate::report::{Finding, Rating};
use crate::rules::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// In groups that `size_of` tells apart by range: single values, immutable containers,
// mutable containers, call results.
enum Kind {
    Atom,
    /// A BININT1, BININT2, BININT or LONG1 int: `id` is its opcode's offset ([`int_value`]).
    Int,
    /// A string: `id` is its offset and `len` its length when borrowed from the input
    /// (`len == u32::MAX` when it had to be decoded).
    Str,
    /// An imported global: `id` indexes the globals table.
    Global,
    /// What `persistent_load` returned for a storage id (an opaque object, as in the machine).
    Persistent,
    Tuple,
    /// A frozenset.
    Other,
    List,
    Dict,
    Set,
    /// A call result: `id` indexes the size table, `len` the globals table (what was called).
    Call,
}

/// A stack or memo cell: the kind, and an index or span depending on it.
///
/// A container's logical size lives in the cell itself (`id` = size) while the cell is its
/// only reference: every tuple and frozenset (immutable, so copies stay exact), and lists,
/// dicts and sets until DUP or a memo PUT shares them (`len == INLINE` until then), when the
/// size moves to the size table (`id` indexes it) so that mutation through one reference is
/// seen through all. A pickle without memo opcodes then keeps no table at all (a 500 MB one
/// kept 160 MB). A tuple's `len` is the tag of its recorded items ([`PidCandidate`]), or 0.
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
        match self.kind {
            Kind::Tuple | Kind::Other => true,
            Kind::List | Kind::Dict | Kind::Set => self.len == INLINE,
            _ => false,
        }
    }

    /// This cell with its size moved to the table, for a second reference to share.
    fn shared(self, sizes: &mut Vec<u64>) -> Cell {
        if !self.is_inline() || matches!(self.kind, Kind::Tuple | Kind::Other) {
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

/// The items of the last 5-tuple built, and the tag its cell carries: the shape of torch's
/// `('storage', type, key, location, numel)` persistent ids, which the `BINPERSID` after the
/// tuple decodes. One slot, so memory stays constant whatever the pickle builds.
struct PidCandidate {
    tag: u32,
    items: [Cell; 5],
}

impl PidCandidate {
    /// Keeps `items` (five cells) as the last 5-tuple built and returns the tag for its cell
    /// (0, no tag, once the tags run out).
    #[cold]
    fn record(&mut self, items: &[Cell]) -> u32 {
        let Ok(items) = <[Cell; 5]>::try_from(items) else {
            return 0;
        };
        if self.tag == u32::MAX {
            return 0;
        }
        self.tag += 1;
        self.items = items;
        self.tag
    }
}

/// BINPERSID of `pid`: true (the storage recorded) when it is the last 5-tuple built and its
/// items decode as a storage id; false when the full machine must judge it.
#[cold]
fn persistent_load(
    data: &[u8],
    pid: Cell,
    candidate: &PidCandidate,
    globals: &[Imported],
    storages: &mut Vec<StorageRef>,
) -> bool {
    let recorded = pid.kind == Kind::Tuple && pid.len != 0 && pid.len == candidate.tag;
    let Some(storage) = recorded
        .then(|| storage_of(data, globals, &candidate.items))
        .flatten()
    else {
        return false;
    };
    if storages.len() < super::machine::MAX_KEPT_CHILDREN {
        storages.push(storage);
    }
    true
}

/// A global the pass imported: its normalised name and, for a storage class, its type.
struct Imported {
    qualified: String,
    storage: Option<&'static StorageType>,
}

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
    /// True when the pass stopped because its time was up ([`run_until`]); `limited` is
    /// then true too.
    pub timed_out: bool,
    /// Every import (module, name, offset), all rated innocuous by the policy.
    pub imports: Vec<(String, String, u64)>,
    pub calls: u32,
    /// The storage every persistent load referenced, in order (at most
    /// [`super::machine::MAX_KEPT_CHILDREN`], as the machine keeps).
    pub storages: Vec<StorageRef>,
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
    run_until(data, start, limits, policy, || false)
}

/// Runs the fast pass over the pickle at `start`, asking `time_is_up` every
/// [`PERIODIC_CHECK_INTERVAL`] opcodes whether to stop (the scan's timeout).
pub fn run_until(
    data: &[u8],
    start: usize,
    limits: LiteLimits,
    policy: &Policy,
    mut time_is_up: impl FnMut() -> bool,
) -> LiteResult {
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
        timed_out: false,
        imports: Vec::new(),
        calls: 0,
        storages: Vec::new(),
    };
    // The memo's capacity for a large pickle is reserved once the pickle has run
    // PERIODIC_CHECK_INTERVAL opcodes ([`first_memo_capacity`]).
    let mut memo_reserved = false;
    // Imported globals, and for each call result the global called.
    let mut globals: Vec<Imported> = Vec::new();
    let mut candidate = PidCandidate {
        tag: 0,
        items: [ATOM; 5],
    };
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

    // The opcode count at which the loop next leaves its fast path: the periodic check (memo
    // reservation, time) or the opcode limit, whichever comes first. One comparison per
    // opcode covers both, as the opcode limit alone did before the time was checked here.
    let max_opcodes = limits.max_opcodes;
    let mut next_stop = PERIODIC_CHECK_INTERVAL.min(max_opcodes.saturating_add(1));
    loop {
        out.opcodes += 1;
        if out.opcodes >= next_stop || stack.len() + marks.len() > limits.max_stack_depth {
            if out.opcodes > max_opcodes || stack.len() + marks.len() > limits.max_stack_depth {
                out.limited = true;
                out.end = reader.position();
                return LiteResult::Done(out);
            }
            if out.opcodes == next_stop {
                next_stop = out
                    .opcodes
                    .saturating_add(PERIODIC_CHECK_INTERVAL)
                    .min(max_opcodes.saturating_add(1));
                if !memo_reserved && memo.capacity() > 0 {
                    memo_reserved = true;
                    reserve_memo(&mut memo, data.len().saturating_sub(start));
                }
                if time_is_up() {
                    out.limited = true;
                    out.timed_out = true;
                    out.end = reader.position();
                    return LiteResult::Done(out);
                }
            }
        }
        let at = reader.position() as u64;
        // Past the end, 0 (not an opcode) has no action: the decoder's truncation error.
        let byte = data.get(at as usize).copied().unwrap_or(0);
        // The opcode, for the arms that need it as a value; the `match` below dispatches on
        // the action looked up by byte, so this lookup stays off the path from one opcode to
        // the next.
        let op = Opcode::decode(byte).map_or(Opcode::STOP, |(op, _)| op);
        // Decodes the instruction inside the arm of its opcode, so that each arm gets its own
        // copy of the decoder (see `Reader::raw_like`), then checks it against the frame.
        macro_rules! decode {
            ($like:expr) => {{
                let instr: RawInstr = match reader.raw_like(op, $like) {
                    Ok(instr) => instr,
                    Err(e) => fail!(e.offset, e.message),
                };
                // Inside a frame, almost every opcode ends within it: one comparison. An
                // opcode that ends past the frame either starts after it (the frame is
                // over) or straddles it. (Arms that return at once never read the reset.)
                #[allow(unused_assignments)]
                if instr.end as usize > frame_end {
                    let end = frame_end;
                    if instr.offset as usize >= end {
                        frame_end = NO_FRAME;
                    } else if instr.op != Opcode::FRAME && !frame_flagged {
                        frame_flagged = true;
                        out.findings.push(frame_overrun(instr.op, at, end));
                    }
                }
                instr
            }};
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
        // TUPLE1, TUPLE2, TUPLE3: the top `n` items (above the last mark) become a tuple.
        macro_rules! small_tuple {
            ($n:literal) => {{
                let n: usize = $n;
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
            }};
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
                    op,
                };
                if !mutate(
                    &mut sizes,
                    &mut stack[last],
                    &mut out.findings,
                    &globals,
                    mutation,
                ) {
                    return LiteResult::NeedsFull;
                }
            }};
        }
        // Dispatch on what the opcode does (the semantics table); inside an action, opcodes
        // are told apart only to decode their argument (each with its own decoder).
        let Some(action) = semantics::action_of_byte(byte) else {
            // Not an opcode: the decoder's error. (A copy of the reader: see
            // `Reader::next_raw_full`.)
            match Reader::new(data, at as usize).next_instr() {
                Err(e) => fail!(e.offset, e.message),
                Ok(_) => return LiteResult::NeedsFull,
            }
        };
        match action {
            Action::Ext | Action::PersistentLoadLine => {
                decode!(op);
                return LiteResult::NeedsFull;
            }
            Action::PersistentLoadStack => {
                decode!(O::BINPERSID);
                let pid = pop!(at);
                if !persistent_load(data, pid, &candidate, &globals, &mut out.storages) {
                    return LiteResult::NeedsFull;
                }
                stack.push(Cell {
                    kind: Kind::Persistent,
                    len: 0,
                    id: 0,
                });
            }
            Action::ImportLines | Action::CallInst => {
                let instr = decode!(O::GLOBAL);
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
                    let mut cell = new_container!(Kind::Call, size);
                    cell.len = global.id as u32;
                    out.calls += 1;
                    stack.push(cell);
                } else {
                    stack.push(global);
                }
            }
            Action::ImportStack => {
                decode!(O::STACK_GLOBAL);
                let name = pop!(at);
                let module = pop!(at);
                let (Some(m), Some(n)) = (borrowed_text(data, module), borrowed_text(data, name))
                else {
                    if [module, name].iter().all(|c| {
                        !matches!(
                            c.kind,
                            Kind::Str | Kind::Global | Kind::Call | Kind::Persistent
                        )
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
            call @ (Action::CallObj
            | Action::CallReduce
            | Action::CallNewObj
            | Action::CallNewObjEx) => {
                decode!(O::REDUCE);
                let callable = match call {
                    Action::CallObj => {
                        let Some(&mark) = marks.last() else {
                            fail!(at, "could not find MARK")
                        };
                        let Some(first) = stack.get(mark).copied() else {
                            fail!(at, "unpickling stack underflow")
                        };
                        pop_mark!(at);
                        first
                    }
                    Action::CallNewObjEx => {
                        pop!(at);
                        pop!(at);
                        pop!(at)
                    }
                    Action::CallNewObj => {
                        pop!(at);
                        pop!(at)
                    }
                    _ => {
                        // CallReduce
                        let args = pop!(at);
                        let callable = pop!(at);
                        // Opaque objects (globals, call results, persistent loads) pass, as
                        // in the machine: only the loader knows what they are.
                        if !matches!(
                            args.kind,
                            Kind::Tuple | Kind::Global | Kind::Call | Kind::Persistent
                        ) {
                            fail!(at, "REDUCE argument list must be a tuple");
                        }
                        callable
                    }
                };
                if callable.kind != Kind::Global {
                    return LiteResult::NeedsFull;
                }
                let mut cell = new_container!(Kind::Call, 1);
                cell.len = callable.id as u32;
                out.calls += 1;
                stack.push(cell);
            }
            Action::Build => {
                decode!(O::BUILD);
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
            Action::Mark => {
                decode!(O::MARK);
                marks.push(stack.len());
            }
            Action::Stop => {
                decode!(O::STOP);
                pop!(at);
                out.stopped = true;
                out.end = reader.position();
                return LiteResult::Done(out);
            }
            Action::Pop => {
                decode!(O::POP);
                if !marks.is_empty() && marks.last() == Some(&stack.len()) {
                    marks.pop();
                } else {
                    pop!(at);
                }
            }
            Action::PopMark => {
                decode!(O::POP_MARK);
                pop_mark!(at);
            }
            Action::Dup => {
                decode!(O::DUP);
                let fence = marks.last().copied().unwrap_or(0);
                if stack.len() <= fence {
                    fail!(at, "unpickling stack underflow");
                }
                let last = stack.len() - 1;
                let top = stack[last].shared(&mut sizes);
                stack[last] = top;
                stack.push(top);
            }
            // Each arm decodes with the layout of one opcode named here (its own copy of the
            // decoder); opcodes share a decoder only when they read their arguments alike.
            Action::PushInt => {
                let cell = match op {
                    O::BININT => int_cell(decode!(O::BININT)),
                    O::BININT1 => int_cell(decode!(O::BININT1)),
                    O::BININT2 => int_cell(decode!(O::BININT2)),
                    O::LONG1 => int_cell(decode!(O::LONG1)),
                    // INT, LONG, LONG4: decoded in full, their value not kept.
                    _ => {
                        decode!(O::INT);
                        ATOM
                    }
                };
                stack.push(cell);
            }
            Action::PushNone | Action::PushTrue | Action::PushFalse => {
                decode!(O::NONE);
                stack.push(ATOM);
            }
            Action::PushFloat => {
                match op {
                    O::BINFLOAT => decode!(O::BINFLOAT),
                    _ => decode!(O::FLOAT),
                };
                stack.push(ATOM);
            }
            Action::PushBytes | Action::PushByteArray => {
                match op {
                    O::SHORT_BINBYTES => decode!(O::SHORT_BINBYTES),
                    O::BINBYTES => decode!(O::BINBYTES),
                    // BINBYTES8, BYTEARRAY8
                    _ => decode!(O::BINBYTES8),
                };
                stack.push(ATOM);
            }
            Action::PushStr => {
                let cell = match op {
                    O::SHORT_BINUNICODE => str_cell(decode!(O::SHORT_BINUNICODE), 1),
                    O::BINUNICODE => str_cell(decode!(O::BINUNICODE), 4),
                    O::BINUNICODE8 => str_cell(decode!(O::BINUNICODE8), 8),
                    // STRING, BINSTRING, SHORT_BINSTRING, UNICODE: decoded in full.
                    _ => {
                        decode!(O::STRING);
                        Cell {
                            kind: Kind::Str,
                            len: u32::MAX,
                            id: 0,
                        }
                    }
                };
                stack.push(cell);
            }
            Action::EmptyTuple => {
                decode!(O::EMPTY_TUPLE);
                let cell = new_container!(Kind::Tuple, 1);
                stack.push(cell);
            }
            // One arm per size, so that summing the items is unrolled (no loop
            // exit to mispredict when tuples of different sizes alternate).
            Action::Tuple1 => {
                decode!(O::TUPLE1);
                small_tuple!(1);
            }
            Action::Tuple2 => {
                decode!(O::TUPLE2);
                small_tuple!(2);
            }
            Action::Tuple3 => {
                decode!(O::TUPLE3);
                small_tuple!(3);
            }
            build @ (Action::TupleFromMark | Action::FrozenSetFromMark) => {
                decode!(O::TUPLE);
                let is_tuple = build == Action::TupleFromMark;
                let tag = match marks.last() {
                    Some(&mark) if is_tuple && stack.len().wrapping_sub(mark) == 5 => {
                        candidate.record(&stack[mark..])
                    }
                    _ => 0,
                };
                let size = pop_mark!(at);
                let kind = if is_tuple { Kind::Tuple } else { Kind::Other };
                let mut cell = new_container!(kind, size);
                cell.len = tag;
                stack.push(cell);
            }
            Action::EmptyList => {
                decode!(O::EMPTY_LIST);
                let cell = new_container!(Kind::List, 1);
                stack.push(cell);
            }
            Action::ListFromMark => {
                decode!(O::LIST);
                let size = pop_mark!(at);
                let cell = new_container!(Kind::List, size);
                stack.push(cell);
            }
            Action::EmptyDict => {
                decode!(O::EMPTY_DICT);
                let cell = new_container!(Kind::Dict, 1);
                stack.push(cell);
            }
            Action::DictFromMark => {
                decode!(O::DICT);
                let mark = marks.last().copied().unwrap_or(0);
                if (stack.len().saturating_sub(mark)) % 2 == 1 {
                    fail!(at, "odd number of items for DICT");
                }
                let size = pop_mark!(at);
                let cell = new_container!(Kind::Dict, size);
                stack.push(cell);
            }
            Action::EmptySet => {
                decode!(O::EMPTY_SET);
                let cell = new_container!(Kind::Set, 1);
                stack.push(cell);
            }
            mutation @ (Action::Append | Action::SetItem) => {
                decode!(O::APPEND);
                let mut added = size_of(&sizes, pop!(at));
                if mutation == Action::SetItem {
                    added = added.saturating_add(size_of(&sizes, pop!(at)));
                }
                let want = if mutation == Action::Append {
                    Kind::List
                } else {
                    Kind::Dict
                };
                mutate_top!(want, added);
            }
            mutation @ (Action::Appends | Action::SetItems | Action::AddItems) => {
                decode!(O::APPENDS);
                let mark = marks.last().copied().unwrap_or(0);
                if mutation == Action::SetItems && (stack.len().saturating_sub(mark)) % 2 == 1 {
                    fail!(at, "odd number of items for SETITEMS");
                }
                let added = pop_mark!(at).saturating_sub(1);
                let want = match mutation {
                    Action::Appends => Kind::List,
                    Action::SetItems => Kind::Dict,
                    _ => Kind::Set,
                };
                mutate_top!(want, added);
            }
            Action::MemoGet => {
                let instr = match op {
                    O::BINGET => decode!(O::BINGET),
                    O::LONG_BINGET => decode!(O::LONG_BINGET),
                    _ => decode!(O::GET),
                };
                let Some(index) = memo_index(&instr) else {
                    fail!(at, "invalid memo index")
                };
                match memo.get(index).copied().flatten() {
                    Some(cell) => stack.push(cell),
                    None => fail!(at, format!("memo value not found at index {index}")),
                }
            }
            Action::MemoPut | Action::Memoize => {
                let instr = match op {
                    O::BINPUT => decode!(O::BINPUT),
                    O::LONG_BINPUT => decode!(O::LONG_BINPUT),
                    O::MEMOIZE => decode!(O::MEMOIZE),
                    _ => decode!(O::PUT),
                };
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
                    if memo.capacity() == 0 {
                        // The first PUT: room for what a small pickle needs (see Reserve in
                        // machine.rs); the rest once the pickle proves large.
                        let rest = data.len().saturating_sub(start);
                        memo.reserve(first_memo_capacity(rest.min(FIRST_RESERVE_INPUT)));
                    }
                    if !memo_reserved && out.opcodes >= PERIODIC_CHECK_INTERVAL {
                        memo_reserved = true;
                        reserve_memo(&mut memo, data.len().saturating_sub(start));
                    }
                    memo.resize(index + 1, None);
                }
                if memo[index].replace(top).is_none() {
                    memo_len += 1;
                }
            }
            Action::Proto => {
                let instr = decode!(O::PROTO);
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
            Action::Frame => {
                let instr = decode!(O::FRAME);
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
            Action::NextBuffer => {
                decode!(O::NEXT_BUFFER);
                fail!(
                    at,
                    "NEXT_BUFFER: the pickle refers to out-of-band data, which model loaders never pass"
                )
            }
            Action::ReadonlyBuffer => {
                decode!(O::READONLY_BUFFER);
                if peek(&stack, &marks).is_none() {
                    fail!(at, "unpickling stack underflow");
                }
            }
        }
    }
}

/// The cell of a BININT, BININT1, BININT2 or LONG1 (see [`int_value`]).
#[inline(always)]
fn int_cell(instr: RawInstr) -> Cell {
    Cell {
        kind: Kind::Int,
        len: 0,
        id: instr.offset,
    }
}

/// The cell of a BINUNICODE-family string whose length prefix is `width` bytes.
#[inline(always)]
fn str_cell(instr: RawInstr, width: u64) -> Cell {
    let body = instr.offset + 1 + width;
    Cell {
        kind: Kind::Str,
        len: u32::try_from(instr.end - body).unwrap_or(u32::MAX),
        id: body,
    }
}

/// The finding for an opcode at `at` that runs past the end of its frame at `end`.
#[cold]
#[inline(never)]
fn frame_overrun(op: Opcode, at: u64, end: usize) -> Finding {
    Finding::new(
        Rule::FrameViolation,
        format!(
            "{} at offset {at} runs past the end of its FRAME (offset {end})",
            op.name()
        ),
    )
    .at(at)
}

fn peek(stack: &[Cell], marks: &[usize]) -> Option<Cell> {
    let fence = marks.last().copied().unwrap_or(0);
    (stack.len() > fence).then(|| stack[stack.len() - 1])
}

/// The logical size a cell adds to the container it goes into.
///
/// Written as range comparisons on the kind (the order of [`Kind`]) rather than a `match`,
/// which compiled to a jump table: an indirect jump per item summed, mispredicted whenever
/// a tuple mixes strings and numbers with containers.
#[inline(always)]
fn size_of(sizes: &[u64], cell: Cell) -> u64 {
    let kind = cell.kind as u8;
    if kind < Kind::Tuple as u8 {
        // Atom, Int, Str, Global, Persistent
        return 1;
    }
    let inline = kind <= Kind::Other as u8 || (kind <= Kind::Set as u8 && cell.len == INLINE);
    if inline {
        cell.id
    } else {
        // shared List, Dict, Set, and Call
        sizes.get(cell.id as usize).copied().unwrap_or(1)
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

/// The value of an int cell's opcode (BININT1, BININT2, BININT, LONG1 up to 8 bytes) when
/// it is non-negative. Decoded only when a persistent id needs it, so pushing an int costs
/// no more than pushing any atom.
fn int_value(data: &[u8], cell: Cell) -> Option<u64> {
    let at = usize::try_from(cell.id).ok()?;
    let le = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b));
    match Opcode::decode(*data.get(at)?)?.0 {
        Opcode::BININT1 => data.get(at + 1..at + 2).map(le),
        Opcode::BININT2 => data.get(at + 1..at + 3).map(le),
        Opcode::BININT => {
            let bytes = <[u8; 4]>::try_from(data.get(at + 1..at + 5)?).ok()?;
            u64::try_from(i32::from_le_bytes(bytes)).ok()
        }
        // LONG1: a length byte, then little-endian two's complement; the sign bit is the top
        // bit of the last byte (an empty body is 0).
        Opcode::LONG1 => {
            let n = usize::from(*data.get(at + 1)?);
            let digits = data.get(at + 2..at + 2 + n)?;
            let negative = digits.last().is_some_and(|b| b & 0x80 != 0);
            (n <= 8 && !negative).then(|| le(digits))
        }
        _ => None,
    }
}

/// Decodes the items of a `('storage', type, key, location, numel)` persistent id as
/// [`persistent::storage_ref`] does on the machine's values; `None` when the pass cannot tell (a
/// decoded rather than borrowed string, an int it did not keep), for the machine to judge.
fn storage_of(data: &[u8], globals: &[Imported], items: &[Cell; 5]) -> Option<StorageRef> {
    let [kind, class, key, _location, numel] = items;
    if borrowed_text(data, *kind)? != "storage" || class.kind != Kind::Global {
        return None;
    }
    let storage_type = globals.get(class.id as usize)?.storage?;
    let key = borrowed_text(data, *key)?.to_string();
    if numel.kind != Kind::Int {
        return None;
    }
    let numel = int_value(data, *numel)?;
    Some(StorageRef {
        storage_type,
        key,
        numel,
    })
}

/// Records an import the policy rates innocuous and returns its cell; `None` when the full
/// machine must judge it (anything else, or joblib's wrapper, whose array bytes need values).
fn import(
    policy: &Policy,
    module: &str,
    name: &str,
    at: u64,
    globals: &mut Vec<Imported>,
    imports: &mut Vec<(String, String, u64)>,
) -> Option<Cell> {
    let assessment = policy.assess(module, name);
    let qualified = crate::policy::normalize_qualified(&format!("{module}.{name}"));
    // A resolver gadget is rated by its calls' arguments, which only the full machine keeps.
    if assessment.rating != Rating::Innocuous
        || assessment.loads_nested
        || qualified == super::joblib::NUMPY_ARRAY_WRAPPER
        || super::gadgets::Gadget::of(module, name).is_some()
    {
        return None;
    }
    if imports.len() < 100_000 {
        imports.push((module.to_string(), name.to_string(), at));
    }
    // Keyed by the raw spelling's storage type too: `torch` `cuda.FloatStorage` and
    // `torch.cuda` `FloatStorage` normalise alike, but only the second is a storage class.
    let storage = persistent::storage_type(module, name);
    let same = |g: &Imported| {
        g.qualified == qualified && g.storage.map(|t| t.class) == storage.map(|t| t.class)
    };
    let id = match globals.iter().position(same) {
        Some(i) => i,
        None => {
            globals.push(Imported { qualified, storage });
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
        // Call results keep a table entry (BUILD grows it through any reference).
        let id = sizes.len() as u64;
        sizes.push(size);
        return Cell { kind, len: 0, id };
    }
    // Tuples and frozensets are inline by kind; their `len` is a tuple's items tag (none yet).
    let len = if matches!(kind, Kind::Tuple | Kind::Other) {
        0
    } else {
        INLINE
    };
    Cell {
        kind,
        len,
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
    globals: &[Imported],
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
    if cell.kind == Kind::Persistent {
        // The machine rates a mutated persistent load dangerous: let it say so.
        return false;
    }
    if matches!(cell.kind, Kind::Call | Kind::Global) {
        let classes = match m.want {
            Kind::List => LIST_LIKE,
            Kind::Dict => DICT_LIKE,
            _ => SET_LIKE,
        };
        let callee = (cell.kind == Kind::Call)
            .then(|| globals.get(cell.len as usize))
            .flatten();
        if !callee.is_some_and(|c| classes.contains(&c.qualified.as_str())) {
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

/// Memo slots reserved for a pickle of up to `len` bytes that uses its memo and has run
/// [`PERIODIC_CHECK_INTERVAL`] opcodes: as many as it has room to fill (a PUT takes at least
/// two bytes, MEMOIZE one but with a preceding value), capped. Growing by doubling instead
/// copied the memo into fresh pages at every step: on a checkpoint's `data.pkl`, as many page
/// faults as the memo itself takes. The reservation is address space only; pages are touched
/// as slots are used. It waits for the pickle to prove large: `len` is the rest of the input,
/// and reserving it at the first PUT of each of thousands of small pickles in a stream mapped
/// and unmapped megabytes per pickle.
fn first_memo_capacity(len: usize) -> usize {
    (len / 2).clamp(16, MAX_FIRST_MEMO_CAPACITY)
}

#[cold]
fn reserve_memo(memo: &mut Vec<Option<Cell>>, len: usize) {
    let total = first_memo_capacity(len);
    memo.reserve(total.saturating_sub(memo.len()));
}

/// 16 MiB of cells.
const MAX_FIRST_MEMO_CAPACITY: usize = 1 << 20;

fn memo_index(instr: &RawInstr) -> Option<usize> {
    usize::try_from(instr.int).ok()
}
