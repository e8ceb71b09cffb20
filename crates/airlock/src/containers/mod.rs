//! Archive and compression readers: zip (read as leniently as torch's reader), tar, 7z, and
//! the single-stream compressors (gzip, bz2, xz, lzma, lz4, zstd, zlib). Each reader takes
//! untrusted bytes and enforces the limits in [`crate::limits::Limits`].
