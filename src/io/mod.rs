//! The I/O core shared by every protocol: the connected-socket type (`transport.rs`), the
//! listening side with its background handshakes (`acceptor.rs`), and the pure read-buffer
//! codec streams use (`read_buf.rs`). See docs/internals.md, "Transport and acceptor".

pub mod acceptor;
pub mod read_buf;
pub mod transport;

pub use transport::{Connection, Transport};
