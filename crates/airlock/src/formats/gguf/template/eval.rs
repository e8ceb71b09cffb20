//! The abstract evaluator: walks minijinja's syntax tree the way Jinja2 would render it,
//! folding every value it can (see [`super::value`]), and records each attribute or item
//! access, `|attr`, `.get`, `|map(attribute=)`, `str.format` field and call that can reach
//! Python internals.
//!
//! Decisions:
//! - Both branches of every `if` are checked (dead code included); the variables after it
//!   are the chosen branch's when the condition folds, else the join of both.
//! - Loops over known lists of at most [`MAX_UNROLL`] items without `break`/`continue` are
//!   unrolled; other loops run their body twice, the second time with every variable the
//!   first pass changed widened (joined), so values built across iterations are never
//!   taken for constants.
//! - Assignments inside loops and macros are not scoped away as Jinja2 does: keeping them
//!   can only widen values, never hide one.
//! - Macros are evaluated at each call with the call's arguments (depth-limited), and once
//!   at their definition with unknown (`Data`) arguments.
//! - Work is bounded by [`MAX_STEPS`]; a template that needs more is reported as not analysed.

use std::collections::BTreeMap;

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};

use super::value::{
    self, Av, MAX_FOLD, add, arith, concat, fold_str, is_private, join, join_all, mix, mul,
    percent_format,
};

pub use crate::limits::caps::gguf_template::MAX_STEPS;
use crate::limits::caps::gguf_template::{MAX_MACRO_DEPTH, MAX_UNROLL, MAX_VALUE_WEIGHT};
/// Bytes of variable values that cost one evaluation step when stored or copied, so the
/// step budget also bounds memory (at most about 64 MiB of values ever copied). The largest
/// benign fixture (Command-R tool use) takes 34,000 steps.
const BYTES_PER_STEP: usize = 64;

/// Jinja2's default globals, and the Flask ones templates copied from web SSTI use: every
/// attribute of these leads to function globals or application state.
const INTERNAL_GLOBALS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "range",
    "dict",
    "self",
    "config",
    "request",
    "session",
    "g",
    "url_for",
    "get_flashed_messages",
    "os",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
];

/// Globals whose calls are harmless (their results are ordinary values). transformers and
/// llama.cpp add `raise_exception` and `strftime_now`.
const HARMLESS_CALLS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "range",
    "dict",
    "url_for",
    "get_flashed_messages",
    "raise_exception",
    "strftime_now",
];

/// Context values whose text the template's author knows or chooses: the special tokens come
/// from the same model file, and functions print as `<function raise_exception at …>`. Used
/// as values (not called), they are `Opaque`, so names cut out of them are not trusted.
const AUTHOR_KNOWN_VARS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
    "mask_token",
    "raise_exception",
    "strftime_now",
    "caller",
];

/// Callables that run or import code whatever their arguments.
const CODE_CALLS: &[&str] = &[
    "eval",
    "exec",
    "compile",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "open",
    "__import__",
    "import_module",
    "breakpoint",
    "input",
];

/// Attribute names without underscores in front that still reach interpreter internals:
/// filters such as `map`, `select` and `batch` return generators, whose `gi_frame.f_globals`
/// holds the `jinja2.filters` module globals (`random._os`), and `f_builtins` holds `eval`.
const INTERPRETER_ATTRS: &[&str] = &[
    "gi_frame",
    "gi_code",
    "gi_yieldfrom",
    "cr_frame",
    "cr_code",
    "cr_await",
    "ag_frame",
    "ag_code",
    "ag_await",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "f_code",
    "tb_frame",
    "tb_next",
    "func_globals",
    "func_code",
    "func_closure",
    "im_func",
    "im_self",
    "co_code",
    "co_consts",
    "mro",
];

/// Methods that mutate a list or dict in place.
const MUTATORS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "clear",
    "remove",
    "sort",
    "reverse",
];

/// One raw finding: byte offset in the template, reason, whether dangerous.
pub type RawHazard = (usize, String, bool);

pub struct Evaluator<'a> {
    env: BTreeMap<&'a str, Av>,
    macros: Vec<&'a ast::Macro<'a>>,
    /// Macros being evaluated (to cut recursion).
    active: Vec<usize>,
    pub hazards: Vec<RawHazard>,
    /// Bytes ever stored in variables (an over-estimate of the environment's size).
    env_weight: usize,
    steps: usize,
    depth: usize,
    pub exhausted: bool,
}

type Out = Option<Av>;

fn emit(out: &mut Out, v: &Av) {
    if let Some(acc) = out {
        *acc = concat(acc, v);
    }
}

impl<'a> Evaluator<'a> {
    pub fn new() -> Self {
        Evaluator {
            env: BTreeMap::new(),
            macros: Vec::new(),
            active: Vec::new(),
            hazards: Vec::new(),
            env_weight: 0,
            steps: 0,
            depth: 0,
            exhausted: false,
        }
    }

    fn tick(&mut self, n: usize) -> bool {
        self.steps = self.steps.saturating_add(n);
        if self.steps > MAX_STEPS {
            self.exhausted = true;
        }
        !self.exhausted
    }

    fn flag(&mut self, at: usize, reason: String, dangerous: bool) {
        if !self
            .hazards
            .iter()
            .any(|(o, r, _)| *o == at && *r == reason)
            && self.hazards.len() < 256
        {
            self.hazards.push((at, reason, dangerous));
        }
    }

    // ---- statements ----------------------------------------------------------------------

