//! [`detect_type`]: what a blob is, from its first bytes (never from the
//! name a person gave it), and whether a browser may show it inline. This
//! module owns the list of types that are safe inline; it must not trust a
//! file name, an extension or a client's `Content-Type`.

/// How many leading bytes the store keeps for [`detect_type`].
pub const SNIFF_LEN: usize = 8 * 1024;

/// What the content of a blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedType {
    /// The media type to send as `Content-Type`, e.g. `application/pdf` or
    /// `text/plain; charset=utf-8`.
    pub mime: String,
    /// Whether the blob may be shown in the browser (`Content-Disposition:
    /// inline`). Only types that cannot run script in our origin are: PDF,
    /// PNG, JPEG, GIF, WebP and plain UTF-8 text. Everything else must be
    /// served as an attachment.
    pub inline_safe: bool,
    /// The usual extension for the type, without the dot, when there is one.
    pub extension: Option<&'static str>,
}

/// Media types a browser may show inline: none of them can carry script that
/// runs in our origin (browsers show PDFs in a sandboxed viewer).
const INLINE_SAFE: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

/// Whether a type [`detect_type`] gave may be shown inline by a browser:
/// PDF, raster images and plain text; never HTML, SVG, XML or anything
/// unknown. Downloads decide `Content-Disposition` with this.
pub fn is_inline_safe(mime: &str) -> bool {
    INLINE_SAFE.contains(&mime) || mime == PLAIN_TEXT
}

/// The type given to UTF-8 text that is not markup.
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// Detects the type of a blob from its first bytes (up to [`SNIFF_LEN`]).
///
/// Markup is recognised before anything else: text that starts, after a
/// byte-order mark and white space, with a tag (`<html`, `<!doctype html`,
/// `<svg`, `<?xml`, `<script`, …) is `text/html`, `image/svg+xml` or
/// `application/xml`, never `text/plain`, and never inline-safe. Binary
/// formats come from their magic bytes (the `infer` crate). Other valid UTF-8
/// without control characters is plain text; the rest is
/// `application/octet-stream`.
pub fn detect_type(head: &[u8]) -> DetectedType {
    let head = &head[..head.len().min(SNIFF_LEN)];
    let text_start = skip_bom_and_white_space(head);
    if starts_with_tag(text_start) {
        return markup(text_start);
    }
    if let Some(kind) = infer::get(head) {
        let mime = kind.mime_type();
        return DetectedType {
            mime: mime.to_owned(),
            inline_safe: is_inline_safe(mime),
            extension: Some(kind.extension()),
        };
    }
    if is_utf8_text(head) {
        return DetectedType {
            mime: PLAIN_TEXT.to_owned(),
            inline_safe: is_inline_safe(PLAIN_TEXT),
            extension: Some("txt"),
        };
    }
    DetectedType {
        mime: "application/octet-stream".to_owned(),
        inline_safe: false,
        extension: None,
    }
}

fn skip_bom_and_white_space(mut bytes: &[u8]) -> &[u8] {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        bytes = rest;
    }
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0C'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// `<` followed by what can open a tag, a declaration, a comment or a
/// processing instruction. Deliberately broad: browsers sniff far more than
/// the few well-known openings, and a false "HTML" only costs an inline view.
fn starts_with_tag(bytes: &[u8]) -> bool {
    match bytes {
        [b'<', next, ..] => next.is_ascii_alphabetic() || matches!(next, b'!' | b'?' | b'/'),
        _ => false,
    }
}

