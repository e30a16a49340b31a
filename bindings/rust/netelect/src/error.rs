// SPDX-License-Identifier: MIT
use std::ffi::CStr;
use std::fmt;

use crate::sys;

/// A C error code: a negative errno or one of the `NETELECT_E*` codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    code: i32,
}

/// What an [`Error`] means, for `match`; the exact code is [`Error::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `NETELECT_ENOCHAN`: no such channel in the published view.
    NoChannel,
    /// `NETELECT_ESTALE`: the agent is gone for longer than the fail-static window.
    Stale,
    /// `NETELECT_EVERSION`: the segment has an incompatible ABI major.
    Version,
    /// `NETELECT_ECORRUPT`: the segment failed validation.
    Corrupt,
    /// `-ENOENT`: no segment (open), no such node (node).
    NotFound,
    /// `-EPERM`/`-EACCES`: the segment's owner or mode is refused.
    NotTrusted,
    /// `-EOWNERDEAD`: the agent is gone (wait).
    AgentGone,
    /// `-ETIMEDOUT` (wait).
    TimedOut,
    /// `-EINTR`: a signal handler ran in the waiting thread (wait).
    Interrupted,
    /// `-EAGAIN`: retries exhausted, or the segment is still initialising.
    TryAgain,
    /// `-EINVAL`: a bad argument (a channel name not 1..255 bytes, a NUL in a name, ...).
    InvalidInput,
    /// Any other negative errno.
    Other,
}

impl Error {
    pub const ENOCHAN: i32 = sys::NETELECT_ENOCHAN;
    pub const ESTALE: i32 = sys::NETELECT_ESTALE;
    pub const EVERSION: i32 = sys::NETELECT_EVERSION;
    pub const ECORRUPT: i32 = sys::NETELECT_ECORRUPT;

    /// Wraps a C return value (negative).
    #[inline]
    pub fn from_code(code: i32) -> Error {
        debug_assert!(code < 0, "not an error code: {code}");
        Error { code }
    }

    /// The C return value: `-errno` or a `NETELECT_E*` code.
    #[inline]
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The positive errno, for codes that are one (not the `NETELECT_E*` codes).
    pub fn raw_os_error(&self) -> Option<i32> {
        (self.code > -4096).then(|| -self.code)
    }

    #[inline]
    pub fn kind(&self) -> ErrorKind {
        match self.code {
            sys::NETELECT_ENOCHAN => ErrorKind::NoChannel,
            sys::NETELECT_ESTALE => ErrorKind::Stale,
            sys::NETELECT_EVERSION => ErrorKind::Version,
            sys::NETELECT_ECORRUPT => ErrorKind::Corrupt,
            c => match -c {
                libc::ENOENT => ErrorKind::NotFound,
                libc::EPERM | libc::EACCES => ErrorKind::NotTrusted,
                libc::EOWNERDEAD => ErrorKind::AgentGone,
                libc::ETIMEDOUT => ErrorKind::TimedOut,
                libc::EINTR => ErrorKind::Interrupted,
                libc::EAGAIN => ErrorKind::TryAgain,
                libc::EINVAL => ErrorKind::InvalidInput,
                _ => ErrorKind::Other,
            },
        }
    }

    /// `netelect_strerror(code)`.
    pub fn message(&self) -> &'static str {
        // SAFETY: netelect_strerror never returns NULL and its strings are static.
        unsafe { CStr::from_ptr(sys::netelect_strerror(self.code)) }.to_str().unwrap_or("netelect error")
    }
}

/// Turns a C return value into a `Result`.
#[inline]
pub(crate) fn check(rc: i32) -> Result<(), Error> {
    if rc < 0 {
        Err(Error::from_code(rc))
    } else {
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.code)
            .field("kind", &self.kind())
            .field("message", &self.message())
            .finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use std::io::ErrorKind as K;
        match e.raw_os_error() {
            Some(errno) => std::io::Error::from_raw_os_error(errno),
            None => {
                let kind = match e.kind() {
                    ErrorKind::NoChannel => K::NotFound,
                    ErrorKind::Corrupt | ErrorKind::Version => K::InvalidData,
                    _ => K::Other,
                };
                std::io::Error::new(kind, e)
            }
        }
    }
}
