//! The pickle engine: decodes every opcode of protocols 0-5 exactly as CPython's unpickler
//! reads them ([`reader`]), and runs a symbolic machine over them ([`machine`]) that records
//! every import, call, BUILD and persistent load a real load would perform. Nothing is ever
//! executed. [`disasm`] prints a listing for `airlock explain`.

pub mod disasm;
pub mod gadgets;
pub mod lite;
pub mod machine;
pub mod opcodes;
pub mod reader;
pub mod value;

pub use disasm::{Disassembly, Op, disassemble};
pub use machine::{Outcome, run};

#[cfg(test)]
mod gadget_tests;
#[cfg(test)]
pub(crate) mod tests;
