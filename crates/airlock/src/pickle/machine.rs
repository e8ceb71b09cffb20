//! The symbolic unpickler: runs one pickle over [`Value`]s instead of Python objects.
//!
//! It follows CPython's C unpickler step by step — a value stack with a separate mark stack
//! (values below the last mark are out of reach, `POP` on a mark pops the mark), a memo that
//! stores stack values (reset for every pickle, as every `pickle.load` call starts afresh),
//! `MEMOIZE` indexing by the memo's *size* — and records everything a real load would do
//! that matters: every import (`GLOBAL`, `STACK_GLOBAL`, `INST`, `EXT*`), every call
//! (`REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `OBJ`, `INST`), every `BUILD` and what it is applied to,
//! every persistent load and every mutation of a non-container. Nothing is executed.
//!
//! Where the loader would raise, the machine stops at the same instruction and reports it;
//! everything seen before that point has already been reported.

use crate::hash::HashMap;

use super::gadgets::{self, Gadget, Resolution};
use super::opcodes::{HIGHEST_PROTOCOL, Opcode};
use super::reader::{Arg, DecodeError, Instr, Long, Reader};
use super::semantics::{self, Action, Container as Built, Items};
use super::value::{Arena, Call, CallKind, Global, Node, Span, Value};
use crate::ctx::Ctx;
use crate::policy::Assessment;
use crate::policy::profiles::Container;
use crate::report::{Finding, Rating};
use crate::rules::{Rule, Severity};

/// Children kept per container; beyond this a container only counts its items.
pub(super) const MAX_KEPT_CHILDREN: usize = 1 << 20;
/// Memo indices below this live in a dense vector; larger ones in a map.
const DENSE_MEMO: usize = 1 << 20;
/// How often (in opcodes) the time budget is checked, and after how many opcodes a pickle
/// counts as large enough to reserve capacity for ([`Reserve`]). At a few nanoseconds per
/// opcode this is well under a millisecond, so a timeout is met within 10 % for any timeout
/// of 10 ms or more.
pub(crate) const PERIODIC_CHECK_INTERVAL: u64 = 1 << 14;

/// What running one pickle produced.
#[derive(Debug)]
pub struct Outcome<'a> {
    pub arena: Arena<'a>,
    /// The value `STOP` returned, when the pickle completed.
    pub root: Option<Value>,
    /// Offset of the first opcode.
    pub start: usize,
    /// Offset just past `STOP`, or of the instruction where the machine stopped.
    pub end: usize,
    /// True when `STOP` was reached.
    pub stopped: bool,
    /// Why the loader would raise, if it would (offset, message).
    pub error: Option<(u64, String)>,
    /// True when a limit ended the run before the loader would have stopped.
    pub limited: bool,
    pub opcodes: u64,
    /// Number of imports (`GLOBAL`-like opcodes) executed.
    pub imports: u32,
    /// Number of calls made.
    pub calls: u32,
    /// Every persistent id passed to `persistent_load`, with the opcode offset (full machine).
    pub persistent_ids: Vec<(Value, u64)>,
    /// The storages the fast pass decoded from the persistent ids instead (it keeps no
    /// values); [`super::persistent::storage_refs`] reads either.
    pub storages: Vec<super::persistent::StorageRef>,
    /// The protocol declared by `PROTO` (0 when absent).
    pub protocol: u8,
    /// Arrays read after a joblib `NumpyArrayWrapper` (a joblib file when non-zero).
    pub joblib_arrays: u32,
    /// True when the fast pass ran: it keeps no values, so `root` is `None` and the arena
    /// empty even though the pickle stopped. Callers that read values use [`run_full`].
    pub fast_pass: bool,
}

impl Outcome<'_> {
    /// True when the loader would fail on these bytes before importing or calling anything:
    /// loading them runs nothing, whatever opcodes they happen to start with (a PNG header
    /// decodes as NEWFALSE, PERSID). Never when a limit or the timeout stopped the run: the
    /// bytes read so far were a pickle, and the rest was not read.
    pub fn is_not_a_pickle(&self) -> bool {
        !self.stopped && !self.limited && self.imports == 0 && self.calls == 0
    }
}

#[derive(Debug)]
enum Halt {
    /// The loader would raise here.
    Error(u64, String),
    /// A scanning limit was reached.
    Limit,
    Stop,
}

impl From<DecodeError> for Halt {
    fn from(e: DecodeError) -> Self {
        Halt::Error(e.offset, e.message)
    }
}

#[derive(Default)]
struct Memo {
    dense: Vec<Option<Value>>,
    sparse: HashMap<u64, Value>,
    len: usize,
}

impl Memo {
    /// Makes room for `more` dense entries (at most [`DENSE_MEMO`] in all).
    fn reserve(&mut self, more: usize) {
        let room = DENSE_MEMO.saturating_sub(self.dense.len());
        self.dense.reserve(more.min(room));
    }

    fn get(&self, index: u64) -> Option<Value> {
        match usize::try_from(index) {
            Ok(i) if i < DENSE_MEMO => self.dense.get(i).copied().flatten(),
            _ => self.sparse.get(&index).copied(),
        }
    }

    fn put(&mut self, index: u64, value: Value) {
        let fresh = match usize::try_from(index) {
            Ok(i) if i < DENSE_MEMO => {
                if i >= self.dense.len() {
                    self.dense.resize(i + 1, None);
                }
                self.dense[i].replace(value).is_none()
            }
            _ => self.sparse.insert(index, value).is_none(),
        };
        if fresh {
            self.len += 1;
        }
    }
}

/// Findings reported at most once per pickle.
#[derive(Default)]
struct Once {
    repeated_proto: bool,
    frame: bool,
    expansion: bool,
    truncated: bool,
}

struct Machine<'a, 'c, 's> {
    ctx: &'c mut Ctx<'s>,
    arena: Arena<'a>,
    reader: Reader<'a>,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    /// Logical size of each node with shared references expanded (memo-expansion check).
    sizes: Vec<u64>,
    expansion_threshold: u64,
    protocol: u8,
    seen_proto: bool,
    frame_end: Option<usize>,
    once: Once,
    opcodes: u64,
    imports: u32,
    calls: u32,
    persistent_ids: Vec<(Value, u64)>,
    root: Option<Value>,
    nesting: usize,
    joblib_arrays: u32,
    /// Capacity to reserve once the pickle proves large; `None` once reserved.
    reserve: Option<Reserve>,
    /// Offset of the instruction being run (where findings raised by its effects point).
    instr_at: u64,
    /// Resolver gadgets imported so far, reported once the pickle ends ([`PendingGadget`]).
    gadgets: Vec<PendingGadget<'a>>,
}