    pub fn run(&mut self, stmts: &'a [Stmt<'a>], out: &mut Out) {
        for s in stmts {
            if !self.tick(1) {
                return;
            }
            self.stmt(s, out);
        }
    }

    fn stmt(&mut self, s: &'a Stmt<'a>, out: &mut Out) {
        match s {
            Stmt::Template(t) => self.run(&t.children, out),
            Stmt::EmitExpr(e) => {
                let v = self.expr(&e.expr);
                emit(out, &v);
            }
            Stmt::EmitRaw(r) => emit(out, &Av::Str(r.raw.to_string())),
            Stmt::ForLoop(f) => self.for_loop(f, out),
            Stmt::IfCond(c) => {
                let cond = self.expr(&c.expr);
                self.branches(cond.truth(), &c.true_body, &c.false_body, out);
            }
            Stmt::WithBlock(w) => {
                let before = self.snapshot();
                for (target, value) in &w.assignments {
                    let v = self.expr(value);
                    self.assign(target, v);
                }
                self.run(&w.body, out);
                self.env = join_env(&before, &self.env);
            }
            Stmt::Set(s) => {
                let v = self.expr(&s.expr);
                self.assign(&s.target, v);
            }
            Stmt::SetBlock(s) => {
                let mut body = Some(Av::Str(String::new()));
                self.run(&s.body, &mut body);
                let mut v = body.unwrap_or(Av::Opaque);
                if let Some(filter) = &s.filter {
                    v = self.filter_chain(filter, v);
                }
                self.assign(&s.target, v);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.run(&a.body, out);
            }
            Stmt::FilterBlock(f) => {
                let mut body = Some(Av::Str(String::new()));
                self.run(&f.body, &mut body);
                let v = self.filter_chain(&f.filter, body.unwrap_or(Av::Opaque));
                emit(out, &v);
            }
            Stmt::Block(b) => self.run(&b.body, out),
            Stmt::Import(i) => {
                self.expr(&i.expr);
                self.loads_template(i.expr.span().start_offset);
                self.assign(&i.name, Av::Internal("an imported template".into()));
            }
            Stmt::FromImport(i) => {
                self.expr(&i.expr);
                self.loads_template(i.expr.span().start_offset);
                for (name, alias) in &i.names {
                    self.assign(
                        alias.as_ref().unwrap_or(name),
                        Av::Internal("an imported name".into()),
                    );
                }
            }
            Stmt::Extends(e) => {
                self.expr(&e.name);
                self.loads_template(e.name.span().start_offset);
            }
            Stmt::Include(i) => {
                self.expr(&i.name);
                self.loads_template(i.name.span().start_offset);
            }
            Stmt::Macro(m) => {
                let id = self.macros.len();
                self.macros.push(m);
                self.env.insert(m.name, Av::Macro(id));
                self.check_macro_body(m);
            }
            Stmt::CallBlock(c) => {
                self.check_macro_body(&c.macro_decl);
                let v = self.call(&c.call);
                emit(out, &v);
            }
            Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::Do(d) => {
                self.call(&d.call);
            }
        }
    }

    fn loads_template(&mut self, at: u32) {
        self.flag(
            at as usize,
            "loads another template (include/import/extends)".into(),
            false,
        );
    }

    /// Runs both bodies; keeps the state of the taken one, or the join of both.
    fn branches(
        &mut self,
        taken: Option<bool>,
        yes: &'a [Stmt<'a>],
        no: &'a [Stmt<'a>],
        out: &mut Out,
    ) {
        let before = self.snapshot();
        let mut out_yes = out.clone();
        self.run(yes, &mut out_yes);
        let env_yes = std::mem::replace(&mut self.env, before);
        let mut out_no = out.clone();
        self.run(no, &mut out_no);
        match taken {
            Some(true) => {
                self.env = env_yes;
                *out = out_yes;
            }
            Some(false) => *out = out_no,
            None => {
                self.env = join_env(&env_yes, &self.env);
                *out = match (out_yes, out_no) {
                    (Some(a), Some(b)) => Some(join(&a, &b)),
                    _ => None,
                };
            }
        }
    }

    fn for_loop(&mut self, f: &'a ast::ForLoop<'a>, out: &mut Out) {
        let iter = self.expr(&f.iter);
        let items = iter
            .items()
            .filter(|v| v.len() <= MAX_UNROLL && !has_loop_control(&f.body));
        match items {
            Some(items) => {
                // Jinja2 scopes a loop body's plain assignments to the loop: afterwards a
                // variable holds its old value, or (through a namespace) a new one.
                let before = self.snapshot();
                for item in items {
                    if !self.tick(1) {
                        break;
                    }
                    self.assign(&f.target, item);
                    self.env.insert("loop", Av::Data);
                    if let Some(cond) = &f.filter_expr {
                        self.expr(cond);
                    }
                    self.run(&f.body, out);
                }
                self.env = join_env(&before, &self.env);
            }
            None => {
                let item = iter.item_summary();
                for _ in 0..2 {
                    let before = self.snapshot();
                    self.assign(&f.target, item.clone());
                    self.env.insert("loop", Av::Data);
                    if let Some(cond) = &f.filter_expr {
                        self.expr(cond);
                    }
                    let mut body_out = out.clone();
                    self.run(&f.body, &mut body_out);
                    self.env = join_env(&before, &self.env);
                    if let (Some(o), Some(b)) = (out.as_mut(), body_out) {
                        *o = join(o, &b);
                    }
                }
            }
        }
        self.run(&f.else_body, out);
    }

    /// Copies the environment (for a branch, a loop pass or a macro call), charging for it.
    fn snapshot(&mut self) -> BTreeMap<&'a str, Av> {
        self.tick(self.env.len() + self.env_weight / BYTES_PER_STEP);
        self.env.clone()
    }

    fn assign(&mut self, target: &'a Expr<'a>, v: Av) {
        let w = v.weight();
        let v = if w > MAX_VALUE_WEIGHT { mix(&[&v]) } else { v };
        self.env_weight = self.env_weight.saturating_add(w.min(MAX_VALUE_WEIGHT));
        self.tick(w.min(MAX_VALUE_WEIGHT) / BYTES_PER_STEP);
        match target {
            Expr::Var(var) => {
                self.env.insert(var.id, v);
            }
            Expr::GetAttr(g) => {
                // Namespaces are shared objects: any other variable may alias this one, so
                // every namespace's field of that name may now hold `v` as well.
                let target = match &g.expr {
                    Expr::Var(var) => Some(var.id),
                    _ => None,
                };
                for (name, value) in self.env.iter_mut() {
                    if Some(*name) != target {
                        widen_ns_field(value, g.name, &v);
                    }
                }
                if let Some(id) = target
                    && let Some(Av::Ns(fields)) = self.env.get_mut(id)
                {
                    match fields.iter_mut().find(|(k, _)| k == g.name) {
                        Some(slot) => slot.1 = v,
                        None => fields.push((g.name.to_string(), v)),
                    }
                    return;
                }
                let obj = self.expr(&g.expr);
                self.access(
                    &obj,
                    &Av::Str(g.name.to_string()),
                    g.span().start_offset,
                    "attribute",
                );
            }
            Expr::Tuple(t) => self.unpack(&t.items, v),
            Expr::List(l) => self.unpack(&l.items, v),
            other => {
                self.expr(other);
            }
        }
    }

    fn unpack(&mut self, targets: &'a [Expr<'a>], v: Av) {
        let items = v.items().filter(|i| i.len() == targets.len());
        for (i, t) in targets.iter().enumerate() {
            let item = match &items {
                Some(items) => items[i].clone(),
                None => v.item_summary(),
            };
            self.assign(t, item);
        }
    }

    fn check_macro_body(&mut self, m: &'a ast::Macro<'a>) {
        let saved = self.snapshot();
        for d in &m.defaults {
            self.expr(d);
        }
        for a in &m.args {
            self.assign(a, Av::Data);
        }
        // Unknown at the definition: whatever a call passes.
        for name in ["varargs", "kwargs", "caller"] {
            self.env.insert(name, Av::Opaque);
        }
        let id = self.macros.iter().position(|x| std::ptr::eq(*x, m));
        self.active.extend(id);
        self.run(&m.body, &mut None);
        if id.is_some() {
            self.active.pop();
        }
        self.env = saved;
    }

    fn invoke_macro(&mut self, id: usize, args: &[(Option<&'a str>, Av)]) -> Av {
        let Some(m) = self.macros.get(id).copied() else {
            return Av::Opaque;
        };
        // Recursion and deep nesting are cut: the result is then unknown text.
        if self.depth >= MAX_MACRO_DEPTH || self.active.contains(&id) {
            return Av::Opaque;
        }
        self.active.push(id);
        let saved = self.snapshot();
        let defaults_from = m.args.len().saturating_sub(m.defaults.len());
        let mut positional = args
            .iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, v)| v.clone());
        for (i, a) in m.args.iter().enumerate() {
            let name = match a {
                Expr::Var(v) => v.id,
                _ => "",
            };
            let v = match args.iter().find(|(k, _)| *k == Some(name)) {
                Some((_, v)) => v.clone(),
                None => match positional.next() {
                    Some(v) => v,
                    None => match i.checked_sub(defaults_from).and_then(|d| m.defaults.get(d)) {
                        Some(d) => self.expr(d),
                        None => Av::None,
                    },
                },
            };
            self.assign(a, v);
        }
        let params: Vec<&str> = m
            .args
            .iter()
            .filter_map(|a| match a {
                Expr::Var(v) => Some(v.id),
                _ => None,
            })
            .collect();
        let extra_kwargs: Vec<(String, Av)> = args
            .iter()
            .filter_map(|(k, v)| {
                k.filter(|k| !params.contains(k))
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        self.env.insert("varargs", Av::List(positional.collect()));
        self.env.insert("kwargs", Av::Map(extra_kwargs));
        self.env.insert("caller", Av::Opaque);
        self.depth += 1;
        let mut body = Some(Av::Str(String::new()));
        self.run(&m.body, &mut body);
        self.depth -= 1;
        self.active.pop();
        // Namespace objects are shared with the caller: keep what the macro set on them.
        let inner = std::mem::replace(&mut self.env, saved);
        for (name, v) in inner {
            if let Av::Ns(_) = v
                && matches!(self.env.get(name), Some(Av::Ns(_)))
            {
                self.env.insert(name, v);
            }
        }
        body.unwrap_or(Av::Opaque)
    }

    // ---- expressions ---------------------------------------------------------------------

    pub fn expr(&mut self, e: &'a Expr<'a>) -> Av {
        if !self.tick(1) {
            return Av::Opaque;
        }
        match e {
            Expr::Var(v) => self.var(v.id),
            Expr::Const(c) => Av::from_const(&c.value),
            Expr::Slice(s) => {
                let obj = self.expr(&s.expr);
                let mut bound = |b: &'a Option<Expr<'a>>| -> Result<Option<i64>, ()> {
                    match b.as_ref().map(|b| self.expr(b)) {
                        None | Some(Av::None) => Ok(None),
                        Some(Av::Int(i)) => Ok(Some(i)),
                        Some(_) => Err(()),
                    }
                };
                let (start, stop, step) = (bound(&s.start), bound(&s.stop), bound(&s.step));
                let (Ok(start), Ok(stop), Ok(step)) = (start, stop, step) else {
                    return mix(&[&obj, &Av::Opaque]);
                };
                match &obj {
                    Av::Str(st) => {
                        let chars: Vec<char> = st.chars().collect();
                        value::slice(&chars, start, stop, step)
                            .map_or(Av::Opaque, |c| Av::Str(c.into_iter().collect()))
                    }
                    Av::List(v) => value::slice(v, start, stop, step).map_or(Av::Opaque, Av::List),
                    other => mix(&[other]),
                }
            }
            Expr::UnaryOp(u) => {
                let v = self.expr(&u.expr);
                match (&u.op, &v) {
                    (ast::UnaryOpKind::Not, v) => {
                        v.truth().map_or(Av::Num, |t| Av::Int(i64::from(!t)))
                    }
                    (ast::UnaryOpKind::Neg, Av::Int(i)) => i.checked_neg().map_or(Av::Num, Av::Int),
                    _ => Av::Num,
                }
            }
            Expr::BinOp(b) => self.binop(b),
            Expr::Compare(c) => {
                self.expr(&c.expr);
                for op in &c.ops {
                    self.expr(&op.expr);
                }
                e.as_const().map_or(Av::Num, |v| Av::from_const(&v))
            }
            Expr::IfExpr(i) => {
                let test = self.expr(&i.test_expr);
                let yes = self.expr(&i.true_expr);
                let no = match &i.false_expr {
                    Some(f) => self.expr(f),
                    None => Av::Str(String::new()),
                };
                match test.truth() {
                    Some(true) => yes,
                    Some(false) => no,
                    None => join(&yes, &no),
                }
            }
            Expr::Filter(f) => {
                let input = match &f.expr {
                    Some(x) => self.expr(x),
                    None => Av::Opaque,
                };
                self.filter(f, input)
            }
            Expr::Test(t) => {
                self.expr(&t.expr);
                self.args(&t.args);
                Av::Num
            }
            Expr::GetAttr(g) => {
                let obj = self.expr(&g.expr);
                self.access(
                    &obj,
                    &Av::Str(g.name.to_string()),
                    g.span().start_offset,
                    "attribute",
                )
            }
            Expr::GetItem(g) => {
                let obj = self.expr(&g.expr);
                let key = self.expr(&g.subscript_expr);
                self.access(&obj, &key, g.span().start_offset, "item")
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => Av::List(l.items.iter().map(|x| self.expr(x)).collect()),
            Expr::Tuple(t) => Av::List(t.items.iter().map(|x| self.expr(x)).collect()),
            Expr::Map(m) => {
                let mut out = Vec::new();
                for (k, v) in m.keys.iter().zip(&m.values) {
                    let k = self.expr(k);
                    let v = self.expr(v);
                    match k.to_str() {
                        Some(k) => out.push((k, v)),
                        None => return Av::Data.max_with(&v),
                    }
                }
                Av::Map(out)
            }
        }
    }

    fn var(&mut self, id: &str) -> Av {
        if let Some(v) = self.env.get(id) {
            let v = v.clone();
            self.tick(v.weight() / BYTES_PER_STEP);
            return v;
        }
        if INTERNAL_GLOBALS.contains(&id) || CODE_CALLS.contains(&id) {
            return Av::Internal(format!("`{id}`"));
        }
        if AUTHOR_KNOWN_VARS.contains(&id) {
            return Av::Opaque;
        }
        // Render-context data (`messages`, `tools`, `bos_token`, …) or undefined; either
        // is only walkable through dunders, which `access` flags.
        Av::Data
    }

    fn binop(&mut self, b: &'a ast::BinOp<'a>) -> Av {
        let l = self.expr(&b.left);
        let r = self.expr(&b.right);
        let v = self.binop_value(b.op, l, r);
        self.tick(v.weight() / BYTES_PER_STEP);
        v
    }

    fn binop_value(&self, op: ast::BinOpKind, l: Av, r: Av) -> Av {
        use ast::BinOpKind as K;
        match op {
            K::Concat => concat(&l, &r),
            K::Add => add(&l, &r),
            K::Mul => mul(&l, &r),
            K::Sub => arith(&l, &r, i64::checked_sub),
            K::FloorDiv => arith(&l, &r, |a, b| a.checked_div_euclid(b)),
            K::Div => Av::Num,
            K::Pow => arith(&l, &r, |a, b| {
                u32::try_from(b).ok().and_then(|b| a.checked_pow(b))
            }),
            K::Rem => match (&l, &r) {
                (Av::Int(a), Av::Int(b)) => a.checked_rem_euclid(*b).map_or(Av::Num, Av::Int),
                (Av::Str(f), args) if args.is_const() => {
                    percent_format(f, args).map_or(Av::Opaque, fold_str)
                }
                _ if l.is_numeric() && r.is_numeric() => Av::Num,
                // `'%c' % n` turns numbers into any character.
                (Av::Str(_), _) => Av::Opaque,
                _ => mix(&[&l, &r]),
            },
            K::ScAnd => match l.truth() {
                Some(true) => r,
                Some(false) => l,
                None => join(&l, &r),
            },
            K::ScOr => match l.truth() {
                Some(true) => l,
                Some(false) => r,
                None => join(&l, &r),
            },
            K::Eq | K::Ne | K::Lt | K::Lte | K::Gt | K::Gte | K::In => Av::Num,
        }
    }

    fn args(&mut self, args: &'a [CallArg<'a>]) -> Vec<(Option<&'a str>, Av)> {
        args.iter()
            .map(|a| match a {
                CallArg::Pos(e) => (None, self.expr(e)),
                CallArg::Kwarg(k, e) => (Some(*k), self.expr(e)),
                CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    let v = self.expr(e);
                    (None, mix(&[&v]).max_opaque_if_const(&v))
                }
            })
            .collect()
    }

    /// Checks one attribute/item access and returns what it yields.
    fn access(&mut self, obj: &Av, name: &Av, at: u32, how: &str) -> Av {
        let at = at as usize;
        if let Av::Str(n) = name
            && MUTATORS.contains(&n.as_str())
            && !matches!(obj, Av::Ns(_) | Av::Int(_) | Av::Num | Av::None)
        {
            // Lists and dicts are shared objects too; after a mutation no container
            // value is known any more. (transformers' sandbox forbids mutation, so
            // published templates never do this.)
            for value in self.env.values_mut() {
                forget_containers(value);
            }
        }
        if let Some(reason) = access_hazard(obj, name) {
            self.flag(at, format!("{reason} as an {how}"), true);
            return Av::Internal(format!("a walk to {}", describe(name)));
        }
        if let (Av::Str(_) | Av::Opaque, Av::Str(n)) = (obj, name)
            && (n == "format" || n == "format_map")
        {
            // `str.format` fetched as a value: calling it walks its fields.
            return Av::Internal("`str.format` fetched by name".into());
        }
        match (obj, name) {
            (Av::Map(m), Av::Str(k)) => m
                .iter()
                .find(|(n, _)| n == k)
                .map_or(Av::None, |(_, v)| v.clone()),
            (Av::Ns(m), Av::Str(k)) => m
                .iter()
                .find(|(n, _)| n == k)
                .map_or(Av::Data, |(_, v)| v.clone()),
            (Av::List(v), Av::Int(i)) => index(v, *i).unwrap_or(Av::None),
            (Av::Str(s), Av::Int(i)) => {
                let chars: Vec<Av> = s.chars().map(|c| Av::Str(c.to_string())).collect();
                index(&chars, *i).unwrap_or(Av::None)
            }
            (Av::Str(_) | Av::List(_) | Av::Map(_), _) => match obj.item_summary() {
                Av::Data => Av::Opaque,
                other => join(&other, &Av::None),
            },
            (Av::Ns(fields), _) => join_all(
                fields
                    .iter()
                    .map(|(_, v)| v.clone())
                    .chain([Av::Data])
                    .collect(),
            ),
            (Av::Opaque | Av::Macro(_), _) => Av::Opaque,
            _ => Av::Data,
        }
    }

    fn call(&mut self, c: &'a ast::Call<'a>) -> Av {
        let at = c.expr.span().start_offset;
        match &c.expr {
            Expr::GetAttr(g) => {
                let obj = self.expr(&g.expr);
                let args = self.args(&c.args);
                self.method(obj, g.name, &args, g.span().start_offset)
            }
            Expr::Var(v) if !self.env.contains_key(v.id) && HARMLESS_CALLS.contains(&v.id) => {
                let args = self.args(&c.args);
                global_call(v.id, &args)
            }
            callee => {
                let f = self.expr(callee);
                let args = self.args(&c.args);
                match f {
                    Av::Macro(id) => self.invoke_macro(id, &args),
                    Av::Internal(what) => {
                        self.flag(at as usize, format!("calls {what}"), true);
                        Av::Internal(format!("the result of calling {what}"))
                    }
                    Av::Opaque => Av::Opaque,
                    _ => Av::Data,
                }
            }
        }
    }

    /// `obj.name(args)`: the access is checked, string methods are folded.
    fn method(&mut self, obj: Av, name: &str, args: &[(Option<&str>, Av)], at: u32) -> Av {
        let key = Av::Str(name.to_string());
        let pos: Vec<&Av> = args
            .iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, v)| v)
            .collect();
        if matches!(name, "format" | "format_map") {
            return self.str_format(&obj, args, at);
        }
        if name == "get"
            && let Some(k) = pos.first()
        {
            let got = self.access(&obj, k, at, "key of `.get`");
            return match (&obj, pos.get(1)) {
                (Av::Map(m), default) => {
                    match k.to_str().and_then(|k| m.iter().find(|(n, _)| *n == k)) {
                        Some((_, v)) => v.clone(),
                        None => default.map_or(Av::None, |d| (*d).clone()),
                    }
                }
                (_, Some(d)) => join(&got, d),
                _ => got,
            };
        }
        let target = self.access(&obj, &key, at, "attribute");
        if let Av::Internal(_) = target {
            return target;
        }
        if let Av::Str(s) = &obj {
            if let Some(v) = str_method(s, name, &pos) {
                return v;
            }
            return mix(&[&Av::Str(s.clone()), &Av::Opaque]);
        }
        if let Av::Map(m) = &obj {
            match name {
                "items" => {
                    return Av::List(
                        m.iter()
                            .map(|(k, v)| Av::List(vec![Av::Str(k.clone()), v.clone()]))
                            .collect(),
                    );
                }
                "keys" => return Av::List(m.iter().map(|(k, _)| Av::Str(k.clone())).collect()),
                "values" => return Av::List(m.iter().map(|(_, v)| v.clone()).collect()),
                _ => {}
            }
        }
        let mut parts: Vec<&Av> = vec![&obj];
        parts.extend(args.iter().map(|(_, v)| v));
        match mix(&parts) {
            Av::Num => Av::Data,
            other => other,
        }
    }

    /// `'…'.format(…)`: Python's format strings walk attributes and items of arguments.
    fn str_format(&mut self, obj: &Av, args: &[(Option<&str>, Av)], at: u32) -> Av {
        let Av::Str(fmt) = obj else {
            if matches!(obj, Av::Data) {
                return Av::Data;
            }
            self.flag(
                at as usize,
                "calls `str.format` on a string not proved constant".into(),
                true,
            );
            return Av::Internal("a computed format".into());
        };
        let Some(fields) = value::format_fields(fmt) else {
            return Av::Opaque;
        };
        let positional: Vec<&Av> = args
            .iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, v)| v)
            .collect();
        let mut auto = 0usize;
        let mut out = Some(String::new());
        for f in fields {
            match f {
                Ok(lit) => {
                    if let Some(o) = &mut out {
                        o.push_str(&lit);
                    }
                }
                Err(field) => {
                    let arg = if field.arg.is_empty() {
                        auto += 1;
                        positional.get(auto - 1).copied()
                    } else if let Ok(i) = field.arg.parse::<usize>() {
                        positional.get(i).copied()
                    } else {
                        args.iter()
                            .find(|(k, _)| *k == Some(field.arg.as_str()))
                            .map(|(_, v)| v)
                    };
                    let mut walked = arg.cloned().unwrap_or(Av::Opaque);
                    for step in &field.walk {
                        let key = step
                            .parse::<i64>()
                            .map_or_else(|_| Av::Str(step.clone()), Av::Int);
                        walked = self.access(&walked, &key, at, "`str.format` field");
                    }
                    if let Av::Internal(_) = walked {
                        return walked;
                    }
                    let text = arg
                        .filter(|_| field.walk.is_empty() && !field.spec)
                        .and_then(Av::to_str);
                    match (text, &mut out) {
                        (Some(t), Some(o)) => o.push_str(&t),
                        _ => out = None,
                    }
                }
            }
        }
        match out {
            Some(s) => fold_str(s),
            None => Av::Opaque,
        }
    }

    /// Applies a filter expression whose input is `input` (set/filter blocks).
    fn filter_chain(&mut self, f: &'a Expr<'a>, input: Av) -> Av {
        match f {
            Expr::Filter(flt) => {
                let inner = match &flt.expr {
                    Some(x) => self.filter_chain(x, input),
                    None => input,
                };
                self.filter(flt, inner)
            }
            other => {
                self.expr(other);
                Av::Opaque
            }
        }
    }

    fn filter(&mut self, f: &'a ast::Spanned<ast::Filter<'a>>, input: Av) -> Av {
        let at = f.span().start_offset;
        let args = self.args(&f.args);
        let pos: Vec<&Av> = args
            .iter()
            .filter(|(k, _)| k.is_none())
            .map(|(_, v)| v)
            .collect();
        let kw = |name: &str| args.iter().find(|(k, _)| *k == Some(name)).map(|(_, v)| v);
        let item = input.item_summary();
        // Filters that look attributes up by name.
        let attribute_arg = match f.name {
            "map" => kw("attribute"),
            "sort" => kw("attribute").or(pos.get(2).copied()),
            "unique" | "min" | "max" | "join" => kw("attribute").or(pos.get(1).copied()),
            "sum" | "selectattr" | "rejectattr" | "groupby" => {
                kw("attribute").or(pos.first().copied())
            }
            _ => None,
        };
        if let Some(path) = attribute_arg {
            self.attribute_path(&item, path, at);
        }
        match f.name {
            "attr" => {
                let name = pos.first().copied().cloned().unwrap_or(Av::None);
                return self.access(&input, &name, at, "`attr` filter name");
            }
            "map" if kw("attribute").is_none() => match pos.first() {
                Some(Av::Str(name)) if name == "attr" => {
                    let attr = pos.get(1).copied().cloned().unwrap_or(Av::None);
                    self.access(&item, &attr, at, "`map('attr')` name");
                    return Av::Internal("attributes mapped by name".into());
                }
                Some(Av::Str(_)) => {}
                Some(other) => {
                    let other = (*other).clone();
                    self.access(
                        &Av::Internal("the filter table".into()),
                        &other,
                        at,
                        "`map` filter name",
                    );
                }
                None => {}
            },
            _ => {}
        }
        if let Av::Internal(_) = input {
            return input;
        }
        if f.name == "format" && !matches!(input, Av::Data) {
            return fold_filter(f.name, &input, &pos, &kw).unwrap_or(Av::Opaque);
        }
        fold_filter(f.name, &input, &pos, &kw).unwrap_or_else(|| {
            // A filter not folded here, applied to text the template chose, may give any text.
            if matches!(input, Av::Str(_) | Av::List(_) | Av::Map(_)) {
                return Av::Opaque;
            }
            let mut parts: Vec<&Av> = vec![&input];
            parts.extend(args.iter().map(|(_, v)| v));
            match mix(&parts) {
                Av::Num => Av::Data,
                other => other,
            }
        })
    }

    /// `attribute='a.b'` arguments: Jinja2 looks each dotted part up on the item.
    fn attribute_path(&mut self, item: &Av, path: &Av, at: u32) {
        match path {
            Av::Str(p) => {
                let mut obj = item.clone();
                for part in p.split('.') {
                    let key = part
                        .parse::<i64>()
                        .map_or_else(|_| Av::Str(part.to_string()), Av::Int);
                    obj = self.access(&obj, &key, at, "`attribute=` path part");
                }
            }
            Av::Int(_) | Av::None => {}
            other => {
                self.access(item, other, at, "`attribute=` name");
            }
        }
    }
}

