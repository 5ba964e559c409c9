//! Tiny shared helpers for the bench tools (no external arg parser).
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

pub struct Args(HashMap<String, String>);

impl Args {
    /// `--key value` pairs only.
    pub fn parse() -> Args {
        let mut m = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            if k == "-h" || k == "--help" {
                eprintln!("usage: see the doc comment at the top of this tool's source (bench/tools/src/bin/)");
                std::process::exit(2);
            }
            let k = k.trim_start_matches("--").to_string();
            let v = it.next().unwrap_or_else(|| fail(&format!("missing value for --{k}")));
            m.insert(k, v);
        }
        Args(m)
    }
    pub fn str(&self, k: &str, d: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| d.to_string())
    }
    pub fn num<T: std::str::FromStr>(&self, k: &str, d: T) -> T {
        match self.0.get(k) {
            None => d,
            Some(v) => v.parse().unwrap_or_else(|_| fail(&format!("bad value for --{k}: {v}"))),
        }
    }
}

pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// Resolve `host:port` and refuse anything that is not loopback: these are load generators.
pub fn loopback_addr(hostport: &str) -> SocketAddr {
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .unwrap_or_else(|e| fail(&format!("cannot resolve {hostport}: {e}")))
        .collect();
    let a = addrs
        .first()
        .copied()
        .unwrap_or_else(|| fail(&format!("{hostport} resolves to nothing")));
    if !addrs.iter().all(|a| a.ip().is_loopback()) {
        fail(&format!("refusing non-loopback target {hostport}"));
    }
    a
}

/// Listen addresses are loopback only as well.
pub fn loopback_ip(host: &str) -> IpAddr {
    let ip: IpAddr = host.parse().unwrap_or_else(|_| fail(&format!("not an IP address: {host}")));
    if !ip.is_loopback() {
        fail(&format!("refusing non-loopback address {host}"));
    }
    ip
}

pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}
