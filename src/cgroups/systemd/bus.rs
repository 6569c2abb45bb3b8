//! A blocking D-Bus connection over a unix socket: SASL EXTERNAL authentication, `Hello`,
//! method calls that wait for their reply, and signals kept for whoever asks for them.
//!
//! It is a client for one purpose (systemd's manager on the system bus, or a user's bus for
//! rootless containers), written here rather than taken from zbus: the wire format is small
//! (`wire.rs`), the runtime stays single-threaded and synchronous, and the static binary
//! does not carry an async executor.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::wire::{Decoder, Encoder, Value};

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;

/// The largest message the specification allows (128 MiB); systemd's are tiny.
const MAX_MESSAGE: usize = 128 << 20;

/// A received message, as much as a client needs of it.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: u8,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub body: Vec<Value>,
}

/// Which systemd a container's unit goes to: the system's, or (rootless) the calling user's
/// own manager on the user's session bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Which {
    #[default]
    System,
    User,
}

/// The bus socket to reach `which` systemd, and the uid to authenticate as.
pub fn address(which: Which) -> Result<(PathBuf, u32)> {
    let euid = nix::unistd::geteuid().as_raw();
    match which {
        Which::System => Ok((system_bus_path(), euid)),
        Which::User => {
            let path = user_bus_path().context(
                "rootless --systemd-cgroup needs the user's D-Bus session bus: set \
                 DBUS_SESSION_BUS_ADDRESS (unix:path=...) or XDG_RUNTIME_DIR (whose `bus` \
                 socket dbus-user-session provides)",
            )?;
            // The bus sees us as the kernel reports our credentials in its own namespace:
            // in a user namespace (rootless podman runs the runtime as root of one) that
            // is the uid our euid maps to, not the euid itself.
            Ok((path, crate::host::outer_uid(euid)))
        }
    }
}

/// The system bus socket: `$DBUS_SYSTEM_BUS_ADDRESS` (its `unix:path=` form), else the
/// well-known path.
pub fn system_bus_path() -> PathBuf {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| unix_path(&a))
        .unwrap_or_else(|| PathBuf::from("/run/dbus/system_bus_socket"))
}

/// The user's session bus socket: `$DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`
/// (where systemd's user manager with dbus-user-session listens); runc looks there too.
pub fn user_bus_path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    env("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| unix_path(&a))
        .or_else(|| env("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("bus")))
}

/// The `path` of the first `unix:path=...` address in a D-Bus address list.
pub fn unix_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|a| {
        let rest = a.strip_prefix("unix:")?;
        rest.split(',')
            .find_map(|kv| kv.strip_prefix("path="))
            .map(PathBuf::from)
    })
}

#[derive(Debug)]
pub struct Bus {
    sock: UnixStream,
    serial: u32,
    /// Signals that arrived while a reply was awaited.
    pending: Vec<Message>,
    /// Bytes read past the end of the last message.
    inbuf: Vec<u8>,
    timeout: Duration,
}

impl Bus {
    /// Connects to the bus at `path`, authenticates as `uid` and says Hello. Every later
    /// wait is bounded by `timeout`.
    pub fn connect(path: &Path, uid: u32, timeout: Duration) -> Result<Bus> {
        let sock = UnixStream::connect(path)
            .with_context(|| format!("connecting to the D-Bus socket {}", path.display()))?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let mut bus = Bus {
            sock,
            serial: 0,
            pending: Vec::new(),
            inbuf: Vec::new(),
            timeout,
        };
        bus.authenticate(uid)
            .with_context(|| format!("authenticating on the D-Bus socket {}", path.display()))?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        Ok(bus)
    }

