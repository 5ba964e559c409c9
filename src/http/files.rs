//! The file work behind the router's `app:static(prefix, dir)` (src/lua/router.lua): resolving a
//! request path inside a directory without ever leaving it, the validators of a file (size,
//! modification time, `ETag`, `Last-Modified`, content type), and reading a byte range, whole or
//! as a body function that streams it in chunks.
//!
//! These are private helpers handed to the router chunk, not `net.*` API. Everything HTTP
//! (conditional requests, ranges, status codes) is decided in Lua; this file only answers
//! questions about the file system, because that is where path traversal has to be stopped.
//!
//! Reads use `std::fs` on the loop's thread: a static file is read in chunks of at most 64 KiB
//! per call (from the page cache, microseconds), so no request stalls the loop for long, and no
//! thread pool is needed.

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mlua::prelude::*;
use percent_encoding::percent_decode;

use crate::error::{Kind, NResult, NetError};
use crate::export::{func, Args};

/// The most a streaming body function returns per call.
pub const CHUNK: usize = 64 * 1024;

/// What a request path names inside a static root.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file: its canonical path, size, modification time, and the name its content
    /// type comes from (the requested name, or the index file's, not a symlink's target).
    File { path: PathBuf, size: u64, mtime: Duration, type_name: PathBuf },
    /// Nothing servable: absent, not a regular file, unreadable, a dotfile, or a directory
    /// without an index. The router lets later routes have the request.
    Missing,
    /// An attempt to leave the root (`..`, an encoded slash, NUL, a symlink out of it). The
    /// router answers 404 at once.
    Refused,
    /// A directory that has an index file, asked for without the trailing slash: the router
    /// redirects to `path/` so that relative links in the index resolve inside the directory.
    Slash,
}

/// Resolves `rel` (the raw, still percent-encoded request path after the static prefix) inside
/// `root` (a canonical directory path, from [`canonical_root`]).
///
/// The request is judged on its own segments first, before any file system call: encoded
/// slashes and backslashes (`%2f`, `%5c`) and NUL are refused outright, since no honest link
/// contains them and they are how traversal hides from segment checks; a `..` segment (also
/// when written `%2e%2e`) is refused rather than resolved. Empty and `.` segments are skipped,
/// so a path that looks absolute (`//etc/passwd`) is just relative to the root. Then the joined
/// path is canonicalized (every symlink resolved) and must still lie under `root`: that stops
/// symlinks that point outside, whatever the segments looked like.
pub fn resolve(root: &Path, rel: &[u8], index: Option<&[u8]>, dotfiles: bool) -> Resolved {
    if has_encoded_separator(rel) {
        return Resolved::Refused;
    }
    let decoded: Vec<u8> = percent_decode(rel).collect();
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Resolved::Refused;
    }
    let mut joined = root.to_path_buf();
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => continue,
            b".." => return Resolved::Refused,
            _ if seg[0] == b'.' && !dotfiles => return Resolved::Missing,
            _ => joined.push(OsStr::from_bytes(seg)),
        }
    }
    let Some((canon, meta)) = inside(root, &joined) else {
        return if escapes(root, &joined) { Resolved::Refused } else { Resolved::Missing };
    };
    if meta.is_file() {
        return file(canon, &meta, joined);
    }
    if !meta.is_dir() {
        return Resolved::Missing; // a FIFO, socket or device: never opened
    }
    let Some(index) = index else { return Resolved::Missing };
    let index_name = joined.join(OsStr::from_bytes(index));
    match inside(root, &canon.join(OsStr::from_bytes(index))) {
        Some((path, meta)) if meta.is_file() => {
            if rel.last() == Some(&b'/') {
                file(path, &meta, index_name)
            } else {
                Resolved::Slash
            }
        }
        Some(_) => Resolved::Missing,
        None if escapes(root, &canon.join(OsStr::from_bytes(index))) => Resolved::Refused,
        None => Resolved::Missing,
    }
}

fn file(path: PathBuf, meta: &Metadata, type_name: PathBuf) -> Resolved {
    Resolved::File { path, size: meta.len(), mtime: mtime(meta), type_name }
}

/// `%2f` or `%5c` in either case: a slash or backslash that would only appear after decoding.
fn has_encoded_separator(rel: &[u8]) -> bool {
    rel.windows(3).any(|w| w[0] == b'%' && matches!((w[1], w[2] | 0x20), (b'2', b'f') | (b'5', b'c')))
}

/// The canonical form of `p` and its metadata, if `p` exists and its canonical form is `root`
/// or lies under it.
fn inside(root: &Path, p: &Path) -> Option<(PathBuf, Metadata)> {
    let canon = fs::canonicalize(p).ok()?;
    if !canon.starts_with(root) {
        return None;
    }
    let meta = fs::metadata(&canon).ok()?;
    Some((canon, meta))
}

/// Whether `p` exists but resolves outside `root` (a symlink out): refused, not just missing.
fn escapes(root: &Path, p: &Path) -> bool {
    matches!(fs::canonicalize(p), Ok(c) if !c.starts_with(root))
}

