//! The Linux packet socket under `net.capture` (docs/internals.md, "Packet capture"): an
//! `AF_PACKET`/`SOCK_RAW` socket bound to one interface (or all), non-blocking, with kernel
//! receive timestamps, a receive buffer that bounds what waits in the kernel, and the kernel's
//! counters of received and dropped packets. The system calls are here; nothing here knows Lua.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Kind, NResult, NetError};

/// One frame read from the socket: where it came from, how long it was, when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Bytes copied into the buffer (at most the buffer's length: `snaplen`).
    pub caplen: usize,
    /// The frame's length on the wire.
    pub size: usize,
    /// Kernel receive time, seconds since the Unix epoch.
    pub time: f64,
    pub ifindex: i32,
    /// `PACKET_HOST`, `PACKET_OUTGOING`, ... (linux/if_packet.h).
    pub pkttype: u8,
    /// The interface's hardware type (`ARPHRD_ETHER`, `ARPHRD_LOOPBACK`, ...).
    pub hatype: u16,
}

/// `ETH_P_ALL` in network byte order, as `sockaddr_ll.sll_protocol` wants it.
fn all_protocols() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of the size passed.
    let r = unsafe { libc::setsockopt(fd, level, name, (v as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The index of a network interface by name (`None`: no such interface).
pub fn ifindex(name: &str) -> Option<i32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as i32)
}

/// The name of a network interface by index (it may have gone since the packet came).
pub fn ifname(index: i32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname writes at most.
    let p = unsafe { libc::if_indextoname(index as libc::c_uint, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Opens the socket. `ifindex` 0 captures on every interface. The socket is made with protocol
/// 0, which receives nothing, and gets `ETH_P_ALL` only when it is bound: so no packet of another
/// interface slips in between `socket()` and `bind()`.
pub fn open(iface: &str, ifindex: i32, promiscuous: bool, recvbuf: usize) -> NResult<OwnedFd> {
    let sock = socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::RAW, None).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
            NetError::new(
                Kind::Permission,
                format!("packet capture needs root or CAP_NET_RAW (socket: {})", crate::error::describe(&e)),
            )
        } else {
            NetError::io("open capture on", iface, &e)
        }
    })?;
    let fd = sock.as_raw_fd();
    let fail = |what: &str, e: io::Error| NetError::io(&format!("capture on {iface}: {what}"), "", &e);
    // The buffer bounds what waits in the kernel while Lua is busy: past it the kernel drops
    // (counted in stats). SO_RCVBUFFORCE may exceed net.core.rmem_max but needs CAP_NET_ADMIN;
    // without it the size is capped at rmem_max.
    let size = recvbuf.min(i32::MAX as usize) as libc::c_int;
    if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
        sock.set_recv_buffer_size(recvbuf).map_err(|e| fail("set the receive buffer", e))?;
    }
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &(1 as libc::c_int))
        .map_err(|e| fail("turn on timestamps", e))?;
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = all_protocols();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a live sockaddr_ll and its size is passed.
    let r = unsafe {
        libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    };
    if r != 0 {
        return Err(fail("bind", io::Error::last_os_error()));
    }
    if promiscuous {
        // SAFETY: an all-zero packet_mreq is valid.
        let mut mr: libc::packet_mreq = unsafe { zeroed() };
        mr.mr_ifindex = ifindex;
        mr.mr_type = libc::PACKET_MR_PROMISC as u16;
        // The membership ends when the socket is closed: the interface leaves promiscuous mode
        // (unless someone else asked for it too; the kernel counts).
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mr)
            .map_err(|e| fail("turn on promiscuous mode", e))?;
    }
    sock.set_nonblocking(true).map_err(|e| fail("set non-blocking", e))?;
    Ok(sock.into())
}

/// Reads one frame into `buf` without waiting (`WouldBlock` when none is queued).
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<Frame> {
    // SAFETY: all-zero sockaddr_ll, msghdr and the control buffer are valid starting values.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    let mut control = [0u64; 8]; // room for one timespec control message, 8-byte aligned
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // MSG_TRUNC: a packet socket then returns the frame's real length even when it was cut.
    // SAFETY: every pointer in `msg` points to a live buffer of the length given with it.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let size = n as usize;
    let mut time = None;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                time = Some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let time = time.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    });
    Ok(Frame {
        caplen: size.min(buf.len()),
        size,
        time,
        ifindex: sll.sll_ifindex,
        pkttype: sll.sll_pkttype,
        hatype: sll.sll_hatype,
    })
}

/// The kernel's counters since the last call (reading resets them): packets it queued for this
/// socket, dropped ones included, and those dropped because the receive buffer was full.
pub fn take_stats(fd: RawFd) -> io::Result<(u64, u64)> {
    // SAFETY: an all-zero tpacket_stats is valid.
    let mut st: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live and `len` is `st`'s size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((u64::from(st.tp_packets), u64::from(st.tp_drops)))
}
