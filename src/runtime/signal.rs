//! Ctrl-C (SIGINT) during a blocking call on the main thread.
//!
//! A blocking call drives the loop inside Rust, where no Lua instruction runs, so the interpreter's
//! handler cannot stop it: lua.c's only sets a debug hook that raises "interrupted!" at the next
//! instruction, and resets SIGINT to the default action, so left alone the first Ctrl-C would do
//! nothing and the second would kill the process without cleanup. While a blocking call waits,
//! [`Interruptible`] puts `on_sigint` in front of the program's handler. On SIGINT it counts the signal, calls the
//! program's handler (the interpreter or host sees the Ctrl-C too), takes back the debug hook that
//! handler may have set on the main Lua thread (our error already stops the script, and it must
//! stop it once: a hook firing later would interrupt the script's cleanup), and wakes the loop
//! through an eventfd that the call watches. The call then fails with `interrupted:`.
//!
//! When the last blocking call ends, the program's handler is put back, unless the disposition was
//! changed meanwhile: lua.c's handler resets it to the default so that a second Ctrl-C ends the
//! process, and that choice stays. Nothing is installed when SIGINT is ignored (the host asked for
//! that) or has its default action (the process ends, as it would in Lua code; this is also lua.c's
//! state after one Ctrl-C). Linux only (eventfd); elsewhere blocking calls are not interruptible.

use std::ffi::{c_int, c_void};
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::ptr::null_mut;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use mlua::ffi::{self, lua_State};
use mlua::Lua;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// SIGINTs our handler has seen, ever. A blocking call compares it with its value at the start.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// The eventfd the handler writes to wake the loops (-1 until created).
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The handler installed before ours (`sa_sigaction`), and whether it takes three arguments.
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_SIGINFO: AtomicBool = AtomicBool::new(false);
/// The main Lua thread of the state that installed our handler: lua.c's handler hooks that one.
static MAIN_STATE: AtomicPtr<lua_State> = AtomicPtr::new(null_mut());

/// Blocking calls waiting now (several Lua states may block on several threads) and the
/// disposition to put back when the last one ends.
struct Installed {
    users: usize,
    prev: Option<libc::sigaction>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed { users: 0, prev: None });

/// The fd the loops watch, made once and kept for the life of the process. It is never read:
/// every write wakes epoll again, and the count in `SEEN` says whether a signal came.
fn wake_fd() -> Option<RawFd> {
    static FD: OnceLock<Option<RawFd>> = OnceLock::new();
    *FD.get_or_init(|| {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: a plain system call; the fd it returns is ours alone.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            WAKE.store(fd, SeqCst);
            Some(fd)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            None
        }
    })
}

/// This thread's errno slot, which the handler must leave as it found it.
#[cfg(target_os = "linux")]
fn errno() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; async-signal-safe.
    unsafe { libc::__errno_location() }
}

#[cfg(target_os = "android")]
fn errno() -> *mut c_int {
    // SAFETY: returns the calling thread's errno slot; async-signal-safe.
    unsafe { libc::__errno() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn errno() -> *mut c_int {
    null_mut()
}

/// The debug hook of `l`: function (as an address), mask, count.
type Hook = (usize, c_int, c_int);

#[cfg(not(test))]
fn hook_of(l: *mut lua_State) -> Hook {
    // SAFETY: `l` is the live main thread of a state blocked in a call (MAIN_STATE is cleared
    // before that call returns). These read three fields, as lua.c's own handler writes them
    // from signal context.
    unsafe { (ffi::lua_gethook(l).map_or(0, |f| f as usize), ffi::lua_gethookmask(l), ffi::lua_gethookcount(l)) }
}

#[cfg(not(test))]
fn set_hook(l: *mut lua_State, (hook, mask, count): Hook) {
    // SAFETY: `hook` is 0 or an address read by `hook_of` from the same field, so it is a
    // lua_Hook or none. lua_sethook is what lua.c's handler itself calls in signal context.
    unsafe {
        let f: Option<ffi::lua_Hook> =
            if hook == 0 { None } else { Some(std::mem::transmute::<usize, ffi::lua_Hook>(hook)) };
        #[allow(clippy::let_unit_value)]
        let _ = ffi::lua_sethook(l, f, mask, count);
    }
}

// The unit tests link no Lua (module mode): they run with no main state, so these never run.
#[cfg(test)]
fn hook_of(_: *mut lua_State) -> Hook {
    (0, 0, 0)
}

#[cfg(test)]
fn set_hook(_: *mut lua_State, _: Hook) {}

/// Calls the handler that was there before ours, then takes back a debug hook it set.
fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let prev = PREV_HANDLER.load(SeqCst);
    if prev == libc::SIG_DFL || prev == libc::SIG_IGN {
        return;
    }
    let l = MAIN_STATE.load(SeqCst);
    let before = (!l.is_null()).then(|| hook_of(l));
    // SAFETY: `prev` is the SIGINT handler the program installed, called in signal context as it
    // expects, with the arguments its SA_SIGINFO flag asked for.
    unsafe {
        if PREV_SIGINFO.load(SeqCst) {
            let f = std::mem::transmute::<usize, extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void)>(prev);
            f(sig, info, ctx);
        } else {
            let f = std::mem::transmute::<usize, extern "C" fn(c_int)>(prev);
            f(sig);
        }
    }
    if let Some(before) = before {
        if hook_of(l) != before {
            set_hook(l, before);
        }
    }
}

