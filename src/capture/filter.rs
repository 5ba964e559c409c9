//! Capture filters: a small tcpdump-style language (`"tcp port 80"`, `"udp and not port 53"`,
//! `"host 127.0.0.1"`) parsed once at `net.capture.open` into a tree that is tested against each
//! decoded packet in Rust, before any Lua table is made (docs/api.md, "Packet capture").
//!
//! Grammar (words are case-insensitive):
//! ```text
//! expr  := and (("or" | "||") and)*
//! and   := unary (("and" | "&&") unary)*
//! unary := ("not" | "!") unary | "(" expr ")" | prim
//! prim  := proto [qual] | qual | value          proto: tcp udp icmp icmp6 arp ip ip6
//! qual  := ["src" | "dst"] ("port" NUMBER | "host" ADDRESS)
//! ```
//! A bare value repeats the last qualifier, as in tcpdump: `"port 80 or 443"`.

use std::net::IpAddr;

use super::parse::{Packet, Proto};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Matches everything (an empty filter).
    All,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
    Arp,
    Ip,
    Ip6,
    Port(Dir, u16),
    Host(Dir, IpAddr),
    Not(Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    pub fn matches(&self, p: &Packet) -> bool {
        fn dir<T: PartialEq>(d: Dir, src: Option<T>, dst: Option<T>, want: T) -> bool {
            let is = |v: Option<T>| v.is_some_and(|v| v == want);
            match d {
                Dir::Src => is(src),
                Dir::Dst => is(dst),
                Dir::Either => is(src) || is(dst),
            }
        }
        match self {
            Filter::All => true,
            Filter::Tcp => p.protocol == Proto::Tcp,
            Filter::Udp => p.protocol == Proto::Udp,
            Filter::Icmp => p.protocol == Proto::Icmp,
            Filter::Icmp6 => p.protocol == Proto::Icmpv6,
            Filter::Arp => p.protocol == Proto::Arp,
            Filter::Ip => p.ip_version == Some(4),
            Filter::Ip6 => p.ip_version == Some(6),
            Filter::Port(d, n) => dir(*d, p.src_port, p.dst_port, *n),
            Filter::Host(d, a) => dir(*d, p.src, p.dst, *a),
            Filter::Not(f) => !f.matches(p),
            Filter::And(a, b) => a.matches(p) && b.matches(p),
            Filter::Or(a, b) => a.matches(p) || b.matches(p),
        }
    }
}

/// Parses a filter; the error says what is wrong and where (`invalid filter "tcp prot 80":
/// unknown word "prot"`).
pub fn compile(src: &str) -> Result<Filter, String> {
    let tokens = tokenize(src);
    if tokens.is_empty() {
        return Ok(Filter::All);
    }
    let mut p = Parser { tokens, at: 0, last: None };
    let f = p.expr().and_then(|f| match p.peek() {
        None => Ok(f),
        Some(t) if t == ")" => Err("unbalanced \")\"".to_string()),
        Some(t) => Err(format!("unexpected \"{t}\" (join conditions with and / or)")),
    });
    f.map_err(|why| format!("invalid filter \"{src}\": {why}"))
}

