//! Decoding one captured frame into what a packet table shows (docs/api.md, "Packet capture").
//!
//! Pure code over a byte slice, so every case is a unit test: the link layer (Ethernet, also
//! what loopback gives an AF_PACKET raw socket; raw IP for tun-like interfaces; anything else is
//! "other"), then ARP or IPv4/IPv6, then TCP, UDP, ICMP or ICMPv6, with etherparse's lax slicer,
//! which accepts frames cut short by `snaplen`. The result holds offsets into the frame, not
//! copies: the Lua table is built from the frame later.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// How a frame starts, from the interface's hardware type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// An Ethernet header (Ethernet, and loopback, whose header is all zero addresses).
    Ethernet,
    /// No link header: the frame is an IP packet (tun, some VPN and PPP interfaces).
    RawIp,
    /// A link layer we do not decode.
    Other,
}

/// `p.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Arp,
    /// IPv4 carrying something else (or a fragment after the first).
    Ipv4,
    /// IPv6 carrying something else.
    Ipv6,
    Other,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Icmp => "ICMP",
            Proto::Icmpv6 => "ICMPv6",
            Proto::Arp => "ARP",
            Proto::Ipv4 => "IPv4",
            Proto::Ipv6 => "IPv6",
            Proto::Other => "other",
        }
    }
}

/// What one frame says, as offsets into the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub protocol: Proto,
    /// 4 or 6 for IP packets.
    pub ip_version: Option<u8>,
    /// The IP protocol number (6 TCP, 17 UDP, ...).
    pub ip_protocol: Option<u8>,
    /// IP addresses (for ARP: the sender's and target's protocol addresses).
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// TCP flag bits (FIN 0x01 ... CWR 0x80, NS 0x100).
    pub tcp_flags: Option<u16>,
    /// ICMP / ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
    /// The transport payload in the frame (what was captured of it).
    pub payload: Option<Range<usize>>,
}

impl Packet {
    fn other() -> Packet {
        Packet {
            protocol: Proto::Other,
            ip_version: None,
            ip_protocol: None,
            src: None,
            dst: None,
            src_port: None,
            dst_port: None,
            tcp_flags: None,
            icmp: None,
            payload: None,
        }
    }
}

/// TCP flag names in header bit order, as `p.flags` lists them.
pub const TCP_FLAGS: [(u16, &str); 9] = [
    (0x001, "FIN"),
    (0x002, "SYN"),
    (0x004, "RST"),
    (0x008, "PSH"),
    (0x010, "ACK"),
    (0x020, "URG"),
    (0x040, "ECE"),
    (0x080, "CWR"),
    (0x100, "NS"),
];

/// `"SYN,ACK"`: the set flags, comma-separated ("" when none).
pub fn flag_names(bits: u16) -> String {
    let mut s = String::new();
    for (bit, name) in TCP_FLAGS {
        if bits & bit != 0 {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(name);
        }
    }
    s
}

/// The byte range of `part` inside `frame` (both slices of the same buffer).
fn range_in(frame: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize).min(frame.len());
    start..(start + part.len()).min(frame.len())
}

