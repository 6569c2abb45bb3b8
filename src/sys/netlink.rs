//! A minimal rtnetlink client: just enough RTM_NEWLINK to take an interface down, move it
//! into another network namespace under a new name (in one request, so the name can never
//! clash in between), and bring it up there.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const RT_SCOPE_UNIVERSE: u8 = 0;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_ACK: u16 = 0x04;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFF_UP: u32 = 0x1;

/// A NETLINK_ROUTE socket, bound in the network namespace it was created in.
#[derive(Debug)]
pub struct Route {
    fd: OwnedFd,
    seq: u32,
}

/// An interface address, as much of it as moving it to another namespace needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub scope: u8,
    pub flags: u32,
    /// (IFA_* type, raw value) of IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST.
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Addr {
    /// Configured by hand (permanent) with global scope: the ones worth carrying over.
    pub fn is_permanent_global(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == RT_SCOPE_UNIVERSE
    }
}

/// How a request names the interface.
#[derive(Debug, Clone, Copy)]
pub enum Link<'a> {
    Index(i32),
    Name(&'a str),
}

impl Route {
    pub fn open() -> io::Result<Route> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Route { fd, seq: 0 })
    }

    /// A socket in the network namespace `netns` (entered just to create it, then left).
    pub fn open_in(netns: BorrowedFd<'_>) -> io::Result<Route> {
        use nix::sched::{setns, CloneFlags};
        let own = std::fs::File::open("/proc/self/ns/net")?;
        setns(netns, CloneFlags::CLONE_NEWNET)?;
        let r = Route::open();
        setns(own.as_fd(), CloneFlags::CLONE_NEWNET)?;
        r
    }

    /// Sets or clears IFF_UP.
    pub fn set_up(&mut self, link: Link<'_>, up: bool) -> io::Result<()> {
        let mut attrs = Vec::new();
        let index = match link {
            Link::Index(i) => i,
            Link::Name(n) => {
                attr(&mut attrs, IFLA_IFNAME, &name_bytes(n));
                0
            }
        };
        let flags = if up { IFF_UP } else { 0 };
        self.newlink(index, flags, IFF_UP, &attrs)
    }

    /// Moves interface `index` into the namespace `netns`, renaming it to `name`.
    pub fn move_to(&mut self, index: i32, netns: BorrowedFd<'_>, name: &str) -> io::Result<()> {
        let mut attrs = Vec::new();
        attr(&mut attrs, IFLA_IFNAME, &name_bytes(name));
        attr(
            &mut attrs,
            IFLA_NET_NS_FD,
            &(netns.as_raw_fd() as u32).to_ne_bytes(),
        );
        self.newlink(index, 0, 0, &attrs)
    }

    /// The index of interface `name` in this socket's namespace.
    pub fn index_of(&mut self, name: &str) -> io::Result<i32> {
        let mut body = vec![0u8; 16];
        body[0] = libc::AF_UNSPEC as u8;
        attr(&mut body, IFLA_IFNAME, &name_bytes(name));
        let mut index = None;
        self.transact(RTM_GETLINK, &body, |typ, payload| {
            if typ == RTM_NEWLINK && payload.len() >= 8 {
                index = Some(i32::from_ne_bytes(payload[4..8].try_into().unwrap()));
            }
        })?;
        index.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Every address of interface `index`.
    pub fn addresses(&mut self, index: i32) -> io::Result<Vec<Addr>> {
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        let body = [libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        self.transact_flags(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &body, |typ, p| {
            if typ != RTM_NEWADDR || p.len() < 8 {
                return;
            }
            if u32::from_ne_bytes(p[4..8].try_into().unwrap()) as i32 != index {
                return;
            }
            let mut a = Addr {
                family: p[0],
                prefixlen: p[1],
                scope: p[3],
                flags: p[2] as u32,
                attrs: Vec::new(),
            };
            let mut off = 8;
            while off + 4 <= p.len() {
                let len = u16::from_ne_bytes(p[off..off + 2].try_into().unwrap()) as usize;
                let typ = u16::from_ne_bytes(p[off + 2..off + 4].try_into().unwrap());
                if len < 4 || off + len > p.len() {
                    break;
                }
                let data = &p[off + 4..off + len];
                match typ {
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((typ, data.to_vec())),
                    IFA_FLAGS if data.len() >= 4 => {
                        a.flags = u32::from_ne_bytes(data[..4].try_into().unwrap())
                    }
                    _ => {}
                }
                off += (len + 3) & !3;
            }
            out.push(a);
        })?;
        Ok(out)
    }

    /// Adds `addr` to interface `index`.
    pub fn add_address(&mut self, index: i32, addr: &Addr) -> io::Result<()> {
        let mut body = vec![addr.family, addr.prefixlen, 0, addr.scope];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (typ, data) in &addr.attrs {
            attr(&mut body, *typ, data);
        }
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        self.transact_flags(RTM_NEWADDR, flags, &body, |_, _| {})
    }

    fn newlink(&mut self, index: i32, flags: u32, change: u32, attrs: &[u8]) -> io::Result<()> {
        // struct ifinfomsg: family, pad, type, index, flags, change.
        let mut body = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        body.extend_from_slice(&flags.to_ne_bytes());
        body.extend_from_slice(&change.to_ne_bytes());
        body.extend_from_slice(attrs);
        self.request(RTM_NEWLINK, &body)
    }

    /// Sends one request and waits for its acknowledgement (or error).
    fn request(&mut self, typ: u16, body: &[u8]) -> io::Result<()> {
        self.transact(typ, body, |_, _| {})
    }

    /// Sends one request; every reply message before the acknowledgement goes to `reply`
    /// as (type, payload after the header).
    fn transact(&mut self, typ: u16, body: &[u8], reply: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.transact_flags(typ, NLM_F_REQUEST | NLM_F_ACK, body, reply)
    }

    /// The same with explicit flags; a dump ends with NLMSG_DONE instead of an ack.
    fn transact_flags(
        &mut self,
        typ: u16,
        flags: u16,
        body: &[u8],
        mut reply: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        self.seq += 1;
        let len = 16 + body.len() as u32;
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut off = 0;
            while off + 16 <= n {
                let h = &buf[off..];
                let mlen = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as usize;
                let mtyp = u16::from_ne_bytes(h[4..6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(h[8..12].try_into().unwrap());
                if mlen < 16 || off + mlen > n {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink reply",
                    ));
                }
                if mseq == self.seq {
                    if mtyp == NLMSG_DONE {
                        return Ok(());
                    }
                    if mtyp == NLMSG_ERROR && mlen >= 20 {
                        let err = i32::from_ne_bytes(h[16..20].try_into().unwrap());
                        return if err == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(-err))
                        };
                    }
                    reply(mtyp, &h[16..mlen]);
                }
                off += (mlen + 3) & !3;
            }
        }
    }
}

fn name_bytes(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

/// Appends one rtattr (length, type, data, padding to 4 bytes).
fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len() as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_are_padded() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, &name_bytes("eth0"));
        assert_eq!(b.len(), 12);
        assert_eq!(&b[0..2], &9u16.to_ne_bytes());
        assert_eq!(&b[4..9], b"eth0\0");
    }
}