fn markup(text: &[u8]) -> DetectedType {
    let (mime, extension) = if starts_with_ignore_case(text, b"<!doctype html")
        || starts_with_ignore_case(text, b"<html")
    {
        ("text/html", "html")
    } else if contains_ignore_case(text, b"<svg") {
        ("image/svg+xml", "svg")
    } else if starts_with_ignore_case(text, b"<?xml") {
        ("application/xml", "xml")
    } else {
        ("text/html", "html")
    };
    DetectedType {
        mime: mime.to_owned(),
        inline_safe: false,
        extension: Some(extension),
    }
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains_ignore_case(bytes: &[u8], needle: &[u8]) -> bool {
    bytes
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Valid UTF-8 (a character cut by the end of the sniffed head is fine)
/// without control characters other than tab, line feed, form feed and
/// carriage return.
fn is_utf8_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // `error_len() == None`: the input ends in the middle of a character.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    valid
        && !head
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | b'\x0C')) || b == 0x7F)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real headers of small files, as written by common tools.
    const PDF: &[u8] =
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1F\x15\xC4\x89";
    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";
    const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xFF\xFF\xFF\x00\x00\x00!\xF9\x04";
    const WEBP: &[u8] = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00\x30\x01\x00\x9D\x01\x2A";
    // An empty zip archive (end of central directory only) and one local
    // file header of an archive holding `a.txt`.
    const ZIP: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!\x00\xE8\xB7\x8A\x86\x02\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00a.txthi";

    fn detect(bytes: &[u8]) -> (String, bool, Option<&'static str>) {
        let t = detect_type(bytes);
        (t.mime, t.inline_safe, t.extension)
    }

    #[test]
    fn documents_and_images_are_recognised_and_may_be_shown_inline() {
        assert_eq!(detect(PDF), ("application/pdf".into(), true, Some("pdf")));
        assert_eq!(detect(PNG), ("image/png".into(), true, Some("png")));
        assert_eq!(detect(JPEG), ("image/jpeg".into(), true, Some("jpg")));
        assert_eq!(detect(GIF), ("image/gif".into(), true, Some("gif")));
        assert_eq!(detect(WEBP), ("image/webp".into(), true, Some("webp")));
    }

    #[test]
    fn plain_utf8_text_may_be_shown_inline() {
        let text = "Exercice 1 : résoudre 3x + 2 = 11.\r\n\tÀ rendre lundi.\n".as_bytes();
        assert_eq!(
            detect(text),
            ("text/plain; charset=utf-8".into(), true, Some("txt"))
        );
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), b"Bonjour"].concat();
        assert!(detect_type(&with_bom).inline_safe);
        assert!(detect_type(b"<3 les maths").inline_safe);
    }

    #[test]
    fn text_cut_in_the_middle_of_a_character_is_still_text() {
        let mut head = "é".repeat(SNIFF_LEN).into_bytes();
        head.truncate(SNIFF_LEN - 1);
        assert_eq!(detect_type(&head).mime, "text/plain; charset=utf-8");
    }

    #[test]
    fn markup_is_never_plain_text_and_never_inline() {
        let cases: [(&[u8], &str); 9] = [
            (b"<!DOCTYPE html><html><body>hi</body></html>", "text/html"),
            (b"  \n<html lang=fr>", "text/html"),
            (b"\xEF\xBB\xBF<HTML>", "text/html"),
            (b"<script>alert(1)</script>", "text/html"),
            (b"<iframe src=//evil>", "text/html"),
            (
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
                "image/svg+xml",
            ),
            (
                b"<?xml version=\"1.0\"?>\n<!DOCTYPE svg>\n<svg onload=alert(1)/>",
                "image/svg+xml",
            ),
            (b"<?xml version=\"1.0\"?><note>hi</note>", "application/xml"),
            (b"<!-- a comment --><p>x</p>", "text/html"),
        ];
        for (bytes, mime) in cases {
            let detected = detect_type(bytes);
            assert_eq!(detected.mime, mime, "{:?}", String::from_utf8_lossy(bytes));
            assert!(!detected.inline_safe);
        }
    }

    #[test]
    fn archives_scripts_and_unknown_binaries_are_attachments() {
        let zip = detect_type(ZIP);
        assert_eq!(zip.mime, "application/zip");
        assert_eq!(zip.extension, Some("zip"));
        assert!(!zip.inline_safe);

        assert!(!detect_type(b"#!/bin/sh\nrm -rf ~\n").inline_safe);
        assert!(!detect_type(b"MZ\x90\x00\x03\x00\x00\x00").inline_safe);

        let unknown = detect_type(b"\x00\x01\x02\x03 not a format");
        assert_eq!(unknown.mime, "application/octet-stream");
        assert_eq!(unknown.extension, None);
        assert!(!unknown.inline_safe);

        let latin1 = detect_type(b"caf\xE9 cr\xE8me");
        assert_eq!(latin1.mime, "application/octet-stream");
    }
}