/// Decodes one frame.
pub fn parse(link: Link, frame: &[u8]) -> Packet {
    let sliced = match link {
        Link::Ethernet => LaxSlicedPacket::from_ethernet(frame).ok(),
        // A raw IP frame: the version nibble says which.
        Link::RawIp => match frame.first().map(|b| b >> 4) {
            Some(4) => Some(LaxSlicedPacket::from_ether_type(EtherType::IPV4, frame)),
            Some(6) => Some(LaxSlicedPacket::from_ether_type(EtherType::IPV6, frame)),
            _ => None,
        },
        Link::Other => None,
    };
    let Some(sliced) = sliced else { return Packet::other() };
    let mut p = Packet::other();
    match &sliced.net {
        None => return p,
        Some(LaxNetSlice::Arp(arp)) => {
            p.protocol = Proto::Arp;
            // Only IPv4 over ARP has addresses to show.
            let ip = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a)));
            p.src = ip(arp.sender_protocol_addr());
            p.dst = ip(arp.target_protocol_addr());
            return p;
        }
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            p.protocol = Proto::Ipv4;
            p.ip_version = Some(4);
            p.ip_protocol = Some(h.protocol().0);
            p.src = Some(IpAddr::V4(h.source_addr()));
            p.dst = Some(IpAddr::V4(h.destination_addr()));
            p.payload = Some(range_in(frame, v4.payload().payload));
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            p.protocol = Proto::Ipv6;
            p.ip_version = Some(6);
            p.ip_protocol = Some(v6.payload().ip_number.0);
            p.src = Some(IpAddr::V6(h.source_addr()));
            p.dst = Some(IpAddr::V6(h.destination_addr()));
            p.payload = Some(range_in(frame, v6.payload().payload));
        }
    }
    match &sliced.transport {
        None => {}
        Some(TransportSlice::Tcp(tcp)) => {
            p.protocol = Proto::Tcp;
            p.src_port = Some(tcp.source_port());
            p.dst_port = Some(tcp.destination_port());
            let h = tcp.header_slice();
            // Byte 12's low bit is NS, byte 13 holds CWR..FIN.
            p.tcp_flags = Some((u16::from(h[12] & 1) << 8) | u16::from(h[13]));
            p.payload = Some(range_in(frame, tcp.payload()));
        }
        Some(TransportSlice::Udp(udp)) => {
            p.protocol = Proto::Udp;
            p.src_port = Some(udp.source_port());
            p.dst_port = Some(udp.destination_port());
            p.payload = Some(range_in(frame, udp.payload()));
        }
        Some(TransportSlice::Icmpv4(icmp)) => {
            p.protocol = Proto::Icmp;
            p.icmp = Some((icmp.type_u8(), icmp.code_u8()));
            p.payload = Some(range_in(frame, icmp.payload()));
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            p.protocol = Proto::Icmpv6;
            p.icmp = Some((icmp.type_u8(), icmp.code_u8()));
            p.payload = Some(range_in(frame, icmp.payload()));
        }
        // IGMP and the rest stay "IPv4"/"IPv6" with the IP payload.
        Some(TransportSlice::Igmp(_)) => {}
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    // Loopback's Ethernet header has zero addresses.
    const MAC_A: [u8; 6] = [0; 6];
    const MAC_B: [u8; 6] = [0; 6];

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64).udp(5000, 53);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn tcp4(payload: &[u8], syn: bool, ack: bool) -> Vec<u8> {
        let mut b =
            PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(40000, 8080, 1000, 65535);
        if syn {
            b = b.syn();
        }
        if ack {
            b = b.ack(5);
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn udp_over_ethernet() {
        let f = udp4(b"hello");
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Udp);
        assert_eq!(p.ip_version, Some(4));
        assert_eq!(p.ip_protocol, Some(17));
        assert_eq!(p.src, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.dst, Some("127.0.0.2".parse().unwrap()));
        assert_eq!((p.src_port, p.dst_port), (Some(5000), Some(53)));
        assert_eq!(&f[p.payload.unwrap()], b"hello");
        assert_eq!(p.tcp_flags, None);
    }

    #[test]
    fn tcp_flags_and_payload() {
        let f = tcp4(b"", true, false);
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Tcp);
        assert_eq!(flag_names(p.tcp_flags.unwrap()), "SYN");
        assert_eq!(p.payload.clone().map(|r| r.len()), Some(0));
        let f = tcp4(b"GET /", true, true);
        let p = parse(Link::Ethernet, &f);
        assert_eq!(flag_names(p.tcp_flags.unwrap()), "SYN,ACK");
        assert_eq!(&f[p.payload.unwrap()], b"GET /");
        assert_eq!((p.src_port, p.dst_port), (Some(40000), Some(8080)));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = udp4(b"x");
        f.resize(60, 0); // a short frame padded to Ethernet's minimum
        let p = parse(Link::Ethernet, &f);
        assert_eq!(&f[p.payload.unwrap()], b"x");
    }

    #[test]
    fn a_frame_cut_short_keeps_its_headers() {
        let f = udp4(&[7u8; 100]);
        let cut = &f[..14 + 20 + 8 + 10];
        let p = parse(Link::Ethernet, cut);
        assert_eq!(p.protocol, Proto::Udp);
        assert_eq!(p.payload.unwrap().len(), 10);
        // cut inside the IP header: the frame is still "other", nothing panics
        for n in 0..f.len() {
            let _ = parse(Link::Ethernet, &f[..n]);
        }
    }

    #[test]
    fn ipv6_and_icmpv6() {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6([0; 15].iter().chain([1].iter()).copied().collect::<Vec<_>>().try_into().unwrap(), [0xfe; 16], 64)
            .icmpv6_echo_request(1, 2);
        let mut f = Vec::new();
        b.write(&mut f, b"ping").unwrap();
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Icmpv6);
        assert_eq!(p.ip_version, Some(6));
        assert_eq!(p.src, Some("::1".parse().unwrap()));
        assert_eq!(p.icmp, Some((128, 0)));
        assert_eq!(&f[p.payload.unwrap()], b"ping");
    }

    #[test]
    fn icmp_echo() {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9).icmpv4_echo_request(1, 1);
        let mut f = Vec::new();
        b.write(&mut f, b"abc").unwrap();
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Icmp);
        assert_eq!(p.icmp, Some((8, 0)));
        assert_eq!(&f[p.payload.unwrap()], b"abc");
    }

    #[test]
    fn raw_ip_and_unknown_links() {
        let f = udp4(b"tun");
        let p = parse(Link::RawIp, &f[14..]);
        assert_eq!(p.protocol, Proto::Udp);
        assert_eq!(p.dst_port, Some(53));
        assert_eq!(parse(Link::Other, &f).protocol, Proto::Other);
        assert_eq!(parse(Link::RawIp, &[0x50, 1, 2]).protocol, Proto::Other);
        assert_eq!(parse(Link::Ethernet, &[]).protocol, Proto::Other);
    }

    #[test]
    fn arp_request() {
        #[rustfmt::skip]
        let f: Vec<u8> = [
            [0xff; 6].as_slice(), &[2, 0, 0, 0, 0, 1], &[0x08, 0x06],      // Ethernet, ARP
            &[0, 1, 0x08, 0, 6, 4, 0, 1],                                  // Ethernet/IPv4, request
            &[2, 0, 0, 0, 0, 1], &[192, 168, 0, 1],                        // sender
            &[0; 6], &[192, 168, 0, 2],                                    // target
        ].concat();
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Arp);
        assert_eq!(p.src, Some("192.168.0.1".parse().unwrap()));
        assert_eq!(p.dst, Some("192.168.0.2".parse().unwrap()));
        assert_eq!(p.ip_version, None);
    }

    #[test]
    fn other_ip_protocols_keep_the_ip_payload() {
        #[rustfmt::skip]
        let f: Vec<u8> = [
            [0u8; 12].as_slice(), &[0x08, 0x00],
            &[0x45, 0, 0, 24, 0, 0, 0, 0, 64, 47, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], // IPv4, GRE (47)
            &[9, 9, 9, 9],
        ].concat();
        let p = parse(Link::Ethernet, &f);
        assert_eq!(p.protocol, Proto::Ipv4);
        assert_eq!(p.ip_protocol, Some(47));
        assert_eq!(&f[p.payload.unwrap()], &[9, 9, 9, 9]);
        assert_eq!(p.src_port, None);
    }
}
