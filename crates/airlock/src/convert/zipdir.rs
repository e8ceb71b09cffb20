//! Where each record of a torch zip lives: name, method, sizes and data offset, read from
//! the central directory the way torch's miniz reader does (names, methods and sizes from
//! the central directory, data after the local header's name and extra fields).
//!
//! The converter needs offsets rather than bytes (tensor data is copied straight from the
//! file), so it reads only the directory here.

/// One record of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipRecord {
    pub name: String,
    pub method: u16,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub data_offset: u64,
}

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
const LOCAL_SIG: &[u8] = b"PK\x03\x04";

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn to_usize(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// Reads the central directory; an error says what is missing.
pub fn records(data: &[u8]) -> Result<Vec<ZipRecord>, String> {
    let eocd = find_eocd(data).ok_or("no end-of-central-directory record")?;
    let mut count = u64::from(u16_at(data, eocd + 10).ok_or("truncated directory end")?);
    let mut offset = u64::from(u32_at(data, eocd + 16).ok_or("truncated directory end")?);
    if let Some(locator) = eocd.checked_sub(20)
        && data.get(locator..locator + 4) == Some(LOCATOR_SIG)
    {
        let at = u64_at(data, locator + 8)
            .and_then(to_usize)
            .filter(|&at| data.get(at..at + 4) == Some(EOCD64_SIG))
            .ok_or("ZIP64 locator points at no ZIP64 directory end")?;
        count = u64_at(data, at + 32).ok_or("truncated ZIP64 directory end")?;
        offset = u64_at(data, at + 48).ok_or("truncated ZIP64 directory end")?;
    }
    // Each central entry takes at least 46 bytes: a larger count is a lie.
    if count > data.len() as u64 / 46 {
        return Err(format!("the directory claims {count} entries"));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut pos = to_usize(offset).ok_or("directory offset out of range")?;
    for i in 0..count {
        let (record, next) = central_entry(data, pos)
            .ok_or_else(|| format!("central directory entry {i} is unreadable"))?;
        out.push(record);
        pos = next;
    }
    Ok(out)
}

fn find_eocd(data: &[u8]) -> Option<usize> {
    let last = data.len().checked_sub(22)?;
    let first = last.saturating_sub(0xFFFF);
    (first..=last)
        .rev()
        .find(|&i| data.get(i..i + 4) == Some(EOCD_SIG))
}

fn central_entry(data: &[u8], pos: usize) -> Option<(ZipRecord, usize)> {
    if data.get(pos..pos + 4)? != CENTRAL_SIG {
        return None;
    }
    let method = u16_at(data, pos + 10)?;
    let mut compressed = u64::from(u32_at(data, pos + 20)?);
    let mut uncompressed = u64::from(u32_at(data, pos + 24)?);
    let name_len = usize::from(u16_at(data, pos + 28)?);
    let extra_len = usize::from(u16_at(data, pos + 30)?);
    let comment_len = usize::from(u16_at(data, pos + 32)?);
    let mut header = u64::from(u32_at(data, pos + 42)?);
    let name_at = pos + 46;
    let name = data.get(name_at..name_at + name_len)?;
    let name = String::from_utf8_lossy(name).into_owned();
    let extra = data.get(name_at + name_len..name_at + name_len + extra_len)?;
    read_zip64_extra(extra, &mut uncompressed, &mut compressed, &mut header);
    let header = to_usize(header)?;
    if data.get(header..header.checked_add(4)?)? != LOCAL_SIG {
        return None;
    }
    let local_name = usize::from(u16_at(data, header + 26)?);
    let local_extra = usize::from(u16_at(data, header + 28)?);
    let data_offset = (header + 30 + local_name + local_extra) as u64;
    let next = name_at + name_len + extra_len + comment_len;
    let record = ZipRecord {
        name,
        method,
        compressed_size: compressed,
        uncompressed_size: uncompressed,
        data_offset,
    };
    Some((record, next))
}

/// Replaces the 32-bit fields that are `0xFFFFFFFF` with the ZIP64 extra field's values, in
/// the order the format defines (uncompressed, compressed, header offset).
fn read_zip64_extra(extra: &[u8], uncompressed: &mut u64, compressed: &mut u64, header: &mut u64) {
    let mut pos = 0;
    while let (Some(id), Some(len)) = (u16_at(extra, pos), u16_at(extra, pos + 2)) {
        let body = extra
            .get(pos + 4..pos + 4 + usize::from(len))
            .unwrap_or(&[]);
        if id == 1 {
            let mut at = 0;
            for field in [uncompressed, compressed, header] {
                if *field == u64::from(u32::MAX) {
                    if let Some(v) = u64_at(body, at) {
                        *field = v;
                    }
                    at += 8;
                }
            }
            return;
        }
        pos += 4 + usize::from(len);
    }
}