    fn authenticate(&mut self, uid: u32) -> Result<()> {
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.sock.write_all(b"\0")?;
        self.sock
            .write_all(format!("AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line()?;
        ensure!(line.starts_with("OK "), "the bus refused us: {line:?}");
        self.sock.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            ensure!(line.len() < 4096, "overlong line from the bus");
            let n = self.sock.read(&mut b).context("reading from the bus")?;
            ensure!(n == 1, "the bus closed the connection");
            line.push(b[0]);
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls a method and returns its reply's body; a D-Bus error becomes an `Err` naming it.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>> {
        let serial = self.send(destination, path, interface, member, args)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.receive(deadline)?;
            match (m.kind, m.reply_serial) {
                (METHOD_RETURN, Some(s)) if s == serial => return Ok(m.body),
                (ERROR, Some(s)) if s == serial => {
                    let text = m.body.first().and_then(Value::as_str).unwrap_or("");
                    bail!(
                        "{interface}.{member}: {}: {text}",
                        m.error_name.as_deref().unwrap_or("error")
                    )
                }
                (SIGNAL, _) => self.pending.push(m),
                _ => {}
            }
        }
    }

    /// Waits for a signal `interface.member` whose body satisfies `want`, taking those that
    /// arrived earlier first; fails once `deadline` passes.
    pub fn wait_signal(
        &mut self,
        interface: &str,
        member: &str,
        deadline: Instant,
        mut want: impl FnMut(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let matches = |m: &Message, want: &mut dyn FnMut(&[Value]) -> bool| {
            m.kind == SIGNAL
                && m.interface.as_deref() == Some(interface)
                && m.member.as_deref() == Some(member)
                && want(&m.body)
        };
        if let Some(i) = self.pending.iter().position(|m| matches(m, &mut want)) {
            return Ok(self.pending.remove(i).body);
        }
        loop {
            let m = self.receive(deadline)?;
            if matches(&m, &mut want) {
                return Ok(m.body);
            }
        }
    }

    fn send(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<u32> {
        self.serial += 1;
        let sig: String = args.iter().map(Value::signature).collect();
        let mut body = Encoder::default();
        for a in args {
            body.value(a)?;
        }
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
        let mut fields = vec![
            field(FIELD_PATH, Value::Path(path.into())),
            field(FIELD_INTERFACE, Value::str(interface)),
            field(FIELD_MEMBER, Value::str(member)),
            field(FIELD_DESTINATION, Value::str(destination)),
        ];
        if !sig.is_empty() {
            fields.push(field(FIELD_SIGNATURE, Value::Sig(sig)));
        }
        let mut msg = Encoder::default();
        msg.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        msg.buf
            .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
        msg.buf.extend_from_slice(&self.serial.to_le_bytes());
        msg.value(&Value::Array("(yv)".into(), fields))?;
        msg.pad(8);
        msg.buf.extend_from_slice(&body.buf);
        self.sock
            .write_all(&msg.buf)
            .with_context(|| format!("sending {interface}.{member} on the bus"))?;
        Ok(self.serial)
    }

    /// Reads one whole message.
    fn receive(&mut self, deadline: Instant) -> Result<Message> {
        loop {
            if let Some(len) = complete_length(&self.inbuf)? {
                let rest = self.inbuf.split_off(len);
                let whole = std::mem::replace(&mut self.inbuf, rest);
                return parse(&whole);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "timed out waiting for the bus");
            self.sock.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 8192];
            let n = match self.sock.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    bail!("timed out waiting for the bus")
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading from the bus"),
            };
            ensure!(n > 0, "the bus closed the connection");
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The total length of the message at the start of `buf` once all of it is there.
fn complete_length(buf: &[u8]) -> Result<Option<usize>> {
    if buf.len() < 16 {
        return Ok(None);
    }
    ensure!(
        buf[0] == b'l',
        "big-endian D-Bus messages are not supported"
    );
    let body = u32::from_le_bytes(buf[4..8].try_into()?) as usize;
    let fields = u32::from_le_bytes(buf[12..16].try_into()?) as usize;
    let header = (16 + fields).div_ceil(8) * 8;
    let total = header.checked_add(body).context("D-Bus length overflow")?;
    ensure!(
        total <= MAX_MESSAGE,
        "D-Bus message of {total} bytes is too large"
    );
    Ok((buf.len() >= total).then_some(total))
}

fn parse(buf: &[u8]) -> Result<Message> {
    let mut d = Decoder::new(buf, 12);
    let Value::Array(_, fields) = d.value("a(yv)")? else {
        unreachable!("decoded as an array")
    };
    let mut m = Message {
        kind: buf[1],
        path: None,
        interface: None,
        member: None,
        error_name: None,
        reply_serial: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in &fields {
        let Value::Struct(kv) = f else { continue };
        let (Some(Value::Byte(code)), Some(v)) = (kv.first(), kv.get(1)) else {
            continue;
        };
        let v = v.unvariant();
        let s = v.as_str().map(str::to_string);
        match *code {
            FIELD_PATH => m.path = s,
            FIELD_INTERFACE => m.interface = s,
            FIELD_MEMBER => m.member = s,
            FIELD_ERROR_NAME => m.error_name = s,
            FIELD_REPLY_SERIAL => m.reply_serial = v.as_u32(),
            FIELD_SIGNATURE => sig = s.unwrap_or_default(),
            _ => {}
        }
    }
    d.align(8)?;
    m.body = d.values(&sig).context("decoding a D-Bus message body")?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_unix_path() {
        assert_eq!(
            unix_path("unix:path=/run/dbus/system_bus_socket"),
            Some(PathBuf::from("/run/dbus/system_bus_socket"))
        );
        assert_eq!(
            unix_path("tcp:host=x;unix:guid=1,path=/tmp/b"),
            Some(PathBuf::from("/tmp/b"))
        );
        assert_eq!(unix_path("unix:abstract=/tmp/x"), None);
    }

    /// A real dbus-daemon (Debian's `dbus` package) when there is one: Hello, a method with
    /// arguments and a reply, an error reply, and a signal we subscribed to.
    #[test]
    fn talks_to_a_real_dbus_daemon() {
        let Some(daemon) = TestDaemon::start() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "dbus-daemon is not installed (Debian package dbus)"
            );
            eprintln!("SKIP: dbus-daemon is not installed");
            return;
        };
        let mut bus = Bus::connect(
            &daemon.socket,
            nix::unistd::geteuid().as_raw(),
            Duration::from_secs(5),
        )
        .unwrap();
        let dbus = (
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
        );
        let names = bus.call(dbus.0, dbus.1, dbus.2, "ListNames", &[]).unwrap();
        let Value::Array(_, names) = &names[0] else {
            panic!("{names:?}")
        };
        assert!(names
            .iter()
            .any(|n| n.as_str() == Some("org.freedesktop.DBus")));
        let err = bus
            .call(
                dbus.0,
                dbus.1,
                dbus.2,
                "GetNameOwner",
                &[Value::str("no.such.name")],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("NameHasNoOwner"), "{err}");
        // NameOwnerChanged arrives when another client connects.
        bus.call(
            dbus.0,
            dbus.1,
            dbus.2,
            "AddMatch",
            &[Value::str("type='signal',member='NameOwnerChanged'")],
        )
        .unwrap();
        let _other = Bus::connect(
            &daemon.socket,
            nix::unistd::geteuid().as_raw(),
            Duration::from_secs(5),
        )
        .unwrap();
        let body = bus
            .wait_signal(
                dbus.2,
                "NameOwnerChanged",
                Instant::now() + Duration::from_secs(5),
                |b| {
                    b.first()
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.starts_with(':'))
                },
            )
            .unwrap();
        assert_eq!(body.len(), 3);
    }

    struct TestDaemon {
        child: std::process::Child,
        dir: PathBuf,
        socket: PathBuf,
    }

    impl TestDaemon {
        fn start() -> Option<TestDaemon> {
            let exe = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]
                .into_iter()
                .find(|p| Path::new(p).exists())?;
            let dir = std::env::temp_dir().join(format!("skiff-dbus-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let socket = dir.join("bus");
            let child = std::process::Command::new(exe)
                .args(["--session", "--nofork", "--nopidfile"])
                .arg(format!("--address=unix:path={}", socket.display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            let t = Instant::now();
            while !socket.exists() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
            Some(TestDaemon { child, dir, socket })
        }
    }

    impl Drop for TestDaemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
