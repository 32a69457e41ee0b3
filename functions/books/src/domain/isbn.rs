//! ISBN parsing: accepts ISBN-10 or ISBN-13 (hyphens and spaces allowed), verifies the check
//! digit and normalises to ISBN-13, the form stored and returned.

use std::fmt;

/// A checksum-verified ISBN, always held in its 13-digit form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Isbn(String);

/// Why a text is not an ISBN, worded to follow the field name (`isbn must contain …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IsbnError {
    #[error("must contain 10 or 13 digits (hyphens and spaces are allowed), found {0}")]
    Length(usize),
    #[error("contains '{0}', which is not a digit")]
    Character(char),
    #[error("an ISBN-13 must start with 978 or 979")]
    Prefix,
    #[error("check digit does not match: expected {expected}")]
    Checksum { expected: char },
}

impl Isbn {
    pub(crate) fn parse(raw: &str) -> Result<Self, IsbnError> {
        let compact: Vec<char> = raw.chars().filter(|c| *c != '-' && *c != ' ').collect();
        match compact.len() {
            10 => Self::from_isbn10(&compact),
            13 => Self::from_isbn13(&compact),
            n => Err(IsbnError::Length(n)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn from_isbn10(chars: &[char]) -> Result<Self, IsbnError> {
        let mut digits = [0u32; 9];
        for (slot, c) in digits.iter_mut().zip(chars) {
            *slot = c.to_digit(10).ok_or(IsbnError::Character(*c))?;
        }
        let last = chars[9];
        let expected = isbn10_check_digit(&digits);
        if last.to_ascii_uppercase() != expected {
            if last != 'x' && last != 'X' && !last.is_ascii_digit() {
                return Err(IsbnError::Character(last));
            }
            return Err(IsbnError::Checksum { expected });
        }
        let mut isbn13 = [9, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        isbn13[3..].copy_from_slice(&digits);
        let check = isbn13_check_digit(&isbn13);
        let text: String = isbn13.iter().map(|d| char::from(b'0' + *d as u8)).chain([check]).collect();
        Ok(Self(text))
    }

    fn from_isbn13(chars: &[char]) -> Result<Self, IsbnError> {
        let mut digits = [0u32; 13];
        for (slot, c) in digits.iter_mut().zip(chars) {
            *slot = c.to_digit(10).ok_or(IsbnError::Character(*c))?;
        }
        if digits[..3] != [9, 7, 8] && digits[..3] != [9, 7, 9] {
            return Err(IsbnError::Prefix);
        }
        let mut body = [0u32; 12];
        body.copy_from_slice(&digits[..12]);
        let expected = isbn13_check_digit(&body);
        if chars[12] != expected {
            return Err(IsbnError::Checksum { expected });
        }
        Ok(Self(chars.iter().collect()))
    }
}

fn isbn10_check_digit(digits: &[u32; 9]) -> char {
    let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    match (11 - sum % 11) % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

fn isbn13_check_digit(digits: &[u32; 12]) -> char {
    let sum: u32 = digits.iter().enumerate().map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 }).sum();
    char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0')
}

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn isbn13_with_hyphens_is_accepted() {
        assert_eq!(Isbn::parse("978-0-306-40615-7").unwrap().as_str(), "9780306406157");
    }

    #[test]
    fn isbn10_is_normalised_to_isbn13() {
        assert_eq!(Isbn::parse("0-306-40615-2").unwrap().as_str(), "9780306406157");
        assert_eq!(Isbn::parse("080442957X").unwrap().as_str(), "9780804429573");
        assert_eq!(Isbn::parse("080442957x").unwrap().as_str(), "9780804429573");
    }

    #[test]
    fn bad_checksums_are_rejected() {
        assert_eq!(Isbn::parse("9780306406158"), Err(IsbnError::Checksum { expected: '7' }));
        assert_eq!(Isbn::parse("0306406153"), Err(IsbnError::Checksum { expected: '2' }));
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        assert_eq!(Isbn::parse("12345"), Err(IsbnError::Length(5)));
        assert_eq!(Isbn::parse("97803064061a7"), Err(IsbnError::Character('a')));
        assert_eq!(Isbn::parse("1234567890128"), Err(IsbnError::Prefix));
        assert_eq!(Isbn::parse("X306406152"), Err(IsbnError::Character('X')));
        assert_eq!(Isbn::parse(""), Err(IsbnError::Length(0)));
    }

    fn isbn13_strategy() -> impl Strategy<Value = String> {
        (prop::bool::ANY, prop::array::uniform9(0u32..10)).prop_map(|(nine, rest)| {
            let mut body = [9, 7, if nine { 9 } else { 8 }, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            body[3..].copy_from_slice(&rest);
            let check = isbn13_check_digit(&body);
            body.iter().map(|d| char::from(b'0' + *d as u8)).chain([check]).collect()
        })
    }

    proptest! {
        #[test]
        fn every_valid_isbn13_round_trips(isbn in isbn13_strategy()) {
            let parsed = Isbn::parse(&isbn).unwrap();
            prop_assert_eq!(parsed.as_str(), isbn.as_str());
        }

        #[test]
        fn changing_one_digit_of_an_isbn13_is_detected(isbn in isbn13_strategy(), pos in 3usize..13, delta in 1u32..10) {
            let mut chars: Vec<char> = isbn.chars().collect();
            let digit = chars[pos].to_digit(10).unwrap();
            chars[pos] = char::from_digit((digit + delta) % 10, 10).unwrap();
            let changed: String = chars.into_iter().collect();
            prop_assert!(Isbn::parse(&changed).is_err());
        }

        #[test]
        fn every_valid_isbn10_maps_to_the_978_isbn13(rest in prop::array::uniform9(0u32..10)) {
            let check = isbn10_check_digit(&rest);
            let isbn10: String = rest.iter().map(|d| char::from(b'0' + *d as u8)).chain([check]).collect();
            let isbn13 = Isbn::parse(&isbn10).unwrap();
            prop_assert!(isbn13.as_str().starts_with("978"));
            prop_assert_eq!(&isbn13.as_str()[3..12], &isbn10[..9]);
            prop_assert_eq!(Isbn::parse(isbn13.as_str()).unwrap(), isbn13);
        }

        #[test]
        fn transposing_adjacent_isbn10_digits_is_detected(rest in prop::array::uniform9(0u32..10), pos in 0usize..8) {
            prop_assume!(rest[pos] != rest[pos + 1]);
            let check = isbn10_check_digit(&rest);
            let mut chars: Vec<char> = rest.iter().map(|d| char::from(b'0' + *d as u8)).chain([check]).collect();
            chars.swap(pos, pos + 1);
            let swapped: String = chars.into_iter().collect();
            prop_assert!(Isbn::parse(&swapped).is_err());
        }
    }
}
