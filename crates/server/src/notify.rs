//! The systemd service notification protocol (sd_notify(3)) in the few lines it takes:
//! one datagram per state to the Unix socket that `NOTIFY_SOCKET` names (a path, or an
//! abstract name written with a leading `@`). Without `NOTIFY_SOCKET` (not started by
//! systemd with `Type=notify`) every call does nothing.
//!
//! `postfach serve` says `READY=1` once every listener is bound, `WATCHDOG=1` every half
//! `WATCHDOG_USEC` from a task on its runtime (so a stuck runtime stops the pings and
//! systemd restarts the service), and `STOPPING=1` when a stop signal arrives.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where the service manager listens, if it does.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// The socket named by `NOTIFY_SOCKET`; a name that cannot be used is logged once and
    /// the notifier stays silent.
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else { return Notifier { target: None } };
        match open(&name) {
            Ok(target) => Notifier { target: Some(target) },
            Err(e) => {
                tracing::warn!(error = %e, socket = %name.to_string_lossy(), "cannot use NOTIFY_SOCKET; systemd is not told about readiness");
                Notifier { target: None }
            }
        }
    }

    /// Every listener is bound and serving.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// The service is shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// The service is alive (for `WatchdogSec=`).
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send [`Notifier::watchdog`]: half of `WATCHDOG_USEC`, when the watchdog
    /// is on for this process (`WATCHDOG_PID` unset or ours) and there is a socket.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        let pid = std::env::var("WATCHDOG_PID").ok();
        let usec = std::env::var("WATCHDOG_USEC").ok();
        watchdog_interval(pid.as_deref(), usec.as_deref(), std::process::id())
    }

    /// Sends one state; never blocks (a full queue loses the datagram, with a warning).
    fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.target else { return };
        if let Err(e) = socket.send_to_addr(state.as_bytes(), addr) {
            tracing::warn!(error = %e, state, "cannot notify systemd");
        }
    }
}

fn open(name: &OsStr) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = address(name)?;
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

/// `@name` is an abstract socket, `/path` a socket file (sd_notify(3)).
fn address(name: &OsStr) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match name.as_bytes().split_first() {
        Some((b'@', abstract_name)) => SocketAddr::from_abstract_name(abstract_name),
        Some((b'/', _)) => SocketAddr::from_pathname(name),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "neither an absolute path nor an @abstract name")),
    }
}

/// Half the watchdog timeout, when `WATCHDOG_USEC` holds one for process `own_pid`.
fn watchdog_interval(pid: Option<&str>, usec: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&n| n > 0)?;
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_process_only() {
        assert_eq!(watchdog_interval(None, Some("10000000"), 7), Some(Duration::from_secs(5)));
        assert_eq!(watchdog_interval(Some("7"), Some("10000000"), 7), Some(Duration::from_secs(5)));
        assert_eq!(watchdog_interval(Some("8"), Some("10000000"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(None, Some("0"), 7), None);
        assert_eq!(watchdog_interval(None, Some("soon"), 7), None);
    }

    #[test]
    fn socket_names_are_paths_or_abstract() {
        use std::os::linux::net::SocketAddrExt;
        let abstract_addr = address(OsStr::new("@postfach/notify")).expect("abstract");
        assert_eq!(abstract_addr.as_abstract_name(), Some(&b"postfach/notify"[..]));
        let path = address(OsStr::new("/run/systemd/notify")).expect("path");
        assert_eq!(path.as_pathname(), Some(std::path::Path::new("/run/systemd/notify")));
        assert!(address(OsStr::new("relative")).is_err());
        assert!(address(OsStr::new("")).is_err());
    }
}