/// A resolver gadget (`builtins.getattr`, ...; see [`gadgets`]) whose import is reported only
/// when the pickle ends, once the machine knows how it was used: not at all when every use
/// was a call resolved from constant arguments (each resolution is reported as the import of
/// what it yields), with its own rating otherwise.
struct PendingGadget<'a> {
    node: Value,
    module: std::borrow::Cow<'a, str>,
    name: std::borrow::Cow<'a, str>,
    offset: u64,
    assessment: Assessment,
    /// Calls resolved from constant arguments.
    resolved: u32,
    /// Why a call of it was not resolved (the first such call).
    unresolved: Option<String>,
}

/// Gadget imports deferred per pickle; past this many, a gadget is rated by name as any
/// other import (bounded memory and lookup time against a pickle importing it a million times).
const MAX_PENDING_GADGETS: usize = 256;

/// Pickles at least this long that only build data take the fast pass ([`super::lite`]).
const LITE_MIN_BYTES: usize = 64 * 1024;

/// Runs the pickle that starts at `start` in `data`, reporting into `ctx`. A data-only pickle
/// of 64 KiB (`LITE_MIN_BYTES`) or more takes the fast pass, which reports the same findings,
/// imports and storages but keeps no values ([`Outcome::fast_pass`]); callers that read values
/// use [`run_full`].
pub fn run<'a>(ctx: &mut Ctx, data: &'a [u8], start: usize) -> Outcome<'a> {
    if data.len().saturating_sub(start) >= LITE_MIN_BYTES
        && let Some(outcome) = run_lite(ctx, data, start)
    {
        return outcome;
    }
    run_nested(ctx, data, start, 0)
}

/// The fast pass for large data-only pickles; `None` when the full machine is needed (the
/// pickle imports or calls something, or is small enough that the full machine is cheap and
/// gives callers its values).
fn run_lite<'a>(ctx: &mut Ctx, data: &'a [u8], start: usize) -> Option<Outcome<'a>> {
    let limits = ctx.limits();
    let lite_limits = super::lite::LiteLimits {
        max_opcodes: limits.max_opcodes,
        max_stack_depth: limits.max_stack_depth,
        max_memo_entries: limits.max_memo_entries,
    };
    let policy = ctx.policy();
    let time_is_up = || ctx.check_timeout();
    let super::lite::LiteResult::Done(lite) =
        super::lite::run_until(data, start, lite_limits, policy, time_is_up)
    else {
        return None;
    };
    if lite.end.saturating_sub(start) < LITE_MIN_BYTES && !lite.timed_out {
        return None;
    }
    for (module, name, offset) in &lite.imports {
        // Rated as the full machine rates it (`Ctx::assess`: torch.jit's unpickler in a
        // TorchScript archive), not by the policy alone.
        let assessment = ctx.assess(module, name);
        ctx.import(module, name, *offset, &assessment);
    }
    for finding in lite.findings {
        ctx.report(finding);
    }
    if lite.limited && !lite.timed_out {
        // (A timeout has its own finding, recorded by `check_timeout`.)
        ctx.report(
            Finding::new(
                Rule::LimitReached,
                "scanning stopped at a limit; the rest of the pickle was not read",
            )
            .at(lite.end as u64),
        );
    }
    Some(Outcome {
        arena: Arena::new(data),
        root: None,
        start,
        end: lite.end,
        stopped: lite.stopped,
        error: lite.error,
        limited: lite.limited,
        opcodes: lite.opcodes,
        imports: u32::try_from(lite.imports.len()).unwrap_or(u32::MAX),
        calls: lite.calls,
        persistent_ids: Vec::new(),
        storages: lite.storages,
        protocol: lite.protocol,
        joblib_arrays: 0,
        fast_pass: true,
    })
}

/// Runs the full machine, never the fast pass (the converter and tests need its values).
pub fn run_full<'a>(ctx: &mut Ctx, data: &'a [u8], start: usize) -> Outcome<'a> {
    run_nested(ctx, data, start, 0)
}

/// Capacity reserved for a large pickle, per byte of input after the start. A PyTorch
/// `data.pkl` makes a node per 11 bytes, a memo entry per 16 and a persistent load per 127;
/// these ratios leave room for denser pickles. Growing the vectors by doubling instead copies
/// them into fresh pages, and on a checkpoint those page faults cost more than the decoding;
/// capacity that is reserved but never used costs little (its pages are never touched).
///
/// It is reserved only once a pickle has run [`PERIODIC_CHECK_INTERVAL`] opcodes, not
/// before its first: the input after the start says how large the pickle *may* be, not how
/// large it is. Reserving for the whole rest of the input before every pickle of a stream of
/// small ones mapped and unmapped tens of megabytes per pickle (a 4 MB stream of 800,000
/// pickles took 75 s in the release CLI, 0.3 s now). Before its first opcode a pickle gets
/// the reservation of a [`FIRST_RESERVE_INPUT`]-byte input: a few kilobytes, which a small
/// pickle fills without growing its vectors by doubling (leaving that to grow cost 5 % more
/// instructions on a folder of 1-100 KB pickles), and which the allocator hands back and
/// out again cheaply across a stream of thousands of pickles.
#[derive(Debug, Clone, Copy)]
struct Reserve {
    nodes: usize,
    memo: usize,
    persistent_ids: usize,
}

/// Most entries reserved for any one vector; past it they grow as usual.
const MAX_RESERVED: usize = 1 << 20;

/// Input bytes whose reservation every pickle gets before its first opcode ([`Reserve`]).
pub(crate) const FIRST_RESERVE_INPUT: usize = 16 << 10;

impl Reserve {
    fn for_input(bytes: usize) -> Self {
        let per = |ratio: usize| (bytes / ratio).min(MAX_RESERVED);
        Reserve {
            nodes: per(6),
            memo: per(8),
            persistent_ids: per(64),
        }
    }
}

