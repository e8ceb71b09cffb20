//! The pickle engine: decodes every opcode of protocols 0-5 exactly as CPython's unpickler
//! reads them ([`reader`]), and runs a symbolic machine over them ([`machine`]) that records
//! every import, call, BUILD and persistent load a real load would perform. Nothing is ever
//! executed. [`disasm`] prints a listing for `airlock explain`.
//!
//! What each opcode does is defined once, in [`opcodes`] (byte, argument encoding, protocol)
//! and [`semantics`] (stack effect, action); the full machine and the fast pass ([`lite`])
//! both dispatch on it. The engine owns the loader-specific records it decodes while it runs
//! (torch's storage ids in [`persistent`], joblib's array records in [`joblib`]) and imports
//! nothing from `formats`.

pub mod disasm;
pub mod gadgets;
pub mod joblib;
pub mod lite;
pub mod machine;
pub mod opcodes;
pub mod persistent;
pub mod reader;
pub mod semantics;
pub mod value;

pub use disasm::{Disassembly, Op, disassemble};
pub use machine::{Outcome, run};

#[cfg(test)]
mod gadget_tests;
#[cfg(test)]
pub(crate) mod tests;
