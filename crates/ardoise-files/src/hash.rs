//! [`BlobHash`], the name of a blob: the SHA-256 of its content in
//! lowercase hexadecimal. It owns the validation of hashes that come from
//! outside (URLs, database rows), because a hash becomes a path on disk and a
//! key in the bucket; it must not accept anything else.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::FilesError;

/// The SHA-256 of a blob's content, 64 lowercase hexadecimal characters.
///
/// Always valid: the only ways to get one are [`BlobHash::parse`] and the
/// store itself, so it can safely be used to build paths and keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobHash(String);

impl BlobHash {
    /// Length of the hexadecimal form.
    pub const LEN: usize = 64;

    /// Checks a hash received from outside. Uppercase is refused rather than
    /// folded so that one blob has exactly one name.
    pub fn parse(value: &str) -> Result<BlobHash, FilesError> {
        let well_formed = value.len() == Self::LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if well_formed {
            Ok(BlobHash(value.to_owned()))
        } else {
            Err(FilesError::BadHash)
        }
    }

    /// Builds the hash of content that has just been digested.
    pub(crate) fn from_digest(digest: &[u8]) -> BlobHash {
        BlobHash(hex::encode(digest))
    }

    /// The 64 hexadecimal characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two levels of fan-out folders (`aa`, `bb`), so that no folder
    /// holds more than a few hundred entries.
    pub(crate) fn fan_out(&self) -> (&str, &str) {
        // Slicing cannot panic: the string is 64 ASCII characters.
        (&self.0[0..2], &self.0[2..4])
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BlobHash {
    type Err = FilesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BlobHash::parse(s)
    }
}

impl TryFrom<String> for BlobHash {
    type Error = FilesError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        BlobHash::parse(&value)
    }
}

impl From<BlobHash> for String {
    fn from(hash: BlobHash) -> String {
        hash.0
    }
}

impl AsRef<str> for BlobHash {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_lowercase_sha256_is_accepted() {
        let hash = BlobHash::parse(GOOD).map(|h| h.to_string());
        assert_eq!(hash.ok().as_deref(), Some(GOOD));
    }

    #[test]
    fn anything_that_could_escape_a_folder_or_alias_a_blob_is_refused() {
        let uppercase = GOOD.to_uppercase();
        let traversal = format!("../x{}", &GOOD[4..]);
        let with_slash = format!("{}/{}", &GOOD[..31], &GOOD[32..]);
        let cases = [
            "../x",
            "",
            &GOOD[..63],
            &format!("{GOOD}0"),
            &uppercase,
            &traversal,
            &with_slash,
            &format!("{} ", &GOOD[..63]),
            &GOOD.replace('e', "g"),
        ];
        for case in cases {
            assert!(
                matches!(BlobHash::parse(case), Err(FilesError::BadHash)),
                "{case:?} should be refused"
            );
        }
    }

    #[test]
    fn serde_goes_through_the_same_validation() {
        let json = format!("\"{GOOD}\"");
        let parsed: Result<BlobHash, _> = serde_json::from_str(&json);
        assert_eq!(parsed.ok().map(String::from).as_deref(), Some(GOOD));
        let back = BlobHash::parse(GOOD)
            .ok()
            .map(|h| serde_json::to_string(&h).ok());
        assert_eq!(back.flatten(), Some(json));
        assert!(serde_json::from_str::<BlobHash>("\"../etc/passwd\"").is_err());
    }
}
