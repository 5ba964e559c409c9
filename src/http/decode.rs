//! Response decompression in push mode: compressed pieces go in as they arrive, plain bytes come
//! out, so a streamed or downloaded body is never held whole. `gzip`, `deflate` (zlib-wrapped as
//! HTTP says, or raw as some servers send it) and `br`; what we decode is exactly what the
//! client's `Accept-Encoding` offers.

use std::io::Write;

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// The `Accept-Encoding` the client sends when it decompresses.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br";

pub enum Decoder {
    Gzip(GzDecoder<Vec<u8>>),
    /// `deflate` before its first bytes say whether it is zlib-wrapped or raw.
    Deflate,
    Zlib(ZlibDecoder<Vec<u8>>),
    RawDeflate(DeflateDecoder<Vec<u8>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Vec<u8>>>),
}

/// Whether `data` starts with a zlib header (RFC 1950: method 8, header checksum).
fn is_zlib(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] & 0x0f == 8 && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
}

impl Decoder {
    /// A decoder for a `Content-Encoding` value, if we know it (`identity` needs none).
    pub fn for_encoding(enc: &str) -> Option<Decoder> {
        match enc.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Decoder::Gzip(GzDecoder::new(Vec::new()))),
            "deflate" => Some(Decoder::Deflate),
            "br" => {
                Some(Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(Vec::new(), 16 * 1024))))
            }
            _ => None,
        }
    }

    /// Decodes one piece; returns the plain bytes it yields (maybe none yet).
    pub fn push(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        if let Decoder::Deflate = self {
            if data.is_empty() {
                return Ok(Vec::new());
            }
            *self = if is_zlib(data) {
                Decoder::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Decoder::RawDeflate(DeflateDecoder::new(Vec::new()))
            };
        }
        match self {
            Decoder::Gzip(d) => d.write_all(data)?,
            Decoder::Zlib(d) => d.write_all(data)?,
            Decoder::RawDeflate(d) => d.write_all(data)?,
            Decoder::Brotli(d) => d.write_all(data)?,
            Decoder::Deflate => {}
        }
        Ok(self.take())
    }

    /// The end of the body: the rest of the output; a truncated stream is an error.
    pub fn finish(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => d.try_finish()?,
            Decoder::Zlib(d) => d.try_finish()?,
            Decoder::RawDeflate(d) => d.try_finish()?,
            Decoder::Brotli(d) => d.flush()?,
            Decoder::Deflate => {}
        }
        Ok(self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Decoder::Gzip(d) => std::mem::take(d.get_mut()),
            Decoder::Zlib(d) => std::mem::take(d.get_mut()),
            Decoder::RawDeflate(d) => std::mem::take(d.get_mut()),
            Decoder::Brotli(d) => std::mem::take(d.get_mut()),
            Decoder::Deflate => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn decode_in_pieces(enc: &str, data: &[u8]) -> Vec<u8> {
        let mut d = Decoder::for_encoding(enc).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(7) {
            out.extend(d.push(piece).unwrap());
        }
        out.extend(d.finish().unwrap());
        out
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_in_small_pieces() {
        let plain: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&plain).unwrap();
        assert_eq!(decode_in_pieces("gzip", &g.finish().unwrap()), plain);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(&plain).unwrap();
        assert_eq!(decode_in_pieces("deflate", &z.finish().unwrap()), plain);
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(&plain).unwrap();
        assert_eq!(decode_in_pieces("deflate", &r.finish().unwrap()), plain);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut g = GzEncoder::new(Vec::new(), Compression::default());
        g.write_all(&[7u8; 10_000]).unwrap();
        let z = g.finish().unwrap();
        let mut d = Decoder::for_encoding("gzip").unwrap();
        d.push(&z[..z.len() / 2]).unwrap();
        assert!(d.finish().is_err());
    }

    #[test]
    fn unknown_encodings_are_left_alone() {
        assert!(Decoder::for_encoding("identity").is_none());
        assert!(Decoder::for_encoding("zstd").is_none());
    }
}
