//! Resident identity card numbers (GB 11643-1999): 17 digits and a check
//! character computed with ISO 7064 MOD 11-2.

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Computes the check character for the first 17 digits.
pub fn check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    Some(CHECK_CHARS[(sum % 11) as usize])
}

/// Normalizes (upper-case X) and validates a number; `None` if invalid.
pub fn normalize(number: &str) -> Option<String> {
    let number = number.trim().to_ascii_uppercase();
    if number.len() != 18 {
        return None;
    }
    let (body, check) = number.split_at(17);
    let expected = check_char(body)?;
    check.starts_with(expected).then_some(number)
}

/// Masks all but the first and last character.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 | 2 => "*".repeat(chars.len()),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_char_of_known_number() {
        // The standard's own worked example.
        assert_eq!(check_char("11010519491231002"), Some('X'));
        assert_eq!(
            normalize("11010519491231002x").as_deref(),
            Some("11010519491231002X")
        );
        assert_eq!(normalize("110105194912310021"), None);
        assert_eq!(normalize("1101051949"), None);
    }

    #[test]
    fn mask_keeps_first_and_last() {
        assert_eq!(mask("11010519491231002X"), "1****************X");
    }
}
