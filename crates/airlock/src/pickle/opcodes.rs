//! The pickle opcode table, protocols 0 to 5, as CPython's `Lib/pickle.py` and
//! `Modules/_pickle.c` define them: byte value, name, argument encoding and protocol.

/// How an opcode's argument is encoded in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    /// 1-byte unsigned.
    U1,
    /// 2-byte little-endian unsigned.
    U2,
    /// 4-byte little-endian signed.
    I4,
    /// 4-byte little-endian unsigned.
    U4,
    /// 8-byte little-endian unsigned.
    U8,
    /// 8-byte big-endian IEEE double.
    F8,
    /// A decimal line (`INT`, `GET`, `PUT`): `\n`-terminated.
    DecimalLine,
    /// A long literal line (`LONG`), optional trailing `L`.
    LongLine,
    /// A float line (`FLOAT`).
    FloatLine,
    /// A quoted string literal line (`STRING`).
    QuotedLine,
    /// A raw-unicode-escape line (`UNICODE`).
    UnicodeLine,
    /// One raw line (`PERSID`).
    RawLine,
    /// Two raw lines, module then name (`GLOBAL`, `INST`).
    TwoLines,
    /// Length-prefixed byte strings: 1-byte, 4-byte signed, 4-byte unsigned, 8-byte lengths.
    Len1,
    LenI4,
    LenU4,
    Len8,
    /// `LONG1` / `LONG4`: little-endian two's complement bytes after a length.
    Long1,
    Long4,
}

/// How the structure-only decoder reads an opcode's argument from one 8-byte load: a
/// fixed-width argument of `width` bytes, or a body whose length is the `width`-byte
/// little-endian prefix (`prefixed`). The opcodes it does not cover (line-based ones, FRAME,
/// BINSTRING and SHORT_BINSTRING with their encodings, EXT4, LONG4) take the full decoder.
/// Two opcodes with equal shapes read their arguments alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawShape {
    /// Bytes of the fixed argument, or of the length prefix: 0, 1, 2, 4 or 8.
    pub width: u8,
    pub prefixed: bool,
    /// The fixed argument is kept as the instruction's integer (memo indices, PROTO, EXT1).
    pub int: bool,
    /// The body must be UTF-8 (the BINUNICODE family).
    pub text: bool,
}

impl RawShape {
    const fn of(op: Opcode, kind: ArgKind) -> Option<RawShape> {
        let (width, prefixed, int) = match kind {
            ArgKind::None => (0, false, false),
            ArgKind::U1 => (1, false, true),
            ArgKind::U2 => (2, false, false),
            ArgKind::F8 => (8, false, false),
            ArgKind::I4 if matches!(op, Opcode::BININT) => (4, false, false),
            ArgKind::U4 => (4, false, true),
            ArgKind::Long1 => (1, true, false),
            ArgKind::Len1 if !matches!(op, Opcode::SHORT_BINSTRING) => (1, true, false),
            ArgKind::LenU4 => (4, true, false),
            ArgKind::Len8 => (8, true, false),
            _ => return None,
        };
        let text = matches!(
            op,
            Opcode::SHORT_BINUNICODE | Opcode::BINUNICODE | Opcode::BINUNICODE8
        );
        Some(RawShape {
            width,
            prefixed,
            int,
            text,
        })
    }
}

macro_rules! opcodes {
    ($($name:ident = $byte:literal, $arg:ident, $proto:literal;)*) => {
        /// One pickle opcode.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum Opcode { $($name,)* }

        impl Opcode {
            /// Decodes an opcode byte; `None` for bytes CPython rejects.
            pub fn from_byte(b: u8) -> Option<Opcode> {
                Self::decode(b).map(|(op, _)| op)
            }

            /// Decodes an opcode byte together with its argument encoding.
            #[inline]
            pub fn decode(b: u8) -> Option<(Opcode, ArgKind)> {
                DECODE_BY_BYTE[b as usize]
            }

            /// The opcode's name as `pickletools` prints it.
            pub fn name(self) -> &'static str {
                match self { $(Opcode::$name => stringify!($name),)* }
            }

            /// How the argument is encoded.
            #[inline]
            pub fn arg_kind(self) -> ArgKind {
                ARG_KIND_BY_OPCODE[self as usize]
            }

            /// The protocol that introduced the opcode.
            pub fn protocol(self) -> u8 {
                match self { $(Opcode::$name => $proto,)* }
            }

            /// The opcode's byte.
            pub const fn byte(self) -> u8 {
                match self { $(Opcode::$name => $byte,)* }
            }
        }

        static ARG_KIND_BY_OPCODE: &[ArgKind] = &[$(ArgKind::$arg,)*];

        /// How [`crate::pickle::reader::Reader::raw_like`] reads each opcode's argument, by
        /// opcode; `None` sends the opcode to the full decoder. Indexed by a constant opcode,
        /// the lookup folds away and the decoder is specialised to that opcode.
        pub(crate) static RAW_BY_OPCODE: [Option<RawShape>; OPCODE_COUNT] =
            [$(RawShape::of(Opcode::$name, ArgKind::$arg),)*];

        pub(crate) const OPCODE_COUNT: usize = [$(stringify!($name),)*].len();

        /// Each opcode's byte, as constants a `match` on the raw byte can use: the fast pass
        /// dispatches on the byte itself, one load shorter than looking the opcode up first
        /// (and 12 % fewer instructions than dispatching on the semantics table; see lite.rs).
        pub mod bytes {
            $(pub const $name: u8 = $byte;)*
        }

        /// Opcode and argument encoding by byte, for the hot decoding loop (one lookup, no
        /// bounds check: a `u8` always indexes a 256-entry table).
        static DECODE_BY_BYTE: [Option<(Opcode, ArgKind)>; 256] = {
            let mut table = [None; 256];
            $(table[$byte as usize] = Some((Opcode::$name, ArgKind::$arg));)*
            table
        };
    };
}