fn run_nested<'a>(ctx: &mut Ctx, data: &'a [u8], start: usize, nesting: usize) -> Outcome<'a> {
    let rest = data.len().saturating_sub(start);
    let reserve = Reserve::for_input(rest);
    let first = Reserve::for_input(rest.min(FIRST_RESERVE_INPUT));
    let mut arena = Arena::new(data);
    arena.reserve(first.nodes);
    let mut memo = Memo::default();
    memo.reserve(first.memo);
    let mut m = Machine {
        ctx,
        arena,
        reader: Reader::new(data, start),
        stack: Vec::new(),
        marks: Vec::new(),
        memo,
        sizes: Vec::with_capacity(first.nodes),
        expansion_threshold: (data.len() as u64).saturating_mul(64).max(10_000_000),
        protocol: 0,
        seen_proto: false,
        frame_end: None,
        once: Once::default(),
        opcodes: 0,
        imports: 0,
        calls: 0,
        persistent_ids: Vec::with_capacity(first.persistent_ids),
        root: None,
        nesting,
        joblib_arrays: 0,
        reserve: Some(reserve),
        instr_at: start as u64,
        gadgets: Vec::new(),
    };
    let halt = m.run_loop();
    m.settle_gadgets();
    let (stopped, error, limited) = match halt {
        Halt::Stop => (true, None, false),
        Halt::Error(offset, message) => (false, Some((offset, message)), false),
        Halt::Limit => (false, None, true),
    };
    Outcome {
        root: m.root,
        start,
        end: m.reader.position(),
        stopped,
        error,
        limited,
        opcodes: m.opcodes,
        imports: m.imports,
        calls: m.calls,
        persistent_ids: m.persistent_ids,
        storages: Vec::new(),
        protocol: m.protocol,
        joblib_arrays: m.joblib_arrays,
        arena: m.arena,
        fast_pass: false,
    }
}

impl<'a> Machine<'a, '_, '_> {
    fn run_loop(&mut self) -> Halt {
        let limits = self.ctx.limits();
        loop {
            self.opcodes += 1;
            if self.opcodes > limits.max_opcodes {
                return self.limit(format!("more than {} opcodes", limits.max_opcodes));
            }
            if self.opcodes % PERIODIC_CHECK_INTERVAL == 0 && self.periodic_check() {
                return Halt::Limit;
            }
            let instr = match self.reader.next_instr() {
                Ok(instr) => instr,
                Err(e) => return e.into(),
            };
            self.check_frame(&instr);
            self.instr_at = instr.offset;
            match self.step(instr) {
                Ok(()) => {}
                Err(halt) => return halt,
            }
            if self.stack.len() + self.marks.len() > limits.max_stack_depth {
                return self.limit(format!("stack deeper than {}", limits.max_stack_depth));
            }
            if self.arena.len() > limits.max_values {
                return self.limit(format!("more than {} values", limits.max_values));
            }
        }
    }

    /// Runs every [`PERIODIC_CHECK_INTERVAL`] opcodes: reserves capacity the first time (the
    /// pickle is large, see [`Reserve`]), and returns true once the time budget is spent.
    #[cold]
    fn periodic_check(&mut self) -> bool {
        if let Some(reserve) = self.reserve.take() {
            self.arena.reserve(reserve.nodes);
            self.sizes.reserve(reserve.nodes);
            self.memo.reserve(reserve.memo);
            self.persistent_ids.reserve(reserve.persistent_ids);
        }
        self.ctx.check_timeout()
    }

    fn limit(&mut self, what: String) -> Halt {
        let offset = self.reader.position() as u64;
        self.ctx.report(
            Finding::new(
                Rule::LimitReached,
                format!("scanning stopped: {what}; the rest of the pickle was not read"),
            )
            .at(offset),
        );
        Halt::Limit
    }

    // ---- frames ------------------------------------------------------------------------

    fn check_frame(&mut self, instr: &Instr<'a>) {
        let Some(end) = self.frame_end else { return };
        let (offset, instr_end) = (instr.offset as usize, instr.end as usize);
        if offset >= end {
            self.frame_end = None;
        } else if instr_end > end && instr.op != Opcode::FRAME {
            self.frame_violation(
                instr.offset,
                format!(
                    "{} at offset {offset} runs past the end of its FRAME (offset {end})",
                    instr.op.name()
                ),
            );
        }
    }

    fn frame_violation(&mut self, offset: u64, message: String) {
        if !self.once.frame {
            self.once.frame = true;
            self.ctx
                .report(Finding::new(Rule::FrameViolation, message).at(offset));
        }
    }

