//! Ctrl-C, `timeout` and a cancelled CI job: SIGINT, SIGTERM and SIGHUP set
//! a flag that long work checks between steps, so that a command stops at a
//! point it chooses and cleans up (a half-built image in a staging folder
//! is removed) instead of dying where it stands.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::error::{Error, Result};

/// The signal that asked the command to stop, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(signal: libc::c_int) {
    // Only an atomic store: nothing else is safe in a signal handler.
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// Catch SIGINT, SIGTERM and SIGHUP from now on (the binary calls this
/// once, before any work).
#[allow(unsafe_code)]
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `sigaction` is a plain C struct; all zeros is a valid
        // value of it (an empty mask, no flags).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = note as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `action` is a valid, initialised sigaction and
        // the old action is not asked for.
        unsafe {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that asked the command to stop, if one did.
pub fn signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Fail once a signal asked the command to stop.
pub fn check() -> Result<()> {
    match signal() {
        None => Ok(()),
        Some(signal) => Err(Error::Interrupted { signal }),
    }
}
