//! The Kafka frame: a big-endian `i32` size, then that many bytes (request header + body).
//!
//! [`split_frame`] looks at buffered bytes only: `Ok(None)` means "need more bytes", an error
//! means "bad bytes" (the size is negative or above the limit), and nothing is allocated for a
//! frame before its size has been checked.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ConnError;

/// Bytes of the size prefix.
pub(crate) const SIZE_LEN: usize = 4;

/// Takes one whole frame (without its size prefix) off the front of `buf`, if buffered.
pub(crate) fn split_frame(
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<Option<Bytes>, ConnError> {
    let Some(prefix) = buf.get(..SIZE_LEN) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let len = usize::try_from(size)
        .ok()
        .filter(|&len| len <= max_bytes)
        .ok_or(ConnError::FrameTooLarge {
            size: i64::from(size),
            max: max_bytes,
        })?;
    if buf.len() < SIZE_LEN + len {
        // Room for the rest, now that the size is known to be within the limit.
        buf.reserve(SIZE_LEN + len - buf.len());
        return Ok(None);
    }
    buf.advance(SIZE_LEN);
    Ok(Some(buf.split_to(len).freeze()))
}

/// The fixed start of every request header (all versions): key, version, correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderPrefix {
    /// Which API.
    pub api_key: i16,
    /// Which version of it.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
}

/// Reads the header prefix without consuming the frame; `None` if the frame is shorter.
pub(crate) fn header_prefix(frame: &[u8]) -> Option<HeaderPrefix> {
    let b = frame.get(..8)?;
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&(body.len() as i32).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn partial_frames_need_more_bytes_and_whole_ones_split() {
        let mut whole = framed(b"abcdef");
        whole.extend_from_slice(&framed(b"xy"));
        let mut buf = BytesMut::from(&whole[..3]);
        assert!(split_frame(&mut buf, 100).unwrap().is_none());
        buf.extend_from_slice(&whole[3..7]);
        assert!(split_frame(&mut buf, 100).unwrap().is_none());
        buf.extend_from_slice(&whole[7..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap().unwrap(), &b"abcdef"[..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap().unwrap(), &b"xy"[..]);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_or_negative_sizes_are_bad_bytes_before_any_allocation() {
        let mut buf = BytesMut::from(&(1_000_000_000i32).to_be_bytes()[..]);
        let cap = buf.capacity();
        assert!(matches!(
            split_frame(&mut buf, 1 << 20),
            Err(ConnError::FrameTooLarge {
                size: 1_000_000_000,
                ..
            })
        ));
        assert_eq!(buf.capacity(), cap);
        let mut buf = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert!(matches!(
            split_frame(&mut buf, 1 << 20),
            Err(ConnError::FrameTooLarge { size: -5, .. })
        ));
    }

    #[test]
    fn header_prefix_reads_key_version_and_correlation() {
        let frame = [0, 18, 0, 3, 0, 0, 1, 2, 9];
        let h = header_prefix(&frame).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (18, 3, 258));
        assert!(header_prefix(&frame[..7]).is_none());
    }
}
