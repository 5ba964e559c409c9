//! Name resolution: `net.resolve`, and the lookups behind every connect by name.
//!
//! Uses hickory-resolver (the project formerly named trust-dns-resolver) with the system's
//! `/etc/resolv.conf` and hosts file, always bounded by a timeout (LuaSocket's is not).
//! IP literals resolve to themselves without a lookup; `localhost` and `*.localhost` are the
//! loopback addresses and `*.invalid` never exists (RFC 6761), so neither needs a DNS server.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::TokioResolver;
use mlua::prelude::*;

use crate::error::{Kind, NResult, NetError};
use crate::export::{async_func, Args};
use crate::runtime::sched;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Resolver(TokioResolver);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

/// An IP literal, with or without IPv6 brackets.
pub fn literal(host: &str) -> Option<IpAddr> {
    let h = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    h.parse().ok()
}

/// The state's resolver, made on first use and kept in app data (per-state data lives there, one
/// type per owner: docs/internals.md, "Per-state data").
fn resolver(lua: &Lua) -> NResult<Rc<Resolver>> {
    if let Some(r) = lua.app_data_ref::<Rc<Resolver>>() {
        return Ok(r.clone());
    }
    let s = sched(lua);
    let _ctx = s.enter();
    let mut b = TokioResolver::builder_tokio()
        .map_err(|e| NetError::new(Kind::Dns, format!("cannot read the system DNS configuration ({e})")))?;
    b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    let r = b.build().map_err(|e| NetError::new(Kind::Dns, format!("cannot start the resolver ({e})")))?;
    let r = Rc::new(Resolver(r));
    let _ = lua.try_set_app_data(r.clone()); // if app data is busy, it is made again next time
    Ok(r)
}

/// Prepares a lookup of `host` (synchronously, so it can pick up the resolver) and returns the
/// future that performs it.
pub fn lookup(
    lua: &Lua,
    host: &str,
    family: Family,
    timeout: Option<Duration>,
) -> NResult<impl std::future::Future<Output = NResult<Vec<IpAddr>>>> {
    let host = host.to_owned();
    let keep = move |ips: Vec<IpAddr>| -> Vec<IpAddr> {
        ips.into_iter()
            .filter(|ip| match family {
                Family::Any => true,
                Family::V4 => ip.is_ipv4(),
                Family::V6 => ip.is_ipv6(),
            })
            .collect()
    };
    let lower = host.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    let fixed: Option<NResult<Vec<IpAddr>>> = if let Some(ip) = literal(&host) {
        Some(Ok(keep(vec![ip])))
    } else if lower == "localhost" || lower.ends_with(".localhost") {
        Some(Ok(keep(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()])))
    } else if lower == "invalid" || lower.ends_with(".invalid") || host.is_empty() {
        Some(Err(not_found(&host)))
    } else {
        None
    };
    let r = if fixed.is_none() { Some(resolver(lua)?) } else { None };
    let limit = timeout.unwrap_or(DEFAULT_TIMEOUT);
    Ok(async move {
        let ips = match (fixed, r) {
            (Some(res), _) => res?,
            (None, Some(r)) => {
                // Boxed: hickory's lookup is over a kilobyte, and inline it would make every
                // connect future that big, including connects to IP literals, which never get here.
                let found = tokio::time::timeout(limit, Box::pin(r.0.lookup_ip(host.as_str())))
                    .await
                    .map_err(|_| NetError::timeout("resolve", &host, limit))?;
                match found {
                    Ok(l) => keep(l.iter().collect()),
                    Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Err(not_found(&host)),
                    Err(e) => return Err(NetError::new(Kind::Dns, format!("{host}: {e}"))),
                }
            }
            (None, None) => unreachable!(),
        };
        if ips.is_empty() {
            return Err(NetError::new(Kind::Dns, format!("{host}: no address of the requested family")));
        }
        Ok(ips)
    })
}

fn not_found(host: &str) -> NetError {
    NetError::new(Kind::Dns, format!("{host}: host not found"))
}

pub fn register(lua: &Lua, net: &LuaTable) -> LuaResult<()> {
    net.set(
        "resolve",
        async_func(lua, "net.resolve", |lua, args: Args| {
            let host = args.string(1)?;
            let o = args.opts(2)?;
            let family = match o.string("family")?.as_deref() {
                None => Family::Any,
                Some("inet") | Some("ipv4") | Some("inet4") => Family::V4,
                Some("inet6") | Some("ipv6") => Family::V6,
                Some(f) => {
                    return Err(args.bad(2, format!("option 'family': \"inet\" or \"inet6\" expected, got \"{f}\"")))
                }
            };
            let fut = lookup(lua, &host, family, o.timeout("timeout")?)?;
            Ok(async move { Ok(fut.await?.iter().map(|ip| ip.to_string()).collect::<Vec<_>>()) })
        })?,
    )?;
    Ok(())
}