/// The SIGINT handler while a blocking call waits. Async-signal-safe: atomics, the previous
/// handler, lua_gethook/lua_sethook (as lua.c's handler), write(2).
extern "C" fn on_sigint(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let errno = errno();
    // SAFETY: `errno` is this thread's errno slot (or null where unknown).
    let saved = if errno.is_null() { 0 } else { unsafe { *errno } };
    SEEN.fetch_add(1, SeqCst);
    chain(sig, info, ctx);
    let fd = WAKE.load(SeqCst);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) on our eventfd, from 8 live bytes as eventfd requires. If it fails
        // (the count is full: never in practice) the loop still sees `SEEN` at its next wake.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }
    if !errno.is_null() {
        // SAFETY: as above; the interrupted code finds errno as it left it.
        unsafe { *errno = saved };
    }
}

fn current_disposition() -> Option<libc::sigaction> {
    // SAFETY: sigaction only reads the disposition into the zeroed struct we own.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(libc::SIGINT, std::ptr::null(), &mut cur) == 0).then_some(cur)
    }
}

fn handler_address() -> usize {
    on_sigint as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize
}

/// The main thread of `lua`'s state, where lua.c's handler sets its hook.
pub(crate) fn main_state(lua: &Lua) -> *mut lua_State {
    #[cfg(any(feature = "lua54", feature = "lua53", feature = "lua52"))]
    {
        // SAFETY: the closure pushes exactly one value (the registry's main thread entry), which
        // exec_raw converts to the result.
        let main = unsafe {
            lua.exec_raw::<mlua::Thread>((), |l| {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
            })
        };
        main.map_or(null_mut(), |t| t.state())
    }
    // LuaJIT keeps one hook per state, reachable from any thread; on 5.1 this is the best guess.
    #[cfg(not(any(feature = "lua54", feature = "lua53", feature = "lua52")))]
    {
        lua.current_thread().state()
    }
}

/// Puts our handler in front of the program's; false when SIGINT is ignored or default.
/// `main_state` gives the Lua thread whose debug hook the handler guards.
fn install(main_state: impl FnOnce() -> *mut lua_State) -> bool {
    let mut g = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(cur) = current_disposition() else { return false };
    let ours = handler_address();
    if cur.sa_sigaction == ours {
        g.users += 1; // another blocking call (another state, another thread) put it there
        return true;
    }
    if cur.sa_sigaction == libc::SIG_DFL || cur.sa_sigaction == libc::SIG_IGN {
        return false;
    }
    PREV_HANDLER.store(cur.sa_sigaction, SeqCst);
    PREV_SIGINFO.store(cur.sa_flags & libc::SA_SIGINFO != 0, SeqCst);
    if g.users == 0 {
        MAIN_STATE.store(main_state(), SeqCst);
    }
    // SAFETY: installs `on_sigint` (async-signal-safe, see there) with a zeroed, then filled,
    // struct; SIGINT is blocked while it runs (no SA_NODEFER).
    let ok = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = ours;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(libc::SIGINT, &act, std::ptr::null_mut()) == 0
    };
    if !ok {
        if g.users == 0 {
            MAIN_STATE.store(null_mut(), SeqCst);
        }
        return false;
    }
    g.prev = Some(cur);
    g.users += 1;
    true
}

/// The end of one blocking call: the last one puts the program's handler back, if ours is still
/// the one installed (see the module doc).
fn uninstall() {
    let mut g = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    g.users = g.users.saturating_sub(1);
    if g.users > 0 {
        return;
    }
    if let Some(prev) = g.prev.take() {
        // SAFETY: puts back the disposition read by `install`, unchanged, and reads the one it
        // replaces into a zeroed struct we own; if that was not ours (lua.c's handler reset
        // SIGINT to the default meanwhile), that choice goes back in place.
        unsafe {
            let mut was: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, &prev, &mut was) == 0 && was.sa_sigaction != handler_address() {
                libc::sigaction(libc::SIGINT, &was, std::ptr::null_mut());
            }
        }
    }
    MAIN_STATE.store(null_mut(), SeqCst);
}