opcodes! {
    MARK = b'(', None, 0;
    STOP = b'.', None, 0;
    POP = b'0', None, 0;
    POP_MARK = b'1', None, 1;
    DUP = b'2', None, 0;
    FLOAT = b'F', FloatLine, 0;
    INT = b'I', DecimalLine, 0;
    BININT = b'J', I4, 1;
    BININT1 = b'K', U1, 1;
    LONG = b'L', LongLine, 0;
    BININT2 = b'M', U2, 1;
    NONE = b'N', None, 0;
    PERSID = b'P', RawLine, 0;
    BINPERSID = b'Q', None, 1;
    REDUCE = b'R', None, 0;
    STRING = b'S', QuotedLine, 0;
    BINSTRING = b'T', LenI4, 1;
    SHORT_BINSTRING = b'U', Len1, 1;
    UNICODE = b'V', UnicodeLine, 0;
    BINUNICODE = b'X', LenU4, 1;
    APPEND = b'a', None, 0;
    BUILD = b'b', None, 0;
    GLOBAL = b'c', TwoLines, 0;
    DICT = b'd', None, 0;
    EMPTY_DICT = b'}', None, 1;
    APPENDS = b'e', None, 1;
    GET = b'g', DecimalLine, 0;
    BINGET = b'h', U1, 1;
    INST = b'i', TwoLines, 0;
    LONG_BINGET = b'j', U4, 1;
    LIST = b'l', None, 0;
    EMPTY_LIST = b']', None, 1;
    OBJ = b'o', None, 1;
    PUT = b'p', DecimalLine, 0;
    BINPUT = b'q', U1, 1;
    LONG_BINPUT = b'r', U4, 1;
    SETITEM = b's', None, 0;
    TUPLE = b't', None, 0;
    EMPTY_TUPLE = b')', None, 1;
    SETITEMS = b'u', None, 1;
    BINFLOAT = b'G', F8, 1;
    PROTO = 0x80, U1, 2;
    NEWOBJ = 0x81, None, 2;
    EXT1 = 0x82, U1, 2;
    EXT2 = 0x83, U2, 2;
    EXT4 = 0x84, I4, 2;
    TUPLE1 = 0x85, None, 2;
    TUPLE2 = 0x86, None, 2;
    TUPLE3 = 0x87, None, 2;
    NEWTRUE = 0x88, None, 2;
    NEWFALSE = 0x89, None, 2;
    LONG1 = 0x8a, Long1, 2;
    LONG4 = 0x8b, Long4, 2;
    BINBYTES = b'B', LenU4, 3;
    SHORT_BINBYTES = b'C', Len1, 3;
    SHORT_BINUNICODE = 0x8c, Len1, 4;
    BINUNICODE8 = 0x8d, Len8, 4;
    BINBYTES8 = 0x8e, Len8, 4;
    EMPTY_SET = 0x8f, None, 4;
    ADDITEMS = 0x90, None, 4;
    FROZENSET = 0x91, None, 4;
    NEWOBJ_EX = 0x92, None, 4;
    STACK_GLOBAL = 0x93, None, 4;
    MEMOIZE = 0x94, None, 4;
    FRAME = 0x95, U8, 4;
    BYTEARRAY8 = 0x96, Len8, 5;
    NEXT_BUFFER = 0x97, None, 5;
    READONLY_BUFFER = 0x98, None, 5;
}

/// The highest protocol CPython reads (`pickle.HIGHEST_PROTOCOL`).
pub const HIGHEST_PROTOCOL: u8 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_and_has_all_68_opcodes() {
        let count = (0..=255u8).filter_map(Opcode::from_byte).count();
        assert_eq!(count, 68);
        for b in 0..=255u8 {
            if let Some(op) = Opcode::from_byte(b) {
                assert_eq!(op.byte(), b);
            }
        }
        assert_eq!(Opcode::from_byte(0x93), Some(Opcode::STACK_GLOBAL));
        assert_eq!(Opcode::from_byte(0x99), None);
        assert_eq!(Opcode::from_byte(b'Z'), None);
    }
}
