//! Idle HTTP/1.1 keep-alive connections, for bench/http.sh's memory test. Loopback only.
//! Opens --conns connections one after another; on each sends one `GET --path` and reads the
//! whole response (Content-Length or chunked), so the server has served a request on it and now
//! holds it as an idle keep-alive connection. Then:
//!   prints `CONNECTED <n> failed=<m> secs=<time to open them>`,
//!   waits --check seconds and prints `OPEN <n> closed=<m>` (connections the server has not
//!   closed in the meantime: the caller reads the server's memory at that moment),
//!   holds them until --hold seconds after CONNECTED, and exits (closing them all).
//! Usage: http-idle --addr 127.0.0.1:PORT [--conns 5000] [--path /] [--check 2] [--hold 10]
use net_bench_tools::*;
use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Duration, Instant};

fn main() {
    let a = Args::parse();
    let addr = loopback_addr(&a.str("addr", "127.0.0.1:8080"));
    let conns: usize = a.num("conns", 5000);
    let path = a.str("path", "/");
    let check: f64 = a.num("check", 2.0);
    let hold: f64 = a.num("hold", 10.0);
    if conns == 0 || check.is_nan() || check < 0.0 || hold.is_nan() || hold < check {
        fail("--conns must be > 0 and 0 <= --check <= --hold");
    }
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    current_thread().block_on(async move {
        let t0 = Instant::now();
        let mut open = Vec::with_capacity(conns);
        let (mut failed, mut streak) = (0usize, 0usize);
        for _ in 0..conns {
            match timeout(Duration::from_secs(5), one(addr, req.as_bytes())).await {
                Ok(Ok(s)) => {
                    open.push(s);
                    streak = 0;
                }
                Ok(Err(e)) => {
                    if failed == 0 {
                        eprintln!("http-idle: connection {}: {e}", open.len() + failed + 1);
                    }
                    failed += 1;
                    streak += 1;
                }
                Err(_) => {
                    failed += 1;
                    streak += 1;
                }
            }
            if streak >= 50 {
                eprintln!("http-idle: 50 failures in a row, giving up");
                break;
            }
        }
        let t1 = Instant::now();
        println!("CONNECTED {} failed={failed} secs={:.3}", open.len(), (t1 - t0).as_secs_f64());
        tokio::time::sleep(Duration::from_secs_f64(check)).await;
        let mut closed = 0;
        let mut b = [0u8; 64];
        for s in &open {
            match s.try_read(&mut b) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(n) if n > 0 => {} // stray bytes: still open
                _ => closed += 1,
            }
        }
        println!("OPEN {} closed={closed}", open.len() - closed);
        tokio::time::sleep_until(t1 + Duration::from_secs_f64(hold)).await;
        drop(open);
    });
}

/// Connect, send the request, read one full response; the stream is left idle.
async fn one(addr: std::net::SocketAddr, req: &[u8]) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let _ = s.set_nodelay(true);
    s.write_all(req).await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let mut head: Option<(usize, Option<usize>)> = None; // (header end, content-length)
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "closed before the response ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if head.is_none() {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let h = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                if !h.starts_with("http/1.1 200") {
                    let line = h.lines().next().unwrap_or("").to_string();
                    return Err(std::io::Error::new(ErrorKind::InvalidData, format!("status line {line:?}")));
                }
                let len =
                    h.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().ok())).flatten();
                if len.is_none() && !h.contains("transfer-encoding: chunked") {
                    return Err(std::io::Error::new(ErrorKind::InvalidData, "no length and not chunked"));
                }
                head = Some((i + 4, len));
            }
        }
        match head {
            Some((start, Some(len))) if buf.len() >= start + len => return Ok(s),
            Some((_, None)) if buf.ends_with(b"0\r\n\r\n") => return Ok(s),
            _ => {}
        }
    }
}
