//! Handshakes a server runs in the background (TLS on a `net.tcp.listen` listener, the HTTP
//! upgrade on a `net.ws.listen` server), tracked so that closing the server ends them at once:
//! their peers see the connection end, and nothing finishes into a closed server's queue.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

use tokio::task::AbortHandle;

#[derive(Default)]
pub struct Handshakes {
    next_id: Cell<u64>,
    /// The handshakes still running: the socket each one owns, and how to stop it.
    running: RefCell<HashMap<u64, (RawFd, AbortHandle)>>,
}

/// Removes a handshake from `running` when its task ends or is dropped. A handshake future drops
/// its socket only as it ends (or hands it on), so between the socket closing and its entry going
/// no other code runs: an entry never names a descriptor that was closed and perhaps reused.
struct Entry {
    set: Weak<Handshakes>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(set) = self.set.upgrade() {
            set.running.borrow_mut().remove(&self.id);
        }
    }
}

impl Handshakes {
    /// Runs `handshake` (which owns the socket `fd`, and closes or hands it on only as it ends)
    /// as a background task of the loop.
    pub fn spawn(self: &Rc<Self>, fd: RawFd, handshake: impl Future<Output = ()> + 'static) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let entry = Entry { set: Rc::downgrade(self), id };
        let task = tokio::task::spawn_local(async move {
            let _entry = entry;
            handshake.await;
        });
        self.running.borrow_mut().insert(id, (fd, task.abort_handle()));
    }

    /// Ends every handshake still running: the peers see the connection end now (the tasks
    /// are dropped when the loop next runs, which may be later).
    pub fn abort_all(&self) {
        let running: Vec<(RawFd, AbortHandle)> = self.running.borrow_mut().drain().map(|(_, v)| v).collect();
        for (fd, task) in running {
            // SAFETY: `fd` is open and still the handshake's socket: its entry was present a
            // moment ago, and an entry goes in the same synchronous step as its socket closes
            // (see `Entry`). abort() only schedules the task's drop, so it owns `fd` until then
            // and the socket stays valid; shutdown() touches no memory of ours.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            task.abort();
        }
    }
}