/// Words, with `(`, `)` and `!` split off even when written without spaces.
fn tokenize(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in src.chars() {
        if c.is_whitespace() || c == '(' || c == ')' || (c == '!' && word.is_empty()) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// What a bare value after `and`/`or` stands for: the last `port` or `host` qualifier.
#[derive(Clone, Copy)]
enum Qual {
    Port(Dir),
    Host(Dir),
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
    last: Option<Qual>,
}

impl Parser {
    fn peek(&self) -> Option<String> {
        self.tokens.get(self.at).map(|t| t.to_ascii_lowercase())
    }

    fn next(&mut self) -> Option<String> {
        let t = self.peek();
        self.at += 1;
        t
    }

    fn raw(&self, i: usize) -> &str {
        self.tokens.get(i).map(String::as_str).unwrap_or("")
    }

    fn expr(&mut self) -> Result<Filter, String> {
        let mut f = self.and()?;
        while matches!(self.peek().as_deref(), Some("or" | "||")) {
            self.at += 1;
            f = Filter::Or(Box::new(f), Box::new(self.and()?));
        }
        Ok(f)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut f = self.unary()?;
        while matches!(self.peek().as_deref(), Some("and" | "&&")) {
            self.at += 1;
            f = Filter::And(Box::new(f), Box::new(self.unary()?));
        }
        Ok(f)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        match self.peek().as_deref() {
            Some("not" | "!") => {
                self.at += 1;
                Ok(Filter::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.at += 1;
                let f = self.expr()?;
                match self.next().as_deref() {
                    Some(")") => Ok(f),
                    _ => Err("\")\" expected".into()),
                }
            }
            Some(_) => self.prim(),
            None => Err("a condition expected at the end".into()),
        }
    }

    fn prim(&mut self) -> Result<Filter, String> {
        let word = self.peek().unwrap_or_default();
        let proto = match word.as_str() {
            "tcp" => Some(Filter::Tcp),
            "udp" => Some(Filter::Udp),
            "icmp" => Some(Filter::Icmp),
            "icmp6" => Some(Filter::Icmp6),
            "arp" => Some(Filter::Arp),
            "ip" => Some(Filter::Ip),
            "ip6" => Some(Filter::Ip6),
            _ => None,
        };
        if let Some(proto) = proto {
            self.at += 1;
            return match self.peek().as_deref() {
                Some("src" | "dst" | "port" | "host") => Ok(Filter::And(Box::new(proto), Box::new(self.qual()?))),
                _ => Ok(proto),
            };
        }
        match word.as_str() {
            "src" | "dst" | "port" | "host" => self.qual(),
            _ => match self.last {
                // tcpdump's shorthand: "port 80 or 443", "host a or b"
                Some(q) if word.chars().next().is_some_and(|c| c.is_ascii_hexdigit() || c == ':') => self.value(q),
                _ => Err(format!("unknown word \"{}\"", self.raw(self.at))),
            },
        }
    }

    fn qual(&mut self) -> Result<Filter, String> {
        let dir = match self.peek().as_deref() {
            Some("src") => Dir::Src,
            Some("dst") => Dir::Dst,
            _ => Dir::Either,
        };
        if dir != Dir::Either {
            self.at += 1;
        }
        let q = match self.next().as_deref() {
            Some("port") => Qual::Port(dir),
            Some("host") => Qual::Host(dir),
            _ => {
                return Err(format!("\"port\" or \"host\" expected after \"{}\", got \"{}\"", self.raw(self.at - 2), {
                    self.raw(self.at - 1)
                }))
            }
        };
        self.last = Some(q);
        self.value(q)
    }

    fn value(&mut self, q: Qual) -> Result<Filter, String> {
        let v = self.raw(self.at).to_string();
        self.at += 1;
        match q {
            Qual::Port(d) => match v.parse::<u16>() {
                Ok(n) => Ok(Filter::Port(d, n)),
                Err(_) if v.is_empty() => Err("a port number expected after \"port\"".into()),
                Err(_) => Err(format!("a port number (0-65535) expected, got \"{v}\"")),
            },
            Qual::Host(d) => match v.parse::<IpAddr>() {
                Ok(a) => Ok(Filter::Host(d, a)),
                Err(_) if v.is_empty() => Err("an IP address expected after \"host\"".into()),
                Err(_) => Err(format!("an IP address expected, got \"{v}\" (host names are not resolved)")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse, Link};
    use super::*;
    use etherparse::PacketBuilder;

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Packet {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4(src, dst, 64).udp(sport, dport).write(&mut v, b"x").unwrap();
        parse(Link::Ethernet, &v)
    }

    fn tcp(sport: u16, dport: u16) -> Packet {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(sport, dport, 1, 100)
            .write(&mut v, b"")
            .unwrap();
        parse(Link::Ethernet, &v)
    }

    fn m(f: &str, p: &Packet) -> bool {
        compile(f).unwrap().matches(p)
    }

    #[test]
    fn protocols_ports_hosts() {
        let u = udp([127, 0, 0, 1], 5000, [127, 0, 0, 2], 53);
        let t = tcp(40000, 80);
        assert!(m("udp", &u) && !m("udp", &t));
        assert!(m("tcp", &t) && !m("tcp", &u));
        assert!(m("ip", &u) && !m("ip6", &u));
        assert!(m("port 53", &u) && m("port 5000", &u) && !m("port 80", &u));
        assert!(m("tcp port 80", &t) && !m("udp port 80", &t));
        assert!(m("dst port 53", &u) && !m("src port 53", &u));
        assert!(m("host 127.0.0.2", &u) && m("src host 127.0.0.1", &u) && !m("dst host 127.0.0.1", &u));
        assert!(m("udp and port 53", &u) && !m("udp and port 54", &u));
        assert!(m("tcp or udp", &u) && m("TCP || UDP", &t));
        assert!(m("not tcp", &u) && m("!tcp", &u) && !m("!udp", &u));
        assert!(m("udp and (port 1 or port 53)", &u) && !m("udp and (port 1 or port 2)", &u));
        assert!(m("port 1 or 53", &u) && !m("port 1 or 2", &u));
        assert!(m("", &u) && m("   ", &t));
        assert!(m("tcp dst port 80", &t) && !m("tcp src port 80", &t));
    }

    #[test]
    fn precedence_and_binds_tighter_than_or() {
        let u = udp([1, 1, 1, 1], 1, [2, 2, 2, 2], 2);
        assert!(m("tcp and port 9 or udp", &u));
        assert!(!m("tcp and (port 9 or udp)", &u));
        assert!(m("not tcp and udp", &u));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |f: &str| compile(f).unwrap_err();
        assert_eq!(
            e("tcp prot 80"),
            "invalid filter \"tcp prot 80\": unexpected \"prot\" (join conditions with and / or)"
        );
        assert_eq!(e("bogus"), "invalid filter \"bogus\": unknown word \"bogus\"");
        assert!(e("port").contains("a port number expected"));
        assert!(e("port 99999").contains("port number (0-65535) expected, got \"99999\""));
        assert!(e("host example.com").contains("host names are not resolved"));
        assert!(e("tcp and").contains("a condition expected"));
        assert!(e("(tcp").contains("\")\" expected"));
        assert!(e("tcp)").contains("unbalanced"));
        assert!(e("src 80").contains("\"port\" or \"host\" expected after \"src\", got \"80\""));
        assert!(e("udp 53").contains("unexpected \"53\""));
    }
}
