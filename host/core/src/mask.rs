//! PII masking for logs and traces (LGPD): enough is kept to tell records apart when
//! debugging, never enough to identify a person.
//!
//! These functions never fail: a value that does not have the expected shape is masked
//! entirely rather than printed.

use crate::pix_key::{PixKey, PixKeyType};

/// What is left of a value whose shape is not recognised.
const FULLY_MASKED: &str = "***";

/// Masks a CPF or CNPJ, formatted or not, keeping only middle characters, as the Brazilian
/// government portals publish them: CPF `***.456.789-**`, CNPJ `**.345.678/****-**`.
/// Anything else becomes `***`.
pub fn mask_document(document: &str) -> String {
    let chars: Vec<char> = document.chars().filter(char::is_ascii_alphanumeric).collect();
    let part = |range: std::ops::Range<usize>| chars[range].iter().collect::<String>();
    match chars.len() {
        11 => format!("***.{}.{}-**", part(3..6), part(6..9)),
        14 => format!("**.{}.{}/****-**", part(2..5), part(5..8)),
        _ => FULLY_MASKED.to_owned(),
    }
}

/// Masks a Pix key by type: e-mail `j***@example.com`, phone `+***4321`, CPF/CNPJ as
/// [`mask_document`], EVP its first 8 characters then `***`.
pub fn mask_key(key: &PixKey) -> String {
    let value = key.value();
    match key.kind() {
        PixKeyType::Cpf | PixKeyType::Cnpj => mask_document(value),
        PixKeyType::Email => match (value.chars().next(), value.split_once('@')) {
            (Some(first), Some((_, domain))) => format!("{first}***@{domain}"),
            _ => FULLY_MASKED.to_owned(),
        },
        PixKeyType::Phone => {
            let digits = value.trim_start_matches('+');
            // Short numbers would be shown almost whole; show nothing of them instead.
            match digits.get(digits.len().saturating_sub(4)..) {
                Some(last4) if digits.len() > 4 => format!("+***{last4}"),
                _ => format!("+{FULLY_MASKED}"),
            }
        }
        PixKeyType::Evp => match value.get(..8) {
            Some(head) => format!("{head}***"),
            None => FULLY_MASKED.to_owned(),
        },
    }
}

/// Masks a key that may not be valid (a failed lookup, a raw request field): a recognisable key
/// is masked as [`mask_key`], anything else becomes `***`.
pub fn mask_raw_key(raw: &str) -> String {
    PixKey::infer(raw).map_or_else(|_| FULLY_MASKED.to_owned(), |key| mask_key(&key))
}

/// Keeps the first name and reduces the others to initials, dropping the Portuguese
/// connectives: `Maria da Silva Souza` → `Maria S. S.`.
pub fn mask_name(name: &str) -> String {
    const CONNECTIVES: [&str; 6] = ["da", "das", "de", "do", "dos", "e"];
    let mut words = name.split_whitespace();
    let Some(first) = words.next() else {
        return String::new();
    };
    let mut masked = first.to_owned();
    for word in words.filter(|w| !CONNECTIVES.contains(&w.to_lowercase().as_str())) {
        if let Some(initial) = word.chars().next() {
            masked.push(' ');
            masked.extend(initial.to_uppercase());
            masked.push('.');
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: PixKeyType, value: &str) -> PixKey {
        PixKey::parse(kind, value).unwrap()
    }

    #[test]
    fn documents_keep_only_middle_characters() {
        assert_eq!(mask_document("12345678909"), "***.456.789-**");
        assert_eq!(mask_document("123.456.789-09"), "***.456.789-**", "formatted input too");
        assert_eq!(mask_document("11222333000181"), "**.222.333/****-**");
        assert_eq!(mask_document("11.222.333/0001-81"), "**.222.333/****-**");
        assert_eq!(mask_document("12ABC34501DE35"), "**.ABC.345/****-**");
    }

    #[test]
    fn unrecognised_documents_are_fully_masked() {
        for odd in ["", "1234", "123456789012", "not a document at all"] {
            assert_eq!(mask_document(odd), "***", "{odd:?}");
        }
    }

    #[test]
    fn keys_are_masked_by_type() {
        assert_eq!(mask_key(&key(PixKeyType::Cpf, "12345678909")), "***.456.789-**");
        assert_eq!(mask_key(&key(PixKeyType::Cnpj, "11222333000181")), "**.222.333/****-**");
        assert_eq!(mask_key(&key(PixKeyType::Email, "joana.silva@example.com")), "j***@example.com");
        assert_eq!(mask_key(&key(PixKeyType::Phone, "+5511987654321")), "+***4321");
        assert_eq!(mask_key(&key(PixKeyType::Phone, "+1234")), "+***", "too short to show digits");
        assert_eq!(mask_key(&key(PixKeyType::Evp, "123e4567-e89b-12d3-a456-426614174000")), "123e4567***");
    }

    #[test]
    fn masked_keys_never_contain_the_value() {
        let keys = [
            key(PixKeyType::Cpf, "12345678909"),
            key(PixKeyType::Email, "joana.silva@example.com"),
            key(PixKeyType::Phone, "+5511987654321"),
            key(PixKeyType::Evp, "123e4567-e89b-12d3-a456-426614174000"),
        ];
        for k in &keys {
            assert!(!mask_key(k).contains(k.value()), "{}", mask_key(k));
            assert!(!format!("{k:?}").contains(k.value()), "Debug leaks {k:?}");
        }
    }

    #[test]
    fn raw_keys_are_masked_when_recognised_and_hidden_otherwise() {
        assert_eq!(mask_raw_key("+5511987654321"), "+***4321");
        assert_eq!(mask_raw_key("Joana@Example.com"), "j***@example.com");
        assert_eq!(mask_raw_key("12345678900"), "***", "bad check digits: not a key");
        assert_eq!(mask_raw_key("joana@@example.com"), "***");
    }

    #[test]
    fn names_keep_the_first_name_and_initials() {
        assert_eq!(mask_name("Maria da Silva Souza"), "Maria S. S.");
        assert_eq!(mask_name("  João   DOS santos "), "João S.");
        assert_eq!(mask_name("Érica Ávila"), "Érica Á.");
        assert_eq!(mask_name("Madonna"), "Madonna");
        assert_eq!(mask_name("ACME Pagamentos LTDA"), "ACME P. L.");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_name("   "), "");
    }
}