/// The eventfd, borrowed by an `AsyncFd` (which must not close it).
struct WakeFd(RawFd);

impl AsRawFd for WakeFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The eventfd registered with one Lua state's loop, kept in its app data: registered once, not
/// at every blocking call.
struct Registered(Rc<AsyncFd<WakeFd>>);

fn registered(lua: &Lua) -> Option<Rc<AsyncFd<WakeFd>>> {
    if let Some(r) = lua.app_data_ref::<Registered>() {
        return Some(r.0.clone());
    }
    let fd = wake_fd()?;
    // SAFETY: the eventfd is never closed (made once for the life of the process), so it stays
    // open and the same for as long as the AsyncFd lives.
    let fd = Rc::new(unsafe { AsyncFd::register_with_interest(WakeFd(fd), Interest::READABLE) }.ok()?);
    let _ = lua.try_set_app_data(Registered(fd.clone())); // if that fails, it is registered again next time
    Some(fd)
}

/// Our handler is in place while a `Watch` lives, and the loop watches the eventfd.
struct Watch {
    seen_at_start: u64,
    fd: Rc<AsyncFd<WakeFd>>,
}

impl Watch {
    fn start(lua: &Lua) -> Option<Watch> {
        let fd = registered(lua)?;
        let seen_at_start = SEEN.load(SeqCst); // before installing: every signal ours sees counts
        install(|| main_state(lua)).then_some(Watch { seen_at_start, fd })
    }

    fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if SEEN.load(SeqCst) != self.seen_at_start {
                return Poll::Ready(());
            }
            match self.fd.poll_read_ready(cx) {
                // The eventfd stays readable once written; each new write wakes epoll again.
                Poll::Ready(Ok(mut ready)) => ready.clear_ready(),
                // Cannot watch (the registration broke): the call runs to its own end.
                Poll::Ready(Err(_)) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        uninstall();
    }
}

/// A blocking call stopped by SIGINT.
pub struct Interrupted;

/// `fut`, ended early by Ctrl-C (see the module doc).
pub struct Interruptible<'a, F: Future> {
    fut: Pin<&'a mut F>,
    lua: &'a Lua,
    /// Made at the first poll that finds `fut` pending, so a call that is done at once does
    /// not pay for the handler (three sigactions); `Some(None)`: not possible.
    watch: Option<Option<Watch>>,
}

impl<'a, F: Future> Interruptible<'a, F> {
    pub fn new(lua: &'a Lua, fut: Pin<&'a mut F>) -> Self {
        Interruptible { fut, lua, watch: None }
    }
}

impl<F: Future> Future for Interruptible<'_, F> {
    type Output = Result<F::Output, Interrupted>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(v) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let lua = this.lua;
        match this.watch.get_or_insert_with(|| Watch::start(lua)) {
            Some(w) if w.poll_signal(cx).is_ready() => Poll::Ready(Err(Interrupted)),
            _ => Poll::Pending,
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    static HOST_CALLS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn host_handler(_: c_int) {
        HOST_CALLS.fetch_add(1, SeqCst);
    }

    fn set_disposition(handler: usize) {
        // SAFETY: installs SIG_DFL, SIG_IGN or `host_handler` (which only counts) for SIGINT.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGINT, &act, std::ptr::null_mut());
        }
    }

    fn disposition() -> usize {
        current_disposition().expect("sigaction").sa_sigaction
    }

    // One test: SIGINT's disposition is process-wide, and no other test touches it.
    #[test]
    fn chains_to_a_host_handler_and_respects_ignore_and_default() {
        let host = host_handler as extern "C" fn(c_int) as usize;
        for skipped in [libc::SIG_IGN, libc::SIG_DFL] {
            set_disposition(skipped);
            assert!(!install(null_mut), "installed over {skipped}");
            assert_eq!(disposition(), skipped);
        }

        set_disposition(host);
        assert!(install(null_mut));
        assert!(install(null_mut)); // a second blocking call (another state) shares it
        assert_eq!(disposition(), handler_address());
        let seen = SEEN.load(SeqCst);
        // SAFETY: raise delivers SIGINT to this thread, whose handler is ours (which chains).
        unsafe { libc::raise(libc::SIGINT) };
        assert_eq!(SEEN.load(SeqCst), seen + 1);
        assert_eq!(HOST_CALLS.load(SeqCst), 1, "the host's handler is called too");
        uninstall();
        assert_eq!(disposition(), handler_address(), "still in place for the other call");
        uninstall();
        assert_eq!(disposition(), host, "the host's handler is back");

        // A handler that changes the disposition itself (lua.c's resets it to the default) is
        // left with its choice.
        set_disposition(host);
        assert!(install(null_mut));
        set_disposition(libc::SIG_DFL);
        uninstall();
        assert_eq!(disposition(), libc::SIG_DFL);
    }
}
