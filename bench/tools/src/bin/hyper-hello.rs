//! "Hello, World!" server on raw hyper 1.x, tokio current_thread: the "hyper" anchor of
//! bench/http.sh (HTTP/1.1 keep-alive, or HTTP/2 cleartext by prior knowledge with `--proto h2c`,
//! which is what h2load speaks to an http:// URL). Also the local server for the client test.
//! Usage: hyper-hello [--host 127.0.0.1] [--port 8080] [--proto h1|h2c]   (loopback only)
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use net_bench_tools::*;

// The same 13-byte body and headers as the other servers (hyper adds content-length and date).
async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(b"Hello, World!")))
        .unwrap())
}

fn main() {
    let a = Args::parse();
    let ip = loopback_ip(&a.str("host", "127.0.0.1"));
    let port: u16 = a.num("port", 8080);
    let h2c = match a.str("proto", "h1").as_str() {
        "h1" => false,
        "h2c" => true,
        p => fail(&format!("unknown --proto {p} (h1 or h2c)")),
    };
    current_thread().block_on(async move {
        let l =
            tokio::net::TcpListener::bind((ip, port)).await.unwrap_or_else(|e| fail(&format!("bind {ip}:{port}: {e}")));
        eprintln!(
            "hyper-hello ({}, current_thread) on http://{}/",
            if h2c { "h2c" } else { "h1" },
            l.local_addr().unwrap()
        );
        loop {
            let (s, _) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            tokio::task::spawn(async move {
                let io = TokioIo::new(s);
                // errors here are clients going away at the end of a run
                if h2c {
                    let _ = http2::Builder::new(TokioExecutor::new()).serve_connection(io, service_fn(hello)).await;
                } else {
                    let _ = http1::Builder::new().serve_connection(io, service_fn(hello)).await;
                }
            });
        }
    });
}
