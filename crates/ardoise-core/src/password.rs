//! Password rules, after OWASP ASVS v4 §2.1: at least 12 characters (a
//! passphrase qualifies), at most 128, no composition rules, and a refusal
//! of guessable passwords: common ones (zxcvbn's dictionaries plus a French
//! list) and those built from the person's own names or login.

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 12;
/// Most characters a password may have (ASVS asks to allow at least 64).
pub const MAX_CHARS: usize = 128;

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_CHARS`].
    #[error("a password has at least 12 characters")]
    TooShort,
    /// Longer than [`MAX_CHARS`].
    #[error("a password has at most 128 characters")]
    TooLong,
    /// Found in a list of common passwords, or easy to guess.
    #[error("this password is too common or too easy to guess")]
    TooCommon,
    /// Built from the person's own login or names.
    #[error("a password must not contain your name or login")]
    Personal,
}

/// Common French passwords and stems that zxcvbn's English lists miss.
const FRENCH_COMMON: &[&str] = &[
    "motdepasse",
    "azerty",
    "azertyuiop",
    "soleil",
    "doudou",
    "chouchou",
    "loulou",
    "marseille",
    "bonjour",
    "coucou",
    "jetaime",
    "nicolas",
    "camille",
    "ardoise",
    "college",
    "ecole",
    "eleve",
    "professeur",
    "password",
    "qwerty",
    "123456",
    "football",
    "princesse",
    "tresor",
];

/// Checks a new password against the rules. `personal` holds the login and
/// names of the person choosing it.
pub fn validate_new_password(password: &str, personal: &[&str]) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    let lower = password.to_lowercase();
    let stem: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if FRENCH_COMMON
        .iter()
        .any(|w| stem == *w || lower.trim_end_matches(|c: char| !c.is_alphabetic()) == *w)
    {
        return Err(PasswordError::TooCommon);
    }
    let personal_parts: Vec<String> = personal
        .iter()
        .flat_map(|p| p.split(['.', ' ', '-', '_']))
        .map(str::to_lowercase)
        .filter(|p| p.chars().count() >= 4)
        .collect();
    // Refuse when the person's own names make up most of the password.
    let personal_len: usize = personal_parts
        .iter()
        .filter(|p| lower.contains(p.as_str()))
        .map(|p| p.chars().count())
        .sum();
    if personal_len * 2 >= chars {
        return Err(PasswordError::Personal);
    }
    let inputs: Vec<&str> = personal_parts.iter().map(String::as_str).collect();
    let estimate = zxcvbn::zxcvbn(password, &inputs);
    if u8::from(estimate.score()) < 3 {
        return Err(PasswordError::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_rules_table() {
        let me = ["jean.dupont", "Jean", "Dupont"];
        let table: &[(&str, Result<(), PasswordError>)] = &[
            ("court", Err(PasswordError::TooShort)),
            ("elevenchars", Err(PasswordError::TooShort)),
            ("motdepasse1234", Err(PasswordError::TooCommon)),
            ("azertyuiop!!", Err(PasswordError::TooCommon)),
            ("123456789012", Err(PasswordError::TooCommon)),
            ("passwordpassword", Err(PasswordError::TooCommon)),
            ("aaaaaaaaaaaaaaaa", Err(PasswordError::TooCommon)),
            ("jeandupont2024", Err(PasswordError::Personal)),
            ("cheval agrafe batterie correcte", Ok(())),
            ("Le chat dort sur le radiateur", Ok(())),
            ("tq7!vR2#pLm9", Ok(())),
        ];
        for (pw, expected) in table {
            assert_eq!(&validate_new_password(pw, &me), expected, "{pw}");
        }
        assert_eq!(
            validate_new_password(&"x9!".repeat(43), &me),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 12 accented characters are 24 bytes; they count as 12.
        assert_ne!(
            validate_new_password("éàèùâêîôûçëï", &[]),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            validate_new_password("éàèùâêîôûçë", &[]),
            Err(PasswordError::TooShort)
        );
    }
}
