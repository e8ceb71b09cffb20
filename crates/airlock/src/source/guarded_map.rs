//! Read-only file mappings that survive the file shrinking under them.
//!
//! A scanned file is mapped, not read, above 256 KiB: reading a multi-gigabyte model into
//! memory would make memory follow the file's size, and the large-pickle benchmark path
//! depends on the mapping. But when another process truncates a mapped file, touching a page
//! past the new end raises SIGBUS, which kills the whole run (every other file's report lost).
//!
//! Decision: keep the mapping and handle SIGBUS, rather than read. One process-wide handler
//! (installed once, chained to the handler it replaces, e.g. Rust's stack-overflow handler)
//! looks the faulting address up in a fixed table of registered mappings. For a fault inside
//! one, it maps anonymous zero pages over the rest of that mapping with `MAP_FIXED`
//! (`mmap` is async-signal-safe), flags the mapping, and returns: the faulting read is retried
//! and sees zeros. The scan then finishes on bytes that are partly zeros, and the caller
//! reports the file unscannable ("changed during the scan") because [`GuardedMap::faulted`]
//! is set, whatever the zeros made the scan say. A fault anywhere else is passed on to the
//! previous handler, or gets the default action, exactly as before.
//!
//! Linux only (the crate's `libc` dependency is Linux-only); elsewhere a plain mapping is
//! used with the old risk, and the before/after size and time check in
//! [`crate::Scanner::scan_path`] still catches changes that do not fault.

use std::fs::File;
use std::ops::Deref;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Mappings registered at once (one per file being scanned, so one per scanning thread).
const SLOTS: usize = 256;

struct Slot {
    used: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    used: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// Whether the handler was installed (false: mappings are not guarded).
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The action replaced by ours, stored as raw parts so the handler can read it without locks.
static PREVIOUS_HANDLER: AtomicUsize = AtomicUsize::new(0);
static PREVIOUS_FLAGS: AtomicUsize = AtomicUsize::new(0);

/// A read-only mapping of a whole file, guarded against SIGBUS while it lives.
pub struct GuardedMap {
    map: memmap2::Mmap,
    slot: Option<usize>,
}

impl GuardedMap {
    /// Maps `file` read-only and registers the mapping. When the handler could not be
    /// installed or every slot is taken, the mapping is still returned, unguarded
    /// ([`GuardedMap::guarded`] says which).
    pub fn map(file: &File) -> std::io::Result<GuardedMap> {
        install();
        // SAFETY: read-only mapping. The file may shrink under it (another process); the
        // SIGBUS that raises is handled (see the module docs) while the slot is registered.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file) }?;
        let slot = INSTALLED
            .load(Ordering::Acquire)
            .then(|| register(map.as_ptr() as usize, map.len()))
            .flatten();
        Ok(GuardedMap { map, slot })
    }

    /// Whether a page of the file vanished while it was read (the bytes past that point
    /// read as zeros).
    pub fn faulted(&self) -> bool {
        self.slot
            .is_some_and(|i| TABLE[i].faulted.load(Ordering::Acquire))
    }

    /// Whether faults in this mapping are handled.
    pub fn guarded(&self) -> bool {
        self.slot.is_some()
    }

    pub fn advise_random(&self) {
        let _ = self.map.advise(memmap2::Advice::Random);
    }
}

impl Deref for GuardedMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        // Unregistered before the mapping goes (fields drop after this body).
        if let Some(i) = self.slot {
            let slot = &TABLE[i];
            slot.end.store(0, Ordering::Release);
            slot.start.store(0, Ordering::Release);
            slot.faulted.store(false, Ordering::Release);
            slot.used.store(false, Ordering::Release);
        }
    }
}

fn register(start: usize, len: usize) -> Option<usize> {
    let index = TABLE.iter().position(|slot| {
        slot.used
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    let slot = &TABLE[index];
    slot.faulted.store(false, Ordering::Release);
    slot.start.store(start, Ordering::Release);
    slot.end.store(start.saturating_add(len), Ordering::Release);
    Some(index)
}

#[cfg(target_os = "linux")]
fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction are called with valid arguments; the handler only
        // uses async-signal-safe operations (atomics, mmap, sigaction).
        #[allow(unsafe_code)]
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
                PREVIOUS_HANDLER.store(previous.sa_sigaction, Ordering::Release);
                PREVIOUS_FLAGS.store(previous.sa_flags as usize, Ordering::Release);
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
}

#[cfg(not(target_os = "linux"))]
fn install() {
    INSTALL.call_once(|| {});
}

/// The SIGBUS handler (see the module docs).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        let end = slot.end.load(Ordering::Acquire);
        if start == 0 || address < start || address >= end {
            continue;
        }
        let page = PAGE.load(Ordering::Relaxed);
        let from = address & !(page - 1);
        // SAFETY: [from, end) lies inside a live mapping this process owns (the slot is
        // unregistered before the mapping is dropped); replacing its pages with zero pages
        // changes only what the scan reads, which is then reported unscannable.
        let mapped = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
    }
    pass_on(signal, info, context);
}

/// Hands a SIGBUS that is not ours to the handler we replaced, or restores the default
/// action so that the retried access terminates the process as it would have.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn pass_on(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let handler = PREVIOUS_HANDLER.load(Ordering::Acquire);
    let flags = PREVIOUS_FLAGS.load(Ordering::Acquire) as libc::c_int;
    if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
        // SAFETY: `handler` is the function the previous sigaction installed, called with
        // the signature its flags say it has.
        unsafe {
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                f(signal, info, context);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                f(signal);
            }
        }
        return;
    }
    // SAFETY: resetting to the default action is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_under_its_mapping_reads_zeros_and_is_flagged() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![7u8; 1 << 20]).unwrap();
        let map = GuardedMap::map(&file).unwrap();
        assert!(map.guarded());
        assert_eq!(map[500_000], 7);
        assert!(!map.faulted());
        file.set_len(4096).unwrap();
        // Past the new end: SIGBUS without the guard.
        let tail: u64 = map[8192..].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(tail, 0);
        assert_eq!(map[0], 7);
        assert!(map.faulted());
        drop(map);
        // The slot is free again and the next mapping starts clean.
        let again = GuardedMap::map(&file).unwrap();
        assert!(!again.faulted());
    }
}