/// `dir` made canonical (absolute, no symlinks), which [`resolve`] needs; it must be a directory.
pub fn canonical_root(dir: &[u8]) -> NResult<PathBuf> {
    let shown = String::from_utf8_lossy(dir);
    let p = fs::canonicalize(OsStr::from_bytes(dir))
        .map_err(|e| NetError::io(&format!("static directory '{shown}'"), "", &e))?;
    if !p.is_dir() {
        return Err(NetError::new(Kind::Io, format!("static directory '{shown}' is not a directory")));
    }
    Ok(p)
}

/// Seconds and nanoseconds since the Unix epoch of a file's modification (0 before the epoch or
/// where the file system has no such time).
fn mtime(meta: &Metadata) -> Duration {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default()
}

/// A strong validator from size and modification time in nanoseconds, as nginx makes them:
/// a file rewritten within the same second still gets a new tag on file systems with
/// fine-grained times. Strong, so that `If-Range` (which needs strong tags) can use it.
pub fn etag(size: u64, mtime: Duration) -> String {
    format!("\"{:x}-{:x}\"", size, mtime.as_nanos())
}

/// The content type by extension; `charset=utf-8` on text types, which browsers would otherwise
/// read as Latin-1; `application/octet-stream` for unknown extensions.
pub fn content_type(name: &Path) -> String {
    let Some(m) = mime_guess::from_path(name).first_raw() else {
        return "application/octet-stream".into();
    };
    if m.starts_with("text/") || m == "application/javascript" || m == "application/json" {
        format!("{m}; charset=utf-8")
    } else {
        m.to_string()
    }
}

/// Reads up to `len` bytes at `offset` (fewer only if the file is shorter now).
fn read_at(f: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn path_arg(a: &Args, i: usize) -> NResult<PathBuf> {
    Ok(PathBuf::from(OsStr::from_bytes(&a.bytes(i)?)))
}

fn open(path: &Path) -> NResult<File> {
    File::open(path).map_err(|e| NetError::io("open", &path.to_string_lossy(), &e))
}

fn offset_and_len(a: &Args) -> NResult<(u64, u64)> {
    Ok((a.int_in(2, 0, i64::MAX)? as u64, a.int_in(3, 0, i64::MAX)? as u64))
}

/// `lookup(root, rel, index | false, dotfiles)`: a file gives `path, size, mtime (seconds),
/// etag, last_modified, content_type`; anything else `false, "missing" | "refused" | "slash"`.
fn lookup(lua: &Lua, a: Args) -> NResult<LuaMultiValue> {
    let root = path_arg(&a, 1)?;
    let rel = a.bytes(2)?;
    let index = match a.get(3) {
        LuaValue::Boolean(false) | LuaValue::Nil => None,
        _ => Some(a.bytes(3)?),
    };
    let dotfiles = !a.is_nil(4) && a.boolean(4)?;
    let reason = match resolve(&root, &rel, index.as_deref(), dotfiles) {
        Resolved::File { path, size, mtime: t, type_name } => {
            let last_modified = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(t.as_secs()));
            return Ok((
                lua.create_string(path.as_os_str().as_bytes())?,
                size,
                t.as_secs(),
                etag(size, t),
                last_modified,
                content_type(&type_name),
            )
                .into_lua_multi(lua)?);
        }
        Resolved::Missing => "missing",
        Resolved::Refused => "refused",
        Resolved::Slash => "slash",
    };
    Ok((false, reason).into_lua_multi(lua)?)
}

/// `read(path, offset, len) -> string`: the range in one string (for small ranges).
fn read(lua: &Lua, a: Args) -> NResult<LuaString> {
    let path = path_arg(&a, 1)?;
    let (offset, len) = offset_and_len(&a)?;
    let f = open(&path)?;
    let data = read_at(&f, offset, len as usize).map_err(|e| NetError::io("read", &path.to_string_lossy(), &e))?;
    Ok(lua.create_string(data)?)
}

/// `stream(path, offset, len) -> function`: a response body function returning the range in
/// chunks of [`CHUNK`] bytes, then `nil`. The file is opened now (so a vanished file fails
/// before the status line is sent) and closed at the end, or when the function is collected.
fn stream(lua: &Lua, a: Args) -> NResult<LuaFunction> {
    let path = path_arg(&a, 1)?;
    let (offset, len) = offset_and_len(&a)?;
    let file = open(&path)?;
    let state = std::cell::RefCell::new(Some((file, offset, len)));
    Ok(func(lua, "static file body", move |lua, _| {
        let mut st = state.borrow_mut();
        let Some((f, pos, left)) = st.as_mut() else { return Ok(None) };
        let want = (*left).min(CHUNK as u64) as usize;
        let data = if want == 0 {
            Vec::new()
        } else {
            read_at(f, *pos, want).map_err(|e| NetError::io("read", &path.to_string_lossy(), &e))?
        };
        if data.is_empty() {
            *st = None; // done (or the file shrank): close it now
            return Ok(None);
        }
        *pos += data.len() as u64;
        *left -= data.len() as u64;
        Ok(Some(lua.create_string(data)?))
    })?)
}