impl Av {
    fn max_opaque(self) -> Av {
        match self {
            Av::Data | Av::Num => Av::Data,
            _ => Av::Opaque,
        }
    }

    fn max_opaque_if_const(self, orig: &Av) -> Av {
        if orig.is_const() { orig.clone() } else { self }
    }

    fn max_with(self, other: &Av) -> Av {
        mix(&[&self, other])
    }
}

/// Why accessing `name` on `obj` can reach Python internals, if it can.
fn access_hazard(obj: &Av, name: &Av) -> Option<String> {
    match (obj, name) {
        (_, Av::Str(s)) if INTERPRETER_ATTRS.contains(&s.as_str()) => {
            Some(format!("reaches interpreter internals through `{s}`"))
        }
        (_, Av::Str(s)) if is_private(s) => {
            Some(format!("accesses private/dunder name `{}`", shorten(s)))
        }
        (Av::Internal(what), _) => Some(format!("walks {what} by {}", describe(name))),
        (_, Av::Str(_) | Av::Int(_) | Av::Num | Av::None | Av::Data) => None,
        (_, Av::List(items)) if items.iter().all(|i| matches!(i, Av::Int(_) | Av::Num)) => None,
        _ => Some(format!(
            "accesses a name not proved harmless ({})",
            describe(name)
        )),
    }
}