    // ---- stack -------------------------------------------------------------------------

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: u64) -> Result<Value, Halt> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at));
        }
        self.stack.pop().ok_or_else(|| underflow(at))
    }

    fn top(&self, at: u64) -> Result<Value, Halt> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at));
        }
        self.stack.last().copied().ok_or_else(|| underflow(at))
    }

    /// Pops to the last mark (CPython's `marker()` plus the items above it).
    fn pop_mark(&mut self, at: u64) -> Result<Vec<Value>, Halt> {
        let mark = self.pop_mark_index(at)?;
        Ok(self.stack.split_off(mark))
    }

    /// Pops the last mark and returns where it sat on the stack; the items above it stay.
    fn pop_mark_index(&mut self, at: u64) -> Result<usize, Halt> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Halt::Error(at, "could not find MARK".into()))?;
        Ok(mark.min(self.stack.len()))
    }

    fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    fn size_of(&self, value: Value) -> u64 {
        match value {
            Value::Node(id) => self.sizes.get(id as usize).copied().unwrap_or(1),
            _ => 1,
        }
    }

    fn new_node(&mut self, node: Node<'a>, size: u64) -> Value {
        let value = self.arena.push(node);
        self.sizes.push(size);
        if size > self.expansion_threshold && !self.once.expansion {
            self.report_expansion(size);
        }
        value
    }

    fn grow(&mut self, target: Value, by: u64) {
        if let Value::Node(id) = target
            && let Some(size) = self.sizes.get_mut(id as usize)
        {
            *size = size.saturating_add(by);
            let size = *size;
            if size > self.expansion_threshold && !self.once.expansion {
                self.report_expansion(size);
            }
        }
    }

    fn report_expansion(&mut self, size: u64) {
        self.once.expansion = true;
        // At the instruction that expands (as the fast pass reports it), not past it.
        let at = self.instr_at;
        self.ctx.report(
            Finding::new(
                Rule::MemoExpansion,
                format!(
                    "memo references expand to more than {size} values from {} bytes",
                    self.reader.data().len()
                ),
            )
            .at(at),
        );
    }

    fn keep<T>(&mut self, items: &mut Vec<T>, mut more: Vec<T>) {
        let room = MAX_KEPT_CHILDREN.saturating_sub(items.len());
        if more.len() > room {
            more.truncate(room);
            self.note_truncated();
        }
        if items.is_empty() {
            // The common case (a new container, a first SETITEMS): take the vector as it is.
            *items = more;
        } else {
            items.append(&mut more);
        }
    }

    fn note_truncated(&mut self) {
        if !self.once.truncated {
            self.once.truncated = true;
            self.ctx.note(format!(
                "containers over {MAX_KEPT_CHILDREN} items summarised"
            ));
        }
    }

    /// Moves the stack from `from` up into a new tuple (at most [`MAX_KEPT_CHILDREN`] items
    /// kept; the logical size counts them all). No allocation: tuple items live in the
    /// arena's pool.
    fn tuple_from_stack(&mut self, from: usize) -> Value {
        let from = from.min(self.stack.len());
        let size = self.stack[from..]
            .iter()
            .fold(1u64, |acc, v| acc.saturating_add(self.size_of(*v)));
        let count = self.stack.len() - from;
        let kept = count.min(MAX_KEPT_CHILDREN);
        if kept < count {
            self.note_truncated();
        }
        let node = self.arena.tuple(&self.stack[from..from + kept]);
        self.stack.truncate(from);
        self.new_node(node, size)
    }

    fn container(&mut self, items: Vec<Value>, make: fn(Vec<Value>) -> Node<'a>) -> Value {
        let size = items
            .iter()
            .fold(1u64, |acc, v| acc.saturating_add(self.size_of(*v)));
        let mut kept = Vec::new();
        self.keep(&mut kept, items);
        self.new_node(make(kept), size)
    }

    fn text(&mut self, text: std::borrow::Cow<'a, str>) -> Value {
        match text {
            std::borrow::Cow::Borrowed(s) => Value::Str(self.span_of(s.as_bytes())),
            std::borrow::Cow::Owned(s) => self.new_node(Node::Str(s.into_boxed_str()), 1),
        }
    }

    fn span_of(&self, bytes: &'a [u8]) -> Span {
        let base = self.reader.data().as_ptr() as usize;
        let start = (bytes.as_ptr() as usize).saturating_sub(base) as u64;
        Span {
            start,
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        }
    }

    fn long(&mut self, long: Long) -> Value {
        match long {
            Long::Small(i) => match i64::try_from(i) {
                Ok(i) => Value::Int(i),
                Err(_) => self.new_node(Node::Long(Box::new(long)), 1),
            },
            Long::Big(_) => self.new_node(Node::Long(Box::new(long)), 1),
        }
    }

    // ---- the instruction set -----------------------------------------------------------

    /// Applies one instruction, as the semantics table says its opcode acts
    /// ([`semantics::of`]); opcodes that share an action differ in their argument only.
    fn step(&mut self, instr: Instr<'a>) -> Result<(), Halt> {
        let at = instr.offset;
        match semantics::of(instr.op).action {
            Action::Mark => self.marks.push(self.stack.len()),
            Action::Stop => {
                self.root = Some(self.pop(at)?);
                return Err(Halt::Stop);
            }
            Action::Pop => {
                if self.marks.last() == Some(&self.stack.len()) && !self.marks.is_empty() {
                    self.marks.pop();
                } else {
                    self.pop(at)?;
                }
            }
            Action::PopMark => {
                self.pop_mark(at)?;
            }
            Action::Dup => {
                let v = self.top(at)?;
                self.push(v);
            }
            push @ (Action::PushNone
            | Action::PushTrue
            | Action::PushFalse
            | Action::PushInt
            | Action::PushFloat
            | Action::PushStr
            | Action::PushBytes
            | Action::PushByteArray) => self.push_atom(push, instr.arg),
            build @ (Action::EmptyTuple
            | Action::Tuple1
            | Action::Tuple2
            | Action::Tuple3
            | Action::TupleFromMark
            | Action::EmptyList
            | Action::ListFromMark
            | Action::EmptyDict
            | Action::DictFromMark
            | Action::EmptySet
            | Action::FrozenSetFromMark) => {
                if let Some((container, items)) = build.builds() {
                    self.build_container(container, items, at)?;
                }
            }
            mutation @ (Action::Append
            | Action::Appends
            | Action::AddItems
            | Action::SetItem
            | Action::SetItems
            | Action::Build) => self.mutate(mutation, instr.op, at)?,
            Action::MemoGet => {
                let index = memo_index(&instr)?;
                let v = self.memo.get(index).ok_or_else(|| {
                    Halt::Error(at, format!("memo value not found at index {index}"))
                })?;
                self.push(v);
            }
            Action::MemoPut => {
                let index = memo_index(&instr)?;
                let v = self.top(at)?;
                self.memo_put(index, v)?;
            }
            Action::Memoize => {
                let v = self.top(at)?;
                self.memo_put(self.memo.len as u64, v)?;
            }
            Action::Proto => {
                let version = match instr.arg {
                    Arg::Int(v) => v,
                    _ => 0,
                };
                if version > i64::from(HIGHEST_PROTOCOL) {
                    return Err(Halt::Error(
                        at,
                        format!("unsupported pickle protocol: {version}"),
                    ));
                }
                if self.seen_proto && !self.once.repeated_proto {
                    self.once.repeated_proto = true;
                    self.ctx.report(
                        Finding::new(Rule::RepeatedProto, "PROTO appears again inside the pickle")
                            .at(at),
                    );
                }
                self.seen_proto = true;
                self.protocol = version as u8;
            }
            Action::Frame => {
                if let Some(end) = self.frame_end
                    && (at as usize) < end
                {
                    self.frame_violation(
                        at,
                        format!(
                            "a FRAME opens at offset {at} before the previous frame ends at {end}"
                        ),
                    );
                }
                if let Arg::Size(size) = instr.arg {
                    self.frame_end = Some((instr.end as usize).saturating_add(size as usize));
                }
            }
            Action::ImportLines => {
                if let Arg::Pair(module, name) = instr.arg {
                    let v = self.import(module, name, at)?;
                    self.push(v);
                }
            }
            Action::ImportStack => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let v = self.stack_global(module, name, at)?;
                self.push(v);
            }
            call @ (Action::CallInst
            | Action::CallObj
            | Action::CallReduce
            | Action::CallNewObj
            | Action::CallNewObjEx) => {
                if let Some(kind) = call.call() {
                    self.call_opcode(kind, instr.arg, at)?;
                }
            }
            Action::PersistentLoadLine => {
                if let Arg::Line(line) = instr.arg {
                    if !line.is_ascii() {
                        return Err(Halt::Error(
                            at,
                            "persistent IDs in protocol 0 must be ASCII strings".into(),
                        ));
                    }
                    let pid = Value::Str(self.span_of(line));
                    let v = self.persistent_load(pid, at);
                    self.push(v);
                }
            }
            Action::PersistentLoadStack => {
                let pid = self.pop(at)?;
                let v = self.persistent_load(pid, at);
                self.push(v);
            }
            Action::Ext => {
                let code = match instr.arg {
                    Arg::Int(c) => c,
                    _ => 0,
                };
                if code <= 0 {
                    return Err(Halt::Error(at, "EXT specifies code <= 0".into()));
                }
                self.ctx.report(
                    Finding::new(
                        Rule::ExtensionCode,
                        format!("{} {code} imports whatever the copyreg extension registry maps the code to", instr.op.name()),
                    )
                    .at(at),
                );
                self.imports += 1;
                let v = self.new_node(Node::Ext(code), 1);
                self.push(v);
            }
            Action::NextBuffer => {
                return Err(Halt::Error(
                    at,
                    "NEXT_BUFFER: the pickle refers to out-of-band data, which model loaders never pass".into(),
                ));
            }
            Action::ReadonlyBuffer => {
                self.top(at)?;
            }
        }
        Ok(())
    }

    /// The `Push` actions: the value an opcode's argument encodes.
    fn push_atom(&mut self, push: Action, arg: Arg<'a>) {
        match push {
            Action::PushNone => self.push(Value::None),
            Action::PushTrue => self.push(Value::Bool(true)),
            Action::PushFalse => self.push(Value::Bool(false)),
            Action::PushInt => {
                let v = match arg {
                    Arg::Bool(b) => Value::Bool(b),
                    Arg::Int(i) => Value::Int(i),
                    Arg::Long(l) => self.long(l),
                    _ => Value::None,
                };
                self.push(v);
            }
            Action::PushFloat => {
                if let Arg::Float(f) = arg {
                    self.push(Value::Float(f));
                }
            }
            Action::PushStr => {
                if let Arg::Str(s) = arg {
                    let v = self.text(s);
                    self.push(v);
                }
            }
            Action::PushBytes => {
                if let Arg::Bytes(b) = arg {
                    let span = self.span_of(b);
                    self.push(Value::Bytes(span));
                }
            }
            _ => {
                // PushByteArray
                if let Arg::ByteArray(b) = arg {
                    let span = self.span_of(b);
                    let v = self.new_node(Node::ByteArray(span), 1);
                    self.push(v);
                }
            }
        }
    }

    /// The building actions ([`Action::builds`]): a new container from the stack.
    fn build_container(&mut self, container: Built, items: Items, at: u64) -> Result<(), Halt> {
        let v = match (container, items) {
            (Built::Tuple, Items::Empty) => self.tuple_from_stack(self.stack.len()),
            (Built::Tuple, Items::Top(n)) => {
                let n = usize::from(n);
                if self.stack.len() < self.fence() + n {
                    return Err(underflow(at));
                }
                self.tuple_from_stack(self.stack.len() - n)
            }
            (Built::Tuple, Items::Mark) => {
                let mark = self.pop_mark_index(at)?;
                self.tuple_from_stack(mark)
            }
            (Built::List, Items::Empty) => self.container(Vec::new(), Node::List),
            (Built::Set, Items::Empty) => self.container(Vec::new(), Node::Set),
            (Built::Dict, Items::Empty) => self.new_node(Node::Dict(Vec::new()), 1),
            (Built::Dict, Items::Mark) => {
                let items = self.pop_mark(at)?;
                if items.len() % 2 == 1 {
                    return Err(Halt::Error(at, "odd number of items for DICT".into()));
                }
                let size = items
                    .iter()
                    .fold(1u64, |acc, v| acc.saturating_add(self.size_of(*v)));
                let mut pairs = Vec::new();
                self.keep(
                    &mut pairs,
                    items.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
                );
                self.new_node(Node::Dict(pairs), size)
            }
            (container, _) => {
                // LIST and FROZENSET; no opcode builds a list, set or dict from the top `n`.
                let items = self.pop_mark(at)?;
                let make = match container {
                    Built::List => Node::List,
                    Built::Set => Node::Set,
                    _ => Node::FrozenSet,
                };
                self.container(items, make)
            }
        };
        self.push(v);
        Ok(())
    }

    /// The mutating actions: pops the operands and applies them to the value below.
    fn mutate(&mut self, mutation: Action, op: Opcode, at: u64) -> Result<(), Halt> {
        let name = op.name();
        match mutation {
            Action::Append => {
                let value = self.pop(at)?;
                let target = self.top(at)?;
                self.append(target, vec![value], at, name);
            }
            Action::Appends | Action::AddItems => {
                let items = self.pop_mark(at)?;
                let target = self.top(at)?;
                self.append(target, items, at, name);
            }
            Action::SetItem => {
                let value = self.pop(at)?;
                let key = self.pop(at)?;
                let target = self.top(at)?;
                self.set_items(target, vec![(key, value)], at, name);
            }
            Action::SetItems => {
                let items = self.pop_mark(at)?;
                if items.len() % 2 == 1 {
                    return Err(Halt::Error(at, "odd number of items for SETITEMS".into()));
                }
                let target = self.top(at)?;
                let pairs = items.chunks_exact(2).map(|p| (p[0], p[1])).collect();
                self.set_items(target, pairs, at, name);
            }
            _ => {
                // Build
                let state = self.pop(at)?;
                let target = self.top(at)?;
                self.build(target, state, at)?;
            }
        }
        Ok(())
    }

    /// The calling actions ([`Action::call`]): finds the callable and its arguments as the call's opcode lays them
    /// out, and records the call.
    fn call_opcode(&mut self, kind: CallKind, arg: Arg<'a>, at: u64) -> Result<(), Halt> {
        let v = match kind {
            CallKind::Inst => {
                let Arg::Pair(module, name) = arg else {
                    return Ok(());
                };
                // The C unpickler finds the mark before it imports (pickle.py does the
                // reverse); pickle.load and torch.load use the C one.
                let mark = self.pop_mark_index(at)?;
                let class = self.import(module, name, at)?;
                let args = self.tuple_from_stack(mark);
                self.call(CallKind::Inst, class, args, None, at)
            }
            CallKind::Obj => {
                let mark = self.pop_mark_index(at)?;
                let Some(&class) = self.stack.get(mark) else {
                    return Err(underflow(at));
                };
                let args = self.tuple_from_stack(mark + 1);
                self.stack.truncate(mark);
                self.call(CallKind::Obj, class, args, None, at)
            }
            CallKind::Reduce => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                if !matches!(self.arena.node(args), Some(Node::Tuple(_))) && !self.is_opaque(args) {
                    return Err(Halt::Error(
                        at,
                        "REDUCE argument list must be a tuple".into(),
                    ));
                }
                self.call(CallKind::Reduce, callable, args, None, at)
            }
            CallKind::NewObj => {
                let args = self.pop(at)?;
                let class = self.pop(at)?;
                self.call(CallKind::NewObj, class, args, None, at)
            }
            CallKind::NewObjEx => {
                let kwargs = self.pop(at)?;
                let args = self.pop(at)?;
                let class = self.pop(at)?;
                self.call(CallKind::NewObjEx, class, args, Some(kwargs), at)
            }
        };
        self.push(v);
        Ok(())
    }

    fn memo_put(&mut self, index: u64, value: Value) -> Result<(), Halt> {
        let limit = self.ctx.limits().max_memo_entries;
        if self.memo.len >= limit && self.memo.get(index).is_none() {
            return Err(self.limit(format!("more than {limit} memo entries")));
        }
        self.memo.put(index, value);
        Ok(())
    }

    /// True for values whose type is only known at load time (call results, globals, ...).
    fn is_opaque(&self, value: Value) -> bool {
        matches!(
            self.arena.node(value),
            Some(
                Node::Call(_)
                    | Node::Global(_)
                    | Node::Ext(_)
                    | Node::PersistentLoad { .. }
                    | Node::Buffer
            )
        )
    }

    // ---- imports -----------------------------------------------------------------------

    fn import(
        &mut self,
        module: std::borrow::Cow<'a, str>,
        name: std::borrow::Cow<'a, str>,
        at: u64,
    ) -> Result<Value, Halt> {
        if !is_python_path(&module) || !is_python_path(&name) {
            // `find_class` imports the module and walks attributes: neither can exist under a
            // name that is not a dotted Python identifier, so the loader fails here.
            return Err(Halt::Error(
                at,
                format!(
                    "`{}` `{}` is not a Python module and name; find_class fails",
                    clip(&module),
                    clip(&name)
                ),
            ));
        }
        self.imports += 1;
        let assessment = self.ctx.assess(&module, &name);
        // A gadget the user denied by name is never resolved: it stays denied.
        let gadget = Gadget::of(&module, &name).filter(|_| {
            self.gadgets.len() < MAX_PENDING_GADGETS
                && !self.ctx.policy().user_denies(&module, &name)
        });
        if gadget.is_none() {
            self.ctx.import(&module, &name, at, &assessment);
        }
        let global = Global {
            module: module.clone(),
            name: name.clone(),
            offset: at,
            rating: assessment.rating,
            loads_nested: assessment.loads_nested,
            gadget,
        };
        let node = self.new_node(Node::Global(Box::new(global)), 1);
        if gadget.is_some() {
            self.gadgets.push(PendingGadget {
                node,
                module,
                name,
                offset: at,
                assessment,
                resolved: 0,
                unresolved: None,
            });
        }
        Ok(node)
    }

    // ---- resolver gadgets --------------------------------------------------------------

    /// Resolves a call of a pending gadget from its constant arguments (`None` when it cannot
    /// be, noting why): the result is the global it yields, rated and reported as an import
    /// at the call's offset.
    fn resolve_gadget_call(
        &mut self,
        kind: CallKind,
        callable: Value,
        args: Value,
        kwargs: Option<Value>,
        at: u64,
    ) -> Option<Value> {
        let gadget = self.arena.global_of(callable)?.gadget?;
        // Pending gadgets are pushed as their nodes are made: in node order.
        let Value::Node(id) = callable else {
            return None;
        };
        let index = self
            .gadgets
            .binary_search_by_key(&id, |g| match g.node {
                Value::Node(n) => n,
                _ => u32::MAX,
            })
            .ok()?;
        let resolution = match (kind, kwargs) {
            (CallKind::Reduce | CallKind::Obj | CallKind::Inst, None) => {
                gadgets::resolve(gadget, &self.arena, args)
            }
            _ => Err(format!(
                "it is called by {} with keyword arguments or as a class",
                kind.opcode_name()
            )),
        };
        let pending = &mut self.gadgets[index];
        let resolution = match resolution {
            Ok(resolution) => resolution,
            Err(why) => {
                pending.unresolved.get_or_insert_with(|| {
                    format!("its call at offset {at} is not resolved: {why}")
                });
                return None;
            }
        };
        pending.resolved = pending.resolved.saturating_add(1);
        let via = format!(
            "resolved from a call of `{}.{}` at offset {at}",
            pending.module, pending.name
        );
        self.calls += 1;
        Some(match resolution {
            Resolution::Global { module, name } => self.resolved_global(module, name, &via, at),
            Resolution::Range(ints) => {
                let range = self.resolved_global("builtins".into(), "range".into(), &via, at);
                let items: Vec<Value> = ints.into_iter().map(Value::Int).collect();
                let tuple = self.arena.tuple(&items);
                let args = self.new_node(tuple, 1 + items.len() as u64);
                let call = Call::new(CallKind::Reduce, range, args, None, at);
                self.new_node(Node::Call(Box::new(call)), 1)
            }
        })
    }

    /// The global a gadget call resolved to, reported as an import at `at`.
    fn resolved_global(&mut self, module: String, name: String, via: &str, at: u64) -> Value {
        self.imports += 1;
        let mut assessment = self.ctx.assess(&module, &name);
        assessment.reason = format!("{} ({via})", assessment.reason);
        self.ctx.import(&module, &name, at, &assessment);
        let global = Global {
            module: module.into(),
            name: name.into(),
            offset: at,
            rating: assessment.rating,
            loads_nested: assessment.loads_nested,
            // What a gadget yields is rated by name, never resolved again.
            gadget: None,
        };
        self.new_node(Node::Global(Box::new(global)), 1)
    }

    /// Reports the gadget imports of the pickle that ended: one whose every use was a call
    /// resolved from constants is not reported (its resolutions were); any other is reported
    /// with its own rating, saying why it was not resolved. The flagged ones go first: the
    /// context records a global once per member.
    fn settle_gadgets(&mut self) {
        let mut pending = std::mem::take(&mut self.gadgets);
        if pending.is_empty() {
            return;
        }
        let resolved: Vec<u32> = pending
            .iter()
            .filter(|g| g.resolved > 0 && g.unresolved.is_none())
            .filter_map(|g| match g.node {
                Value::Node(id) => Some(id),
                _ => None,
            })
            .collect();
        // Held by the object graph, or left on the stack (the root after STOP): one pass each.
        let mut used_otherwise = self.arena.referenced_among(&resolved);
        for value in self.stack.iter().chain(self.root.iter()) {
            if let Value::Node(id) = value
                && resolved.binary_search(id).is_ok()
            {
                used_otherwise.push(*id);
            }
        }
        used_otherwise.sort_unstable();
        for g in &mut pending {
            let elsewhere =
                matches!(g.node, Value::Node(id) if used_otherwise.binary_search(&id).is_ok());
            if g.unresolved.is_none() && g.resolved > 0 && elsewhere {
                g.unresolved = Some("it is also used other than as a call from constants".into());
            }
        }
        pending.sort_by_key(|g| g.unresolved.is_none() && g.resolved > 0);
        for g in pending {
            if g.resolved > 0 && g.unresolved.is_none() {
                continue;
            }
            let mut assessment = g.assessment;
            if let Some(why) = g.unresolved {
                assessment.reason = format!("{}; {why}", assessment.reason);
            }
            self.ctx.import(&g.module, &g.name, g.offset, &assessment);
        }
    }

    fn stack_global(&mut self, module: Value, name: Value, at: u64) -> Result<Value, Halt> {
        let module_text = self.literal_text(module);
        let name_text = self.literal_text(name);
        match (module_text, name_text) {
            (Some(m), Some(n)) => self.import(m.into(), n.into(), at),
            _ => {
                let either_computed = self.is_opaque(module) || self.is_opaque(name);
                if !either_computed {
                    // The C unpickler raises "STACK_GLOBAL requires str": nothing is imported.
                    return Err(Halt::Error(at, "STACK_GLOBAL requires str operands".into()));
                }
                self.imports += 1;
                let message = format!(
                    "STACK_GLOBAL imports a name computed at load time: module {}, name {}",
                    self.arena.describe(module),
                    self.arena.describe(name)
                );
                self.ctx
                    .report(Finding::new(Rule::DynamicGlobal, message).at(at));
                let global = Global {
                    module: "<computed>".into(),
                    name: "<computed>".into(),
                    offset: at,
                    rating: Rating::Dangerous,
                    loads_nested: true,
                    gadget: None,
                };
                Ok(self.new_node(Node::Global(Box::new(global)), 1))
            }
        }
    }

    /// A string operand as an owned string (STACK_GLOBAL operands are short).
    fn literal_text(&self, value: Value) -> Option<String> {
        self.arena.str_of(value).map(str::to_owned)
    }

    // ---- calls, BUILD, mutation, persistent ids ----------------------------------------

    fn call(
        &mut self,
        kind: CallKind,
        callable: Value,
        args: Value,
        kwargs: Option<Value>,
        at: u64,
    ) -> Value {
        if let Some(resolved) = self.resolve_gadget_call(kind, callable, args, kwargs, at) {
            return resolved;
        }
        self.calls += 1;
        if let Some(global) = self.arena.global_of(callable)
            && global.loads_nested
        {
            let callee = format!("{}.{}", global.module, global.name);
            self.scan_nested_payloads(&callee, args, at);
            if let Some(kwargs) = kwargs {
                self.scan_nested_payloads(&callee, kwargs, at);
            }
        }
        let size = 1u64.saturating_add(self.size_of(args));
        let call = Call::new(kind, callable, args, kwargs, at);
        self.new_node(Node::Call(Box::new(call)), size)
    }

    /// Literal bytes or text handed to a loader are a nested pickle (or code): report it and
    /// scan it as its own file.
    fn scan_nested_payloads(&mut self, callee: &str, args: Value, at: u64) {
        let items: Vec<Value> = match (self.arena.seq_of(args), self.arena.node(args)) {
            (Some(items), _) => items.to_vec(),
            (None, Some(Node::Dict(pairs))) => pairs.iter().map(|(_, v)| *v).collect(),
            _ => vec![args],
        };
        for (i, item) in items.into_iter().enumerate() {
            // A nested scan costs far more than an opcode, and a payload fetched from the memo
            // can be handed over at every call: check the time before each (and every so many
            // items of a long argument list), not only every so many opcodes.
            if i % 1024 == 0 && self.ctx.check_timeout() {
                return;
            }
            // Borrowed from the arena, not copied: `self.ctx` and `self.arena` are distinct.
            let payload: Option<&[u8]> = match item {
                Value::Bytes(_) => self.arena.bytes_of(item),
                _ => self
                    .arena
                    .bytes_of(item)
                    .or_else(|| self.arena.str_of(item).map(str::as_bytes)),
            };
            let Some(payload) = payload else { continue };
            self.ctx.report(
                Finding::new(
                    Rule::NestedPickle,
                    format!("{} bytes are passed to `{callee}`, which deserializes them; scanned as a nested file", payload.len()),
                )
                .at(at),
            );
            if self.nesting < self.ctx.limits().max_nesting_depth && !self.ctx.check_timeout() {
                self.ctx
                    .scan_member(&format!("<nested at offset {at}>"), payload);
            }
        }
    }

    fn build(&mut self, target: Value, state: Value, at: u64) -> Result<(), Halt> {
        match self.arena.node(target) {
            Some(Node::Global(g)) => {
                let message = format!(
                    "BUILD sets state on the imported object `{}.{}` itself, changing what later imports of it return",
                    g.module, g.name
                );
                self.ctx
                    .report(Finding::new(Rule::BuildOnNonClass, message).at(at));
            }
            Some(Node::Ext(code)) => {
                let message =
                    format!("BUILD sets state on the object extension code {code} resolves to");
                self.ctx
                    .report(Finding::new(Rule::BuildOnNonClass, message).at(at));
            }
            Some(Node::Call(_)) => {
                let by = self.size_of(state);
                if let Some(Node::Call(call)) = self.arena.node_mut(target)
                    && call.built().len() < MAX_KEPT_CHILDREN
                {
                    call.effects_mut().built.push(state);
                }
                self.grow(target, by);
                if self.arena.callee_name(target).as_deref()
                    == Some(super::joblib::NUMPY_ARRAY_WRAPPER)
                {
                    self.read_joblib_array(target, state, at)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// joblib writes an array's bytes right after the BUILD of its `NumpyArrayWrapper`; its
    /// unpickler reads them and replaces the wrapper with the array (joblib's `load_build`).
    fn read_joblib_array(&mut self, wrapper: Value, state: Value, at: u64) -> Result<(), Halt> {
        use super::joblib::{ArrayData, array_data};
        let pos = self.reader.position();
        let data = self.reader.data();
        let layout = match array_data(&self.arena, state, data.get(pos..).unwrap_or(&[])) {
            Ok(layout) => layout,
            Err(why) => {
                self.ctx.report(
                    Finding::new(
                        Rule::JoblibArrayData,
                        format!("array data after NumpyArrayWrapper: {why}"),
                    )
                    .at(pos as u64),
                );
                return Err(Halt::Limit);
            }
        };
        let (end, bytes) = match layout {
            ArrayData::Raw { skip } => (pos.saturating_add(skip), skip as u64),
            ArrayData::Pickle => {
                if self.nesting + 1 >= self.ctx.limits().max_nesting_depth {
                    return Err(self.limit("joblib object arrays nested too deeply".into()));
                }
                // Each inner pickle counts its own opcodes: check the time per array, or
                // thousands of small ones would run between two of this machine's checks.
                if self.ctx.check_timeout() {
                    return Err(Halt::Limit);
                }
                let inner = run_nested(self.ctx, data, pos, self.nesting + 1);
                if !inner.stopped {
                    if let Some((offset, message)) = inner.error {
                        self.ctx
                            .report(Finding::new(Rule::MalformedPickle, message).at(offset));
                    }
                    return Err(Halt::Limit);
                }
                self.imports += inner.imports;
                self.calls += inner.calls;
                (inner.end, (inner.end - pos) as u64)
            }
        };
        if end > data.len() {
            return Err(Halt::Error(
                pos as u64,
                "joblib array data runs past the end of the file".into(),
            ));
        }
        self.reader.set_position(end);
        // joblib commits the frame before writing the array: the next opcodes start afresh.
        self.frame_end = None;
        self.joblib_arrays += 1;
        let array = self.new_node(Node::JoblibArray { offset: at, bytes }, 1);
        self.stack.pop();
        self.push(array);
        let _ = wrapper;
        Ok(())
    }

    fn append(&mut self, target: Value, items: Vec<Value>, at: u64, op: &str) {
        let by = items
            .iter()
            .fold(0u64, |acc, v| acc.saturating_add(self.size_of(*v)));
        let expected_set = op == "ADDITEMS";
        let accepted = match self.arena.node(target) {
            Some(Node::List(_)) => !expected_set,
            Some(Node::Set(_)) => expected_set,
            Some(Node::Call(_)) if expected_set => self.call_result_is(target, SET_LIKE),
            Some(Node::Call(_)) => {
                self.call_result_is(target, LIST_LIKE)
                    || self.call_result_is_profiled(target, Container::List)
            }
            _ => false,
        };
        if !accepted {
            self.mutation_finding(target, at, op);
            return;
        }
        let mut taken = Vec::new();
        match self.arena.node_mut(target) {
            Some(Node::List(list) | Node::Set(list)) => std::mem::swap(list, &mut taken),
            Some(Node::Call(call)) => std::mem::swap(&mut call.effects_mut().appended, &mut taken),
            _ => {}
        }
        self.keep(&mut taken, items);
        match self.arena.node_mut(target) {
            Some(Node::List(list) | Node::Set(list)) => *list = taken,
            Some(Node::Call(call)) => call.effects_mut().appended = taken,
            _ => {}
        }
        self.grow(target, by);
    }

    fn set_items(&mut self, target: Value, pairs: Vec<(Value, Value)>, at: u64, op: &str) {
        let by = pairs.iter().fold(0u64, |acc, (k, v)| {
            acc.saturating_add(self.size_of(*k))
                .saturating_add(self.size_of(*v))
        });
        let accepted = match self.arena.node(target) {
            Some(Node::Dict(_)) => true,
            Some(Node::Call(_)) => {
                self.call_result_is(target, DICT_LIKE)
                    || self.call_result_is_profiled(target, Container::Dict)
            }
            _ => false,
        };
        if !accepted {
            self.mutation_finding(target, at, op);
            return;
        }
        let mut taken = Vec::new();
        match self.arena.node_mut(target) {
            Some(Node::Dict(d)) => std::mem::swap(d, &mut taken),
            Some(Node::Call(call)) => std::mem::swap(&mut call.effects_mut().items, &mut taken),
            _ => {}
        }
        self.keep(&mut taken, pairs);
        match self.arena.node_mut(target) {
            Some(Node::Dict(d)) => *d = taken,
            Some(Node::Call(call)) => call.effects_mut().items = taken,
            _ => {}
        }
        self.grow(target, by);
    }

    fn call_result_is(&self, target: Value, classes: &[&str]) -> bool {
        self.arena.callee_name(target).is_some_and(|name| {
            classes
                .iter()
                .any(|c| *c == crate::policy::normalize_qualified(&name))
        })
    }

    /// True when `target` is an instance of a profiled `dict` / `list` subclass that keeps the
    /// base class's mutation slot (generated with the profiles: `profiles::is_container`).
    fn call_result_is_profiled(&self, target: Value, kind: Container) -> bool {
        self.arena.callee_name(target).is_some_and(|name| {
            let qualified = crate::policy::normalize_qualified(&name);
            let (module, name) = crate::policy::split_qualified(&qualified);
            crate::policy::profiles::is_container(module, name, kind)
        })
    }

    fn mutation_finding(&mut self, target: Value, at: u64, op: &str) {
        let node = self.arena.node(target);
        let is_tensor = self
            .arena
            .callee_name(target)
            .is_some_and(|n| n.starts_with("torch._utils._rebuild"));
        let severity = match node {
            Some(Node::Global(_) | Node::Ext(_) | Node::PersistentLoad { .. }) => {
                Severity::Dangerous
            }
            _ if is_tensor => Severity::Dangerous,
            _ => Severity::Suspicious,
        };
        let what = self.arena.describe(target);
        let why = if is_tensor {
            " (writes into tensor memory: CVE-2026-24747)"
        } else if severity == Severity::Dangerous {
            " (mutates an imported object)"
        } else {
            ""
        };
        self.ctx.report(
            Finding::new(Rule::MutationTarget, format!("{op} applied to {what}{why}"))
                .at(at)
                .with_severity(severity),
        );
    }

    fn persistent_load(&mut self, pid: Value, at: u64) -> Value {
        let is_storage = self
            .arena
            .seq_of(pid)
            .and_then(|items| items.first())
            .and_then(|first| self.arena.str_of(*first))
            == Some("storage");
        if !is_storage && !matches!(pid, Value::Int(_)) {
            let message = format!(
                "persistent id {} is not a ('storage', ...) tuple",
                self.arena.describe(pid)
            );
            self.ctx
                .report(Finding::new(Rule::PersistentId, message).at(at));
        }
        if self.persistent_ids.len() < MAX_KEPT_CHILDREN {
            self.persistent_ids.push((pid, at));
        }
        self.new_node(Node::PersistentLoad { pid, offset: at }, 1)
    }
}

/// Classes whose instances accept SETITEM(S) like a dict.
pub(super) const DICT_LIKE: &[&str] = &[
    "collections.OrderedDict",
    "collections.Counter",
    "collections.defaultdict",
    "builtins.dict",
    // A `dict` subclass (scikit-learn's dataset and `cv_results_` container); pickled as
    // NEWOBJ then SETITEMS.
    "sklearn.utils._bunch.Bunch",
];
/// Classes whose instances accept APPEND(S) like a list.
pub(super) const LIST_LIKE: &[&str] = &["builtins.list", "collections.deque"];
/// Classes whose instances accept ADDITEMS like a set.
pub(super) const SET_LIKE: &[&str] = &["builtins.set"];

/// A dotted path of Python identifiers (`os.path`, `Popen`, `évalue`), as `find_class` needs.
pub(crate) fn is_python_path(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

fn underflow(at: u64) -> Halt {
    Halt::Error(at, "unpickling stack underflow".into())
}

fn memo_index(instr: &Instr<'_>) -> Result<u64, Halt> {
    match instr.arg {
        Arg::Int(i) if i >= 0 => Ok(i as u64),
        _ => Err(Halt::Error(
            instr.offset,
            format!("negative {} argument", instr.op.name()),
        )),
    }
}
