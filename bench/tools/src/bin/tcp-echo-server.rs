//! Raw tokio TCP echo server on a current_thread runtime: the "tokio" anchor of bench/tcp.sh.
//! Usage: tcp-echo-server [--host 127.0.0.1] [--port 9002] [--bufsize 65536]
use net_bench_tools::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let a = Args::parse();
    let ip = loopback_ip(&a.str("host", "127.0.0.1"));
    let port: u16 = a.num("port", 9002);
    let bufsize: usize = a.num("bufsize", 65536);
    current_thread().block_on(async move {
        let l = tokio::net::TcpListener::bind((ip, port))
            .await
            .unwrap_or_else(|e| fail(&format!("bind {ip}:{port}: {e}")));
        eprintln!("tokio tcp echo on {}", l.local_addr().unwrap());
        loop {
            let (mut s, _) = match l.accept().await {
                Ok(x) => x,
                Err(_) => continue,
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; bufsize];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}