fn describe(name: &Av) -> String {
    match name {
        Av::Str(s) => format!("`{}`", shorten(s)),
        Av::Int(i) => format!("`{i}`"),
        Av::Data => "a name from template data".into(),
        Av::Internal(w) => format!("a name built from {w}"),
        _ => "a name built at render time".into(),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(40).collect::<String>())
    }
}

fn index(v: &[Av], i: i64) -> Option<Av> {
    let len = i64::try_from(v.len()).ok()?;
    let i = if i < 0 { i + len } else { i };
    v.get(usize::try_from(i).ok()?).cloned()
}

fn join_env<'a>(a: &BTreeMap<&'a str, Av>, b: &BTreeMap<&'a str, Av>) -> BTreeMap<&'a str, Av> {
    let mut out = a.clone();
    for (k, v) in b {
        let merged = match a.get(k) {
            Some(x) => join(x, v),
            None => join(&Av::Data, v),
        };
        out.insert(k, merged);
    }
    for (k, v) in out.iter_mut() {
        if !b.contains_key(k) {
            *v = join(v, &Av::Data);
        }
    }
    out
}

/// Joins `v` into field `field` of every namespace held in `value` (nested ones included).
fn widen_ns_field(value: &mut Av, field: &str, v: &Av) {
    match value {
        Av::Ns(fields) => {
            match fields.iter_mut().find(|(k, _)| k == field) {
                Some(slot) => slot.1 = join(&slot.1, v),
                None => fields.push((field.to_string(), join(&Av::Data, v))),
            }
            for (_, inner) in fields.iter_mut() {
                widen_ns_field(inner, field, v);
            }
        }
        Av::List(items) => items.iter_mut().for_each(|i| widen_ns_field(i, field, v)),
        Av::Map(m) => m.iter_mut().for_each(|(_, i)| widen_ns_field(i, field, v)),
        _ => {}
    }
}