/// `parse_date(s) -> seconds | nil`: an HTTP date (`If-Modified-Since`, `If-Range`).
fn parse_date(_: &Lua, a: Args) -> NResult<Option<u64>> {
    let s = a.string(1)?;
    Ok(httpdate::parse_http_date(s.trim())
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs()))
}

/// The helpers table the router chunk gets: `root`, `lookup`, `read`, `stream`, `parse_date`,
/// and `CHUNK`.
pub fn helpers(lua: &Lua) -> LuaResult<LuaTable> {
    let t = lua.create_table()?;
    t.set(
        "root",
        func(lua, "static", |lua, a: Args| {
            Ok(lua.create_string(canonical_root(&a.bytes(1)?)?.as_os_str().as_bytes())?)
        })?,
    )?;
    t.set("lookup", func(lua, "static lookup", lookup)?)?;
    t.set("read", func(lua, "static read", read)?)?;
    t.set("stream", func(lua, "static stream", stream)?)?;
    t.set("parse_date", func(lua, "static parse_date", parse_date)?)?;
    t.set("CHUNK", CHUNK)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory tree under the system temp dir, removed on drop:
    /// root/{a.txt, .hidden, sub/{index.html, x.css}, empty/, out -> outside/secret, in -> a.txt}
    struct Tree {
        base: PathBuf,
        root: PathBuf,
    }

    impl Tree {
        fn new(tag: &str) -> Tree {
            let base = std::env::temp_dir().join(format!("net-files-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&base);
            let root = base.join("root");
            fs::create_dir_all(root.join("sub")).unwrap();
            fs::create_dir_all(root.join("empty")).unwrap();
            fs::create_dir_all(base.join("outside")).unwrap();
            fs::write(root.join("a.txt"), "hello").unwrap();
            fs::write(root.join(".hidden"), "h").unwrap();
            fs::write(root.join("sub/index.html"), "<p>").unwrap();
            fs::write(root.join("sub/x.css"), "p{}").unwrap();
            fs::write(base.join("outside/secret"), "s").unwrap();
            std::os::unix::fs::symlink(base.join("outside/secret"), root.join("out")).unwrap();
            std::os::unix::fs::symlink(base.join("outside"), root.join("outdir")).unwrap();
            std::os::unix::fs::symlink("a.txt", root.join("in")).unwrap();
            let root = canonical_root(root.as_os_str().as_bytes()).unwrap();
            Tree { base, root }
        }
        fn get(&self, rel: &str) -> Resolved {
            resolve(&self.root, rel.as_bytes(), Some(b"index.html"), false)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    fn file_name(r: &Resolved) -> String {
        match r {
            Resolved::File { path, .. } => path.file_name().unwrap().to_string_lossy().into(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn files_and_index_resolve() {
        let t = Tree::new("ok");
        assert_eq!(file_name(&t.get("/a.txt")), "a.txt");
        assert_eq!(file_name(&t.get("//a.txt")), "a.txt");
        assert_eq!(file_name(&t.get("/./a%2etxt")), "a.txt");
        assert_eq!(file_name(&t.get("/sub/")), "index.html");
        assert_eq!(file_name(&t.get("/in")), "a.txt");
        assert!(matches!(t.get("/sub"), Resolved::Slash));
        assert!(matches!(t.get(""), Resolved::Missing)); // the root has no index
        assert!(matches!(t.get("/empty/"), Resolved::Missing));
        assert!(matches!(t.get("/nope"), Resolved::Missing));
        assert!(matches!(t.get("/a.txt/x"), Resolved::Missing));
        assert!(matches!(t.get("/.hidden"), Resolved::Missing));
        assert_eq!(file_name(&resolve(&t.root, b"/.hidden", None, true)), ".hidden");
        assert!(matches!(resolve(&t.root, b"/sub/", None, false), Resolved::Missing));
    }

    #[test]
    fn traversal_is_refused() {
        let t = Tree::new("bad");
        for rel in [
            "/../outside/secret",
            "/sub/../../outside/secret",
            "/%2e%2e/outside/secret",
            "/%2E%2E/outside/secret",
            "/..%2foutside%2fsecret",
            "/..%2Foutside/secret",
            "/..%5coutside",
            "/a.txt%00.png",
            "/out",
            "/outdir/secret",
            "/..",
        ] {
            assert!(matches!(t.get(rel), Resolved::Refused), "{rel}: {:?}", t.get(rel));
        }
        // looks absolute, but is relative to the root: simply not there
        assert!(matches!(t.get("/etc/passwd"), Resolved::Missing));
        assert!(matches!(t.get("/%2fetc/passwd"), Resolved::Refused));
    }

    #[test]
    fn validators_and_types() {
        assert_eq!(etag(5, Duration::new(1, 2)), "\"5-3b9aca02\"");
        assert_eq!(content_type(Path::new("a.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("a.unknownext")), "application/octet-stream");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
