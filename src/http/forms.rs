//! Form bodies: strict urlencoded decoding, repeated fields, and the errors a form shows beside
//! its fields.

use crate::error::AppError;

/// Decodes `application/x-www-form-urlencoded` strictly: percent-escapes that do not make
/// UTF-8 are an error, never replaced with U+FFFD.
pub fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode_component(key)?, decode_component(value)?))
        })
        .collect()
}

fn decode_component(bytes: &[u8]) -> Result<String, String> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| "The form contained text that is not valid UTF-8.".to_string())
}

/// A urlencoded admin form as name/value pairs, for forms with repeated fields (`ids`).
pub struct FormFields(pub Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> Result<FormFields, AppError> {
        decode_form(body)
            .map(FormFields)
            .map_err(AppError::BadRequest)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What was wrong with a submitted form, field by field, in the order found. Pages show each
/// message beside its field (`errors.get("name")` in templates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// Records a problem: the field's name and the message shown beside it.
    pub fn push(&mut self, error: (&'static str, String)) {
        self.0.push(error);
    }

    /// The first message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.0.iter()
    }
}

impl From<Vec<(&'static str, String)>> for FieldErrors {
    fn from(errors: Vec<(&'static str, String)>) -> FieldErrors {
        FieldErrors(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_refuses_invalid_utf8() {
        assert_eq!(
            decode_form(b"name=J%C3%B6rg+M&x").unwrap(),
            vec![
                ("name".to_string(), "Jörg M".to_string()),
                ("x".to_string(), String::new())
            ]
        );
        assert!(decode_form(b"name=%FF%FE").is_err());
    }
}