/// Replaces every known list or dict in `value` by `Opaque`.
fn forget_containers(value: &mut Av) {
    match value {
        Av::List(_) | Av::Map(_) => *value = Av::Opaque,
        Av::Ns(fields) => fields.iter_mut().for_each(|(_, v)| forget_containers(v)),
        _ => {}
    }
}

fn has_loop_control(body: &[Stmt<'_>]) -> bool {
    body.iter().any(|s| match s {
        Stmt::Continue(_) | Stmt::Break(_) => true,
        Stmt::IfCond(c) => has_loop_control(&c.true_body) || has_loop_control(&c.false_body),
        Stmt::WithBlock(w) => has_loop_control(&w.body),
        _ => false,
    })
}

/// Calls of Jinja's harmless globals.
fn global_call(name: &str, args: &[(Option<&str>, Av)]) -> Av {
    let kwargs = || -> Vec<(String, Av)> {
        args.iter()
            .filter_map(|(k, v)| k.map(|k| (k.to_string(), v.clone())))
            .collect()
    };
    let ints: Vec<i64> = args
        .iter()
        .filter_map(|(_, v)| if let Av::Int(i) = v { Some(*i) } else { None })
        .collect();
    match name {
        "namespace" => Av::Ns(kwargs()),
        "dict" => Av::Map(kwargs()),
        "range" if ints.len() == args.len() && !ints.is_empty() => {
            let (start, stop, step) = match ints.as_slice() {
                [stop] => (0, *stop, 1),
                [start, stop] => (*start, *stop, 1),
                [start, stop, step, ..] => (*start, *stop, *step),
                [] => (0, 0, 1),
            };
            let n = stop.checked_sub(start).and_then(|d| d.checked_div(step));
            let Some(n) = n.filter(|n| (0..=MAX_FOLD as i64).contains(n)) else {
                return Av::List(Vec::new()).max_with(&Av::Num);
            };
            let items: Option<Vec<Av>> = (0..n)
                .map(|i| {
                    i.checked_mul(step)
                        .and_then(|o| o.checked_add(start))
                        .map(Av::Int)
                })
                .collect();
            items.map_or(Av::Data, Av::List)
        }
        "cycler" | "joiner" => {
            let parts: Vec<&Av> = args.iter().map(|(_, v)| v).collect();
            mix(&parts).max_opaque()
        }
        _ => Av::Data,
    }
}

/// Python `str` methods on a known string.
fn str_method(s: &str, name: &str, pos: &[&Av]) -> Option<Av> {
    let arg_str = |i: usize| pos.get(i).and_then(|a| a.to_str());
    let v = match name {
        "upper" => Av::Str(s.to_uppercase()),
        "lower" | "casefold" => Av::Str(s.to_lowercase()),
        "strip" => Av::Str(match arg_str(0) {
            Some(c) => s.trim_matches(|x| c.contains(x)).to_string(),
            None => s.trim().to_string(),
        }),
        "lstrip" => Av::Str(match arg_str(0) {
            Some(c) => s.trim_start_matches(|x| c.contains(x)).to_string(),
            None => s.trim_start().to_string(),
        }),
        "rstrip" => Av::Str(match arg_str(0) {
            Some(c) => s.trim_end_matches(|x| c.contains(x)).to_string(),
            None => s.trim_end().to_string(),
        }),
        "replace" => fold_str(s.replace(&arg_str(0)?, &arg_str(1)?)),
        "join" => {
            let items = pos.first()?.items()?;
            let parts: Option<Vec<String>> = items.iter().map(Av::to_str).collect();
            fold_str(parts?.join(s))
        }
        "split" => {
            let sep = arg_str(0);
            let parts: Vec<Av> = match &sep {
                Some(sep) if !sep.is_empty() => {
                    s.split(sep.as_str()).map(|p| Av::Str(p.into())).collect()
                }
                _ => s.split_whitespace().map(|p| Av::Str(p.into())).collect(),
            };
            Av::List(parts)
        }
        "capitalize" => {
            let mut c = s.chars();
            Av::Str(match c.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            })
        }
        "title" => Av::Str(title(s)),
        "swapcase" => Av::Str(
            s.chars()
                .flat_map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().collect::<Vec<_>>()
                    } else {
                        c.to_uppercase().collect()
                    }
                })
                .collect(),
        ),
        "removeprefix" => Av::Str(
            s.strip_prefix(arg_str(0)?.as_str())
                .unwrap_or(s)
                .to_string(),
        ),
        "removesuffix" => Av::Str(
            s.strip_suffix(arg_str(0)?.as_str())
                .unwrap_or(s)
                .to_string(),
        ),
        "startswith" | "endswith" | "find" | "count" | "index" | "isdigit" | "isalpha" => Av::Num,
        _ => return None,
    };
    Some(v)
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut prev_alpha = false;
    for c in s.chars() {
        if prev_alpha {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_alpha = c.is_alphabetic();
    }
    out
}

