//! Byte ranges: [`parse_range_header`] reads an HTTP `Range` header
//! (RFC 9110, section 14), and [`check_range`] bounds a requested range by a
//! blob's size. Only single ranges are served; this module must not know
//! about responses or status codes.

use std::ops::Range;

use crate::FilesError;

/// A `Range` header that no byte of the blob can satisfy (a 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The range starts at or after the end of the blob, or asks for an
    /// empty suffix.
    #[error("range not satisfiable")]
    Unsatisfiable,
}

impl From<RangeError> for FilesError {
    fn from(_: RangeError) -> Self {
        FilesError::RangeNotSatisfiable
    }
}

/// Reads a `Range` header for a blob of `size` bytes.
///
/// - `bytes=a-b`, `bytes=a-` and `bytes=-n` give `Ok(Some(range))`, with the
///   end clamped to the size (half-open: `bytes=0-0` is `0..1`);
/// - several ranges, another unit, or a malformed header give `Ok(None)`:
///   the whole blob is served, as RFC 9110 allows a server to ignore the
///   header (multipart responses are not worth their cost here);
/// - a range that starts past the end, or an empty suffix, is `Err`.
pub fn parse_range_header(value: &str, size: u64) -> Result<Option<Range<u64>>, RangeError> {
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else {
        return Ok(None);
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    let spec = spec.trim();
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-n`: the last n bytes.
        (true, false) => {
            let Some(suffix) = digits(last) else {
                return Ok(None);
            };
            // An overflowing suffix is longer than any blob: serve it whole.
            let suffix = suffix.unwrap_or(u64::MAX);
            if suffix == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            Ok(Some(size.saturating_sub(suffix)..size))
        }
        // `bytes=a-` or `bytes=a-b`.
        (false, _) => {
            let Some(start) = digits(first) else {
                return Ok(None);
            };
            let end = if last.is_empty() {
                None
            } else {
                match digits(last) {
                    Some(end) => Some(end.unwrap_or(u64::MAX)),
                    None => return Ok(None),
                }
            };
            // An overflowing start is past the end of any blob.
            let Some(start) = start else {
                return Err(RangeError::Unsatisfiable);
            };
            if let Some(end) = end {
                if end < start {
                    // An invalid range-spec: the header is ignored.
                    return Ok(None);
                }
            }
            if start >= size {
                return Err(RangeError::Unsatisfiable);
            }
            let end = end.map_or(size, |end| end.saturating_add(1).min(size));
            Ok(Some(start..end))
        }
        (true, true) => Ok(None),
    }
}

/// Parses ASCII digits only (no sign, no spaces): `None` if it is not a
/// number, `Some(None)` if it overflows a `u64`.
fn digits(s: &str) -> Option<Option<u64>> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().ok())
}

/// Bounds a requested range by the blob's size: no range means the whole
/// blob; an empty, reversed or overflowing range is refused.
pub(crate) fn check_range(range: Option<Range<u64>>, size: u64) -> Result<Range<u64>, FilesError> {
    match range {
        None => Ok(0..size),
        Some(range) if range.start < range.end && range.end <= size => Ok(range),
        Some(_) => Err(FilesError::RangeNotSatisfiable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_are_read_and_clamped() {
        let ok = |header: &str, size: u64, expected: Range<u64>| {
            assert_eq!(
                parse_range_header(header, size),
                Ok(Some(expected)),
                "{header}"
            );
        };
        ok("bytes=0-0", 100, 0..1);
        ok("bytes=0-99", 100, 0..100);
        ok("bytes=10-19", 100, 10..20);
        ok("bytes=10-", 100, 10..100);
        ok("bytes=99-", 100, 99..100);
        ok("bytes=50-1000", 100, 50..100);
        ok("bytes=-10", 100, 90..100);
        ok("bytes=-1000", 100, 0..100);
        ok("Bytes = 5 - 9", 100, 5..10);
        ok("bytes=0-99999999999999999999999", 100, 0..100);
        ok("bytes=-99999999999999999999999", 100, 0..100);
    }

    #[test]
    fn several_ranges_other_units_and_garbage_serve_the_whole_blob() {
        let cases = [
            "bytes=0-1,5-6",
            "bytes=0-1, 90-",
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=5-2",
            "bytes=0x10-",
            "",
        ];
        for header in cases {
            assert_eq!(parse_range_header(header, 100), Ok(None), "{header:?}");
        }
    }

    #[test]
    fn ranges_past_the_end_and_empty_suffixes_are_unsatisfiable() {
        let cases = [
            ("bytes=100-", 100),
            ("bytes=100-200", 100),
            ("bytes=1000-", 100),
            ("bytes=-0", 100),
            ("bytes=99999999999999999999999-", 100),
            ("bytes=0-", 0),
            ("bytes=-5", 0),
        ];
        for (header, size) in cases {
            assert_eq!(
                parse_range_header(header, size),
                Err(RangeError::Unsatisfiable),
                "{header:?} on {size} bytes"
            );
        }
    }

    #[test]
    fn requested_ranges_must_lie_inside_the_blob() {
        assert_eq!(check_range(None, 10).ok(), Some(0..10));
        assert_eq!(check_range(Some(2..5), 10).ok(), Some(2..5));
        assert_eq!(check_range(Some(0..10), 10).ok(), Some(0..10));
        // `Range { .. }`: a reversed range is the point of the test.
        for bad in [5..5, Range { start: 6, end: 5 }, 0..11, 10..12] {
            assert!(matches!(
                check_range(Some(bad.clone()), 10),
                Err(FilesError::RangeNotSatisfiable)
            ));
        }
    }
}
