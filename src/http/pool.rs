//! The client's keep-alive pool, one per Lua state. HTTP/1.1 connections are kept idle by
//! origin (scheme, host, port, TLS options, proxy) once a response was read to its end without
//! `Connection: close`, and handed out again newest first; one HTTP/2 connection per origin is
//! shared by every request (its `SendRequest` multiplexes streams). Idle connections the server
//! closed are noticed when they are next looked at (`is_closed`), and dropped after
//! `IDLE_TIMEOUT` (Go's default) or past `MAX_IDLE_PER_ORIGIN`. While a connection to an HTTPS
//! origin is being opened, other requests to it wait for that one (it may be HTTP/2).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use tokio::time::Instant;

use super::body::Body;

const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_IDLE_PER_ORIGIN: usize = 32;

/// Where a connection goes: requests may share it only if all of this is equal.
#[derive(Clone, Hash, PartialEq, Eq)]
pub struct Key {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub tls: Option<crate::tls::ClientOpts>,
    /// The proxy the connection goes through (`http://host:port`), if any.
    pub proxy: Option<String>,
}

pub enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// Idle HTTP/1.1 connections of one origin, oldest first, with when each became idle.
type Idle = Vec<(http1::SendRequest<Body>, Instant)>;

#[derive(Default)]
pub struct Pool {
    idle: RefCell<HashMap<Key, Idle>>,
    h2: RefCell<HashMap<Key, http2::SendRequest<Body>>>,
    /// HTTPS origins with a connection being opened: requests that come meanwhile wait for it,
    /// since it may turn out HTTP/2 and serve them all (see [`Pool::first_connect`]).
    connecting: RefCell<HashMap<Key, Rc<Connecting>>>,
}

/// A connection being opened, and who waits for it.
#[derive(Default)]
pub struct Connecting {
    done: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

/// Held by the request opening an origin's connection; dropping it (done or failed) lets the
/// waiting requests look at the pool again.
pub struct Opening<'a> {
    pool: &'a Pool,
    key: Key,
    c: Rc<Connecting>,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        self.pool.connecting.borrow_mut().remove(&self.key);
        self.c.done.set(true);
        for w in self.c.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

impl Pool {
    /// A live connection to `key`'s origin, if one is free.
    pub fn checkout(&self, key: &Key) -> Option<Sender> {
        {
            let mut h2 = self.h2.borrow_mut();
            if let Some(tx) = h2.get(key) {
                if !tx.is_closed() {
                    return Some(Sender::H2(tx.clone()));
                }
                h2.remove(key);
            }
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        let mut found = None;
        while let Some((tx, since)) = list.pop() {
            if !tx.is_closed() && tx.is_ready() && now.duration_since(since) < IDLE_TIMEOUT {
                found = Some(Sender::H1(tx));
                break;
            }
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Keeps an HTTP/1.1 connection whose response was read to its end.
    pub fn put_back(&self, key: Key, tx: http1::SendRequest<Body>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_ORIGIN {
            list.remove(0);
        }
        list.push((tx, Instant::now()));
    }

    /// Before opening a connection to an HTTPS origin: `Ok(guard)` when this request is the
    /// first (it holds the guard while it connects), or `Err(wait)` when another request is
    /// connecting there already: wait for it, then look at the pool again (an HTTP/2
    /// connection serves everyone; after HTTP/1.1 each opens its own). Without this, requests
    /// started together on a cold pool would each open an HTTP/2 connection.
    pub fn first_connect(&self, key: &Key) -> Result<Opening<'_>, Rc<Connecting>> {
        if let Some(c) = self.connecting.borrow().get(key) {
            return Err(c.clone());
        }
        let c = Rc::new(Connecting::default());
        self.connecting.borrow_mut().insert(key.clone(), c.clone());
        Ok(Opening { pool: self, key: key.clone(), c })
    }

    /// Shares a new HTTP/2 connection for later requests to the same origin.
    pub fn share_h2(&self, key: Key, tx: &http2::SendRequest<Body>) {
        self.h2.borrow_mut().insert(key, tx.clone());
    }
}

impl Connecting {
    /// Waits until the connection being opened is done (or failed).
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.done.get() {
                return Poll::Ready(());
            }
            let mut ws = self.waiters.borrow_mut();
            if !ws.iter().any(|w| w.will_wake(cx.waker())) {
                ws.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}
