//! Bounded TCP echo load client (current_thread runtime; pin it with taskset). Loopback only.
//!   pingpong (default): --conns N connections, each writes --size bytes and waits for the
//!             same number of bytes back, repeatedly, for --secs seconds.
//!             Prints `RESULT tcp-pingpong ... rate=<round trips/s> errors=<n>`.
//!   bulk:     --mode bulk: one connection, a writer task pushes --chunk byte blocks while the
//!             reader drains the echo concurrently, for --secs seconds.
//!             Prints `RESULT tcp-bulk ... MBps=<echoed MB/s, 1 MB = 1e6 B> errors=<n>`.
//! Usage: tcp-load --addr 127.0.0.1:PORT [--mode pingpong|bulk] [--conns 50] [--size 64]
//!                 [--chunk 65536] [--secs 10]
use net_bench_tools::*;
use std::rc::Rc;
use std::cell::Cell;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Duration, Instant};

fn main() {
    let a = Args::parse();
    let addr = loopback_addr(&a.str("addr", "127.0.0.1:9002"));
    let conns: usize = a.num("conns", 50);
    let size: usize = a.num("size", 64);
    let secs: f64 = a.num("secs", 10.0);
    let mode = a.str("mode", "pingpong");
    let chunk: usize = a.num("chunk", 65536);
    if conns == 0 || size == 0 || chunk == 0 || !(secs > 0.0) {
        fail("--conns, --size, --chunk and --secs must be > 0");
    }
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    match mode.as_str() {
        "bulk" => local.block_on(&rt, bulk(addr, chunk, secs)),
        "pingpong" => local.block_on(&rt, pingpong(addr, conns, size, secs)),
        m => fail(&format!("unknown --mode {m}")),
    }
}

async fn connect(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| fail(&format!("connect {addr}: {e}")));
    let _ = s.set_nodelay(true);
    s
}

async fn bulk(addr: std::net::SocketAddr, chunk: usize, secs: f64) {
    let s = connect(addr).await;
    let (mut r, mut w) = s.into_split();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let werr = Rc::new(Cell::new(0u64));
    let wr = {
        let werr = werr.clone();
        tokio::task::spawn_local(async move {
            let buf = vec![b'x'; chunk];
            let _ = timeout_at(deadline, async {
                loop {
                    if w.write_all(&buf).await.is_err() {
                        werr.set(werr.get() + 1);
                        break;
                    }
                }
            })
            .await;
            w
        })
    };
    let mut total = 0u64;
    let mut rerr = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let _ = timeout_at(deadline, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) => { rerr += 1; break } // server closed before the deadline
                Err(_) => { rerr += 1; break }
                Ok(n) => total += n as u64,
            }
        }
    })
    .await;
    let el = start.elapsed().as_secs_f64();
    drop(wr.await);
    println!(
        "RESULT tcp-bulk chunk={chunk} bytes={total} secs={el:.3} MBps={:.1} errors={}",
        total as f64 / el / 1e6,
        rerr + werr.get()
    );
}

async fn pingpong(addr: std::net::SocketAddr, conns: usize, size: usize, secs: f64) {
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(connect(addr).await);
    }
    let count = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for mut s in streams {
        let (count, errors) = (count.clone(), errors.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let out = vec![b'x'; size];
            let mut inb = vec![0u8; size];
            let _ = timeout_at(deadline, async {
                loop {
                    if s.write_all(&out).await.is_err() || s.read_exact(&mut inb).await.is_err() {
                        errors.set(errors.get() + 1);
                        break;
                    }
                    count.set(count.get() + 1);
                }
            })
            .await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let el = start.elapsed().as_secs_f64();
    let n = count.get();
    println!(
        "RESULT tcp-pingpong conns={conns} size={size} roundtrips={n} secs={el:.3} rate={:.0} errors={}",
        n as f64 / el,
        errors.get()
    );
}
