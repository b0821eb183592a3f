//! Password hashing with Argon2id and the password policy.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::AppError;

/// Minimum password length in characters.
pub const MIN_LENGTH: usize = 8;

/// Hashes a password into a PHC string (Argon2id, default parameters).
pub fn hash(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(AppError::internal)
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a random password, compared against when the account does not
/// exist, so that a failed login takes the same time either way.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("dangwu-no-such-account").unwrap_or_default())
}

/// Rejects passwords that are too short or use a single kind of character.
pub fn check_policy(field: &str, password: &str) -> Result<(), AppError> {
    let length = password.chars().count();
    let kinds = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .into_iter()
    .filter(|present| *present)
    .count();
    if length < MIN_LENGTH || kinds < 2 {
        return Err(AppError::invalid(
            field,
            format!("密码至少 {MIN_LENGTH} 个字符，且包含字母、数字、符号中的两类"),
            format!(
                "password needs at least {MIN_LENGTH} characters from two of: letters, digits, symbols"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trip() {
        let stored = hash("Dangwu2026").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("Dangwu2026", &stored));
        assert!(!verify("dangwu2026", &stored));
        assert!(!verify("Dangwu2026", "not a hash"));
    }

    #[test]
    fn policy_rejects_weak() {
        assert!(check_policy("password", "short1").is_err());
        assert!(check_policy("password", "allletters").is_err());
        assert!(check_policy("password", "letters123").is_ok());
    }
}
