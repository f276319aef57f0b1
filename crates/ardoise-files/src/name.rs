//! [`validate_file_name`]: the display name a person gives a file. The name
//! is metadata (stored by the caller, sent back in `Content-Disposition`),
//! never a path: blobs are stored under their hash. This module must not
//! touch the disk.

use crate::FilesError;

/// Longest accepted name, in characters (most file systems allow 255 bytes;
/// a person's download must not fail because of a name we accepted).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Trims a file name and refuses what cannot be a single, visible file
/// name: empty, longer than [`MAX_FILE_NAME_CHARS`] characters, a path
/// separator (`/`, `\`), a control character, `.` or `..`, or a
/// bidirectional-override character (used to disguise `exe` as `pdf`).
/// Returns the trimmed name.
pub fn validate_file_name(name: &str) -> Result<String, FilesError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FilesError::BadName("the name is empty".into()));
    }
    if name.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(FilesError::BadName(format!(
            "the name is longer than {MAX_FILE_NAME_CHARS} characters"
        )));
    }
    if name == "." || name == ".." {
        return Err(FilesError::BadName("the name is only dots".into()));
    }
    if name.contains(['/', '\\']) {
        return Err(FilesError::BadName("the name contains a slash".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(FilesError::BadName(
            "the name contains a control character".into(),
        ));
    }
    if name.chars().any(is_bidi_control) {
        return Err(FilesError::BadName(
            "the name contains a text-direction character".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Unicode's explicit direction marks, embeddings, overrides and isolates:
/// `invoice\u{202E}fdp.exe` displays as `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_trimmed_and_kept() {
        let cases = [
            ("devoir.pdf", "devoir.pdf"),
            (
                "  Leçon 3 — les fractions.odt \n",
                "Leçon 3 — les fractions.odt",
            ),
            ("..hidden", "..hidden"),
            ("photo (1).JPG", "photo (1).JPG"),
            ("数学.txt", "数学.txt"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                validate_file_name(input).ok().as_deref(),
                Some(expected),
                "{input:?}"
            );
        }
    }

    #[test]
    fn names_that_are_not_one_visible_file_name_are_refused() {
        let long = "a".repeat(1000);
        let cases = [
            "",
            "   ",
            ".",
            "..",
            " .. ",
            "a/b.pdf",
            "../../etc/passwd",
            "C:\\Windows\\x.exe",
            "bell\u{7}.txt",
            "nul\0.txt",
            "line\nbreak.txt",
            "c1\u{85}.txt",
            "invoice\u{202E}fdp.exe",
            &long,
        ];
        for input in cases {
            assert!(
                matches!(validate_file_name(input), Err(FilesError::BadName(_))),
                "{input:?} should be refused"
            );
        }
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        assert!(validate_file_name(&"é".repeat(MAX_FILE_NAME_CHARS)).is_ok());
        assert!(validate_file_name(&"é".repeat(MAX_FILE_NAME_CHARS + 1)).is_err());
    }
}
