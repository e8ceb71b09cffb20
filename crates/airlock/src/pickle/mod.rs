//! The pickle engine: decodes every opcode of protocols 0-5 exactly as CPython's unpickler
//! reads them, and runs a symbolic machine over them. Nothing is ever executed.
