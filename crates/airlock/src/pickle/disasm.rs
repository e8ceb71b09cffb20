//! A disassembler for `airlock explain`: every instruction of every pickle in a stream, with
//! its offset, argument and the stack depth (values plus marks) before and after it.
//!
//! It decodes with the same [`Reader`] as the engine, so what it shows is what the engine
//! (and the loader) reads.

use super::opcodes::Opcode;
use super::reader::{Arg, Long, Reader};

use crate::limits::caps::pickle::MAX_LISTED;

/// One listed instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub offset: u64,
    pub name: &'static str,
    pub arg: Option<String>,
    pub depth_before: usize,
    pub depth_after: usize,
}

/// The listing of a stream of pickles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disassembly {
    pub pickles: Vec<Vec<Op>>,
    /// Where decoding stopped with an error, if it did (offset, message).
    pub error: Option<(u64, String)>,
}

/// Lists every pickle in `data`, one after another, until the data ends, a pickle fails to
/// decode, or the bytes after a STOP are not another pickle.
pub fn disassemble(data: &[u8]) -> Disassembly {
    let mut out = Disassembly::default();
    let mut reader = Reader::new(data, 0);
    while reader.remaining() > 0 {
        let start = reader.position();
        let (ops, error) = list_one(&mut reader);
        let failed_at_once = ops.is_empty() && !out.pickles.is_empty();
        if !failed_at_once {
            out.pickles.push(ops);
        }
        if let Some(error) = error {
            out.error = Some(error);
            break;
        }
        if reader.position() == start {
            break;
        }
    }
    out
}

fn list_one(reader: &mut Reader<'_>) -> (Vec<Op>, Option<(u64, String)>) {
    let mut ops = Vec::new();
    let mut depth = 0usize;
    let mut marks: Vec<usize> = Vec::new();
    loop {
        let instr = match reader.next_instr() {
            Ok(instr) => instr,
            Err(e) => return (ops, Some((e.offset, e.message))),
        };
        let before = depth + marks.len();
        depth = stack_effect(instr.op, depth, &mut marks);
        if ops.len() < MAX_LISTED {
            ops.push(Op {
                offset: instr.offset,
                name: instr.op.name(),
                arg: format_arg(&instr.arg),
                depth_before: before,
                depth_after: depth + marks.len(),
            });
        }
        if instr.op == Opcode::STOP {
            return (ops, None);
        }
    }
}

/// The value-stack depth after `op`, updating the mark stack.
fn stack_effect(op: Opcode, depth: usize, marks: &mut Vec<usize>) -> usize {
    use Opcode as O;
    let to_mark = |marks: &mut Vec<usize>| marks.pop().unwrap_or(0).min(depth);
    match op {
        O::MARK => {
            marks.push(depth);
            depth
        }
        O::POP => {
            if marks.last() == Some(&depth) {
                marks.pop();
                depth
            } else {
                depth.saturating_sub(1)
            }
        }
        O::POP_MARK => to_mark(marks),
        O::TUPLE | O::LIST | O::DICT | O::FROZENSET | O::OBJ | O::INST => to_mark(marks) + 1,
        O::APPENDS | O::SETITEMS | O::ADDITEMS => to_mark(marks),
        O::STOP | O::APPEND | O::BUILD | O::REDUCE | O::NEWOBJ | O::STACK_GLOBAL => {
            depth.saturating_sub(1)
        }
        O::SETITEM | O::NEWOBJ_EX => depth.saturating_sub(2),
        O::TUPLE2 => depth.saturating_sub(1),
        O::TUPLE3 => depth.saturating_sub(2),
        O::TUPLE1
        | O::BINPERSID
        | O::PUT
        | O::BINPUT
        | O::LONG_BINPUT
        | O::MEMOIZE
        | O::PROTO
        | O::FRAME
        | O::READONLY_BUFFER => depth,
        _ => depth + 1,
    }
}

fn format_arg(arg: &Arg<'_>) -> Option<String> {
    const MAX: usize = 100;
    Some(match arg {
        Arg::None => return None,
        Arg::Int(i) => i.to_string(),
        Arg::Size(n) => n.to_string(),
        Arg::Float(f) => f.to_string(),
        Arg::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Arg::Long(Long::Small(i)) => i.to_string(),
        Arg::Long(Long::Big(n)) => format!("<integer of {n} bytes>"),
        Arg::Str(s) => format!("{:?}", shorten(s, MAX)),
        Arg::Bytes(b) | Arg::ByteArray(b) => format_bytes(b, MAX),
        Arg::Line(l) => format!("{:?}", shorten(&String::from_utf8_lossy(l), MAX)),
        Arg::Pair(m, n) => format!("{m} {n}"),
    })
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn format_bytes(b: &[u8], max: usize) -> String {
    let shown: String = b
        .iter()
        .take(max)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > max {
        format!("b'{shown}…' ({} bytes)", b.len())
    } else {
        format!("b'{shown}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_protocol_2_pickle_with_depths() {
        let d = disassemble(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
        assert_eq!(d.error, None);
        assert_eq!(d.pickles.len(), 1);
        let names: Vec<_> = d.pickles[0].iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            ["PROTO", "GLOBAL", "BINUNICODE", "TUPLE1", "REDUCE", "STOP"]
        );
        let global = &d.pickles[0][1];
        assert_eq!(global.arg.as_deref(), Some("os system"));
        assert_eq!((global.depth_before, global.depth_after), (0, 1));
        let reduce = &d.pickles[0][4];
        assert_eq!((reduce.depth_before, reduce.depth_after), (2, 1));
    }

    #[test]
    fn lists_stacked_pickles_and_reports_errors() {
        let d = disassemble(b"K\x01.K\x02.X\xff");
        assert_eq!(
            d.pickles.len(),
            2,
            "bytes that fail at once are not listed as a pickle"
        );
        assert!(d.error.is_some());
        assert_eq!(d.error.unwrap().0, 6, "errors point at the opcode");
    }
}