/// Jinja2's built-in filters on known values.
fn fold_filter<'k>(
    name: &str,
    input: &Av,
    pos: &[&Av],
    kw: &dyn Fn(&str) -> Option<&'k Av>,
) -> Option<Av> {
    let s = input.to_str();
    let v = match name {
        "string" => fold_str(s?),
        "lower" => Av::Str(s?.to_lowercase()),
        "upper" => Av::Str(s?.to_uppercase()),
        "capitalize" => str_method(&s?, "capitalize", &[])?,
        "title" => Av::Str(title(&s?)),
        "trim" => str_method(&s?, "strip", pos)?,
        "replace" => {
            let (from, to) = (pos.first()?.to_str()?, pos.get(1)?.to_str()?);
            match pos.get(2) {
                Some(Av::Int(n)) => fold_str(s?.replacen(&from, &to, usize::try_from(*n).ok()?)),
                Some(_) => return None,
                None => fold_str(s?.replace(&from, &to)),
            }
        }
        "reverse" => match input {
            Av::Str(st) => Av::Str(st.chars().rev().collect()),
            Av::List(v) => Av::List(v.iter().rev().cloned().collect()),
            _ => return None,
        },
        "list" => Av::List(input.items()?),
        "first" => input.items()?.into_iter().next().unwrap_or(Av::None),
        "last" => input.items()?.into_iter().next_back().unwrap_or(Av::None),
        "join" => {
            let sep = pos
                .first()
                .map(|a| a.to_str())
                .unwrap_or(Some(String::new()))?;
            if kw("attribute").is_some() || pos.len() > 1 {
                return None;
            }
            let parts: Option<Vec<String>> = input.items()?.iter().map(Av::to_str).collect();
            fold_str(parts?.join(&sep))
        }
        "format" => {
            let args = Av::List(pos.iter().map(|a| (*a).clone()).collect());
            if !args.is_const() {
                return None;
            }
            fold_str(percent_format(&s?, &args)?)
        }
        "length" | "count" | "wordcount" => match input.items() {
            Some(i) => Av::Int(i64::try_from(i.len()).ok()?),
            None => Av::Num,
        },
        "int" => match input {
            Av::Int(i) => Av::Int(*i),
            Av::Str(st) => st.trim().parse::<i64>().map_or(Av::Num, Av::Int),
            _ => Av::Num,
        },
        "abs" | "float" | "round" | "filesizeformat" => Av::Num,
        "default" | "d" => match input {
            Av::Data | Av::None => join(
                input,
                pos.first().copied().unwrap_or(&Av::Str(String::new())),
            ),
            other => other.clone(),
        },
        "safe" => match input {
            Av::Str(_) => input.clone(),
            other if other.is_const() => fold_str(s?),
            _ => return None,
        },
        "escape" | "e" | "forceescape" => match input {
            Av::Str(st) => fold_str(
                st.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&#34;")
                    .replace('\'', "&#39;"),
            ),
            other if other.is_const() => fold_str(s?),
            _ => return None,
        },
        "tojson" if input.is_const() => fold_str(serde_json::to_string(&to_json(input)).ok()?),
        "items" | "dictsort" => match input {
            Av::Map(m) => Av::List(
                m.iter()
                    .map(|(k, v)| Av::List(vec![Av::Str(k.clone()), v.clone()]))
                    .collect(),
            ),
            _ => return None,
        },
        "unique" | "sort" if input.is_const() && kw("attribute").is_none() => {
            let mut items: Vec<Av> = input.items()?;
            let mut keys: Vec<(String, Av)> = items
                .drain(..)
                .map(|i| (i.to_str().unwrap_or_default(), i))
                .collect();
            if name == "sort" {
                keys.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                let mut seen = std::collections::HashSet::new();
                keys.retain(|(k, _)| seen.insert(k.clone()));
            }
            Av::List(keys.into_iter().map(|(_, v)| v).collect())
        }
        _ => return None,
    };
    Some(v)
}

fn to_json(v: &Av) -> serde_json::Value {
    match v {
        Av::Str(s) => serde_json::Value::String(s.clone()),
        Av::Int(i) => serde_json::Value::from(*i),
        Av::List(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Av::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        _ => serde_json::Value::Null,
    }
}
