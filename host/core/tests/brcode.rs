//! BR Code codec: the public vectors of pix-standards §4.5, one crafted input per error, the
//! builder's emit rules, and properties (round trip, no panics).

use pix_core::brcode::{
    BrCode, BrCodeError, DataObject, InitiationMethod, MAX_PAYLOAD_LEN, PixTarget, Placement, TagPath,
    crc16_ccitt_false, fold_to_ascii, read_data_objects, write_data_object,
};
use pix_core::document::DocumentError;
use pix_core::ids::Ispb;
use pix_core::money::{Money, MoneyError};
use pix_core::pix_key::{PixKey, PixKeyError, PixKeyType};
use proptest::prelude::*;

// pix-standards §4.5, verbatim.
const V1: &str = "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002630462C9";
const V2: &str = "00020101021226760014br.gov.bcb.pix2554pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd4415204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa35319489063047741";
const V3: &str = "00020101021226810014br.gov.bcb.pix2559pix.example.com/qr/v2/cobv/1e6c54d3ec9449b7a7fc53b6b0f998e75204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/3ffa640fa4f14080adccb949fa2dc0d06304A441";
const V4: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";
const V5: &str = "00020104141234567890123426580014BR.GOV.BCB.PIX0136123e4567-e12b-12d1-a456-42665544000027300012BR.COM.OUTRO011001234567895204000053039865406123.455802BR5917NOME DO RECEBEDOR6008BRASILIA61087007490062190515RP12345678-201980390012BR.COM.OUTRO01190123.ABCD.3456.WXYZ6304AD38";
const VECTORS: [&str; 5] = [V1, V2, V3, V4, V5];

const EVP: &str = "123e4567-e12b-12d1-a456-426655440000";

/// One data object, written by hand rather than with the crate's writer.
/// V1's Pix Automático template 80.
const REC_TEMPLATE: &str = "0014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002";

fn tlv(id: &str, value: &str) -> String {
    format!("{id}{:02}{value}", value.chars().count())
}

fn with_crc(body: &str) -> String {
    let body = format!("{body}6304");
    let crc = crc16_ccitt_false(body.as_bytes());
    format!("{body}{crc:04X}")
}

/// V4's fields, in order, for editing.
fn v4_fields() -> Vec<(String, String)> {
    let account = tlv("00", "br.gov.bcb.pix") + &tlv("01", EVP);
    [
        ("00", "01".to_owned()),
        ("26", account),
        ("52", "0000".to_owned()),
        ("53", "986".to_owned()),
        ("58", "BR".to_owned()),
        ("59", "Fulano de Tal".to_owned()),
        ("60", "BRASILIA".to_owned()),
        ("62", tlv("05", "***")),
    ]
    .into_iter()
    .map(|(id, v)| (id.to_owned(), v))
    .collect()
}

fn assemble(fields: &[(String, String)]) -> String {
    with_crc(&fields.iter().map(|(id, v)| tlv(id, v)).collect::<String>())
}

/// V4 with one edit, CRC recomputed so the edit is what gets judged.
fn v4_with(edit: impl FnOnce(&mut Vec<(String, String)>)) -> String {
    let mut fields = v4_fields();
    edit(&mut fields);
    assemble(&fields)
}

fn set(fields: &mut [(String, String)], id: &str, value: &str) {
    let field = fields.iter_mut().find(|(i, _)| i == id).expect("field");
    field.1 = value.to_owned();
}

fn remove(fields: &mut Vec<(String, String)>, id: &str) {
    fields.retain(|(i, _)| i != id);
}

fn account(parts: &[(&str, &str)]) -> String {
    parts.iter().map(|(id, v)| tlv(id, v)).collect()
}

fn parse_err(input: &str) -> BrCodeError {
    BrCode::parse(input).expect_err(input)
}

fn root(id: u8) -> TagPath {
    TagPath::root(id)
}

fn nested(parent: u8, id: u8) -> TagPath {
    TagPath::nested(parent, id)
}

fn evp_key() -> PixKey {
    PixKey::parse(PixKeyType::Evp, EVP).unwrap()
}

// ---------------------------------------------------------------- CRC

#[test]
fn crc16_matches_the_ccitt_false_check_value_and_the_vectors() {
    assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    assert_eq!(crc16_ccitt_false(b""), 0xFFFF, "init value, nothing fed");
    assert_eq!(crc16_ccitt_false(b"A"), 0xB915);
    for vector in VECTORS {
        let (body, crc) = vector.split_at(vector.len() - 4);
        assert!(body.ends_with("6304"));
        assert_eq!(format!("{:04X}", crc16_ccitt_false(body.as_bytes())), crc);
    }
}

// ---------------------------------------------------------------- public vectors

#[test]
fn every_public_vector_parses() {
    for vector in VECTORS {
        let code = BrCode::parse(vector).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(code.merchant_city(), "BRASILIA");
        assert_eq!(code.currency(), "986");
        assert_eq!(code.country_code(), "BR");
    }
}

#[test]
fn canonical_vectors_re_encode_byte_for_byte() {
    for vector in [V1, V2, V3, V4] {
        let code = BrCode::parse(vector).unwrap();
        assert_eq!(code.encode(), vector);
        assert_eq!(code.to_string(), vector);
    }
}

#[test]
fn v4_decodes_as_the_reference_table() {
    let code: BrCode = V4.parse().unwrap();
    assert!(!code.is_dynamic());
    assert!(!code.has_initiation_method());
    assert_eq!(code.initiation_method(), InitiationMethod::Static);
    assert_eq!(code.account().template_id(), 26);
    assert_eq!(code.key(), Some(&evp_key()));
    assert_eq!(code.key().map(PixKey::kind), Some(PixKeyType::Evp));
    assert_eq!(code.location_url(), None);
    assert_eq!(code.merchant_category_code(), "0000");
    assert_eq!(code.amount(), None);
    assert_eq!(code.merchant_name(), "Fulano de Tal");
    assert_eq!(code.merchant_city(), "BRASILIA");
    assert_eq!(code.postal_code(), None);
    assert_eq!(code.raw_txid(), "***");
    assert_eq!(code.txid(), None, "*** is no txid");
    assert_eq!(code.account().description(), None);
    assert_eq!(code.account().fss(), None);
    assert_eq!(code.other_fields().count(), 0);
    assert_eq!(code.recurrence_location_url(), None);
}

#[test]
fn v2_is_a_dynamic_cob_with_a_pix_automatico_template() {
    let code = BrCode::parse(V2).unwrap();
    assert!(code.is_dynamic());
    assert!(code.has_initiation_method());
    assert_eq!(code.initiation_method(), InitiationMethod::Dynamic);
    assert_eq!(code.location_url(), Some("pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd441"));
    assert_eq!(code.key(), None);
    assert_eq!(code.amount(), None);
    assert_eq!(code.raw_txid(), "***");
    assert_eq!(code.txid(), None);
    let templates: Vec<_> = code.unreserved_templates().collect();
    assert_eq!(templates, [(80, "0014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa353194890")]);
    assert_eq!(code.recurrence_location_url(), Some("pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa353194890"));
}

#[test]
fn v3_points_at_a_cobv_location() {
    let code = BrCode::parse(V3).unwrap();
    assert!(code.is_dynamic());
    assert_eq!(code.location_url(), Some("pix.example.com/qr/v2/cobv/1e6c54d3ec9449b7a7fc53b6b0f998e7"));
    assert_eq!(code.recurrence_location_url(), Some("pix.example.com/qr/v2/rec/3ffa640fa4f14080adccb949fa2dc0d0"));
}

#[test]
fn v1_has_a_gui_only_pix_template_and_its_location_in_template_80() {
    let code = BrCode::parse(V1).unwrap();
    assert_eq!(code.account().target(), &PixTarget::Unspecified);
    assert!(!code.is_dynamic());
    assert_eq!(code.key(), None);
    assert_eq!(code.location_url(), None);
    assert_eq!(code.recurrence_location_url(), Some("pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002"));
}

#[test]
fn a_gui_only_template_without_pix_automatico_pays_no_one() {
    // V1 without its template 80: the Pix template names neither a key nor a location.
    let bare = with_crc(V1.split("8080").next().unwrap());
    let err = BrCode::parse(&bare).unwrap_err();
    assert!(matches!(err, BrCodeError::InvalidValue { tag, .. } if tag == root(26)), "{err:?}");
    assert!(err.to_string().contains("neither a key"), "{err}");
    // A template 80 of another arrangement does not count.
    let foreign = with_crc(&format!("{}{}", V1.split("8080").next().unwrap(), tlv("80", "0012BR.COM.OUTRO0103abc")));
    assert!(BrCode::parse(&foreign).is_err());
    let unbuilt = BrCode::builder(PixTarget::Unspecified, "Fulano de Tal", "BRASILIA").build().unwrap_err();
    assert!(unbuilt.to_string().contains("neither a key"), "{unbuilt}");
    let built =
        BrCode::builder(PixTarget::Unspecified, "Fulano de Tal", "BRASILIA").other_field(80, REC_TEMPLATE).build();
    assert_eq!(built.unwrap().encode(), V1, "V1 itself is built and parsed");
}

#[test]
fn v5_keeps_the_other_arrangements_and_withholds_its_unforwardable_txid() {
    let code = BrCode::parse(V5).unwrap();
    assert_eq!(code.key(), Some(&evp_key()), "uppercase GUI matched");
    assert_eq!(code.amount(), Some(Money::from_centavos(12345)));
    assert_eq!(code.merchant_name(), "NOME DO RECEBEDOR");
    assert_eq!(code.postal_code(), Some("70074900"));
    assert_eq!(code.raw_txid(), "RP12345678-2019");
    assert_eq!(code.txid(), None, "a '-' cannot go into a pacs.008 TxId");
    let others: Vec<_> = code.other_fields().collect();
    assert_eq!(
        others,
        [
            (4, "12345678901234"),
            (27, "0012BR.COM.OUTRO01100123456789"),
            (80, "0012BR.COM.OUTRO01190123.ABCD.3456.WXYZ"),
        ]
    );
    assert_eq!(code.recurrence_location_url(), None, "template 80 is not Pix");

    // The only non-canonical part is the uppercase GUI, which we emit lowercase.
    let body = V5[..V5.len() - 4].replace("BR.GOV.BCB.PIX", "br.gov.bcb.pix");
    let expected = format!("{body}{:04X}", crc16_ccitt_false(body.as_bytes()));
    assert_eq!(code.encode(), expected);
    assert_eq!(BrCode::parse(&expected), Ok(code));
}

#[test]
fn our_crafting_helpers_reproduce_v4() {
    assert_eq!(assemble(&v4_fields()), V4);
}

// ---------------------------------------------------------------- errors, one by one

#[test]
fn a_changed_crc_is_rejected_with_both_values() {
    let bad = V4.replace("63041D3D", "63041D3E");
    let err = parse_err(&bad);
    assert_eq!(err, BrCodeError::CrcMismatch { expected: 0x1D3D, found: "1D3E".to_owned() });
    let msg = err.to_string();
    assert!(msg.contains("1D3D") && msg.contains("1D3E"), "{msg}");

    // A change anywhere in the body is caught the same way.
    let tampered = V4.replace("Fulano de Tal", "Fulano de Tai");
    assert!(matches!(parse_err(&tampered), BrCodeError::CrcMismatch { .. }));
    let not_hex = V4.replace("63041D3D", "6304ZZZZ");
    assert!(matches!(parse_err(&not_hex), BrCodeError::CrcMismatch { .. }));
}

#[test]
fn a_lowercase_crc_is_accepted_and_re_encoded_uppercase() {
    let lower = V4.replace("63041D3D", "63041d3d");
    let code = BrCode::parse(&lower).unwrap();
    assert_eq!(code.encode(), V4);
}

#[test]
fn empty_and_oversized_inputs() {
    assert_eq!(parse_err(""), BrCodeError::Empty);
    let long = "0".repeat(MAX_PAYLOAD_LEN + 1);
    assert_eq!(parse_err(&long), BrCodeError::PayloadTooLong { max: 512, found: 513 });
}

#[test]
fn non_numeric_ids_and_lengths_name_the_offset() {
    assert_eq!(parse_err("0A0201"), BrCodeError::NonNumericId { offset: 0, found: "0A".to_owned() });
    let input = V4.replacen("2658", "26x8", 1);
    assert_eq!(parse_err(&input), BrCodeError::NonNumericLength { tag: root(26), offset: 8, found: "x8".to_owned() });
    // Inside the Pix template, offsets still count from the start of the payload.
    let code = v4_with(|f| {
        set(f, "26", "0014br.gov.bcb.pix01x6123");
    });
    let offset = code.find("01x6").unwrap() + 2;
    assert_eq!(parse_err(&code), BrCodeError::NonNumericLength { tag: nested(26, 1), offset, found: "x6".to_owned() });
    // A non-ASCII id is reported, not sliced through.
    assert_eq!(parse_err("0é0201"), BrCodeError::NonNumericId { offset: 0, found: "0é".to_owned() });
}

#[test]
fn truncation_names_the_offset_and_what_was_missing() {
    assert_eq!(parse_err("0002012"), BrCodeError::Truncated { offset: 6, tag: None, needed: 4, remaining: 1 });
    assert_eq!(
        parse_err("000201260"),
        BrCodeError::Truncated { offset: 6, tag: Some(root(26)), needed: 4, remaining: 3 }
    );
    assert_eq!(
        parse_err(&V4[..40]),
        BrCodeError::Truncated { offset: 6, tag: Some(root(26)), needed: 62, remaining: 34 }
    );
    // A copy-paste that lost the last character.
    assert_eq!(
        parse_err(&V4[..V4.len() - 1]),
        BrCodeError::Truncated { offset: V4.len() - 8, tag: Some(root(63)), needed: 8, remaining: 7 }
    );
    let msg = parse_err("000201260").to_string();
    assert!(msg.contains("offset 6") && msg.contains("26"), "{msg}");
}

#[test]
fn fixed_length_fields_report_the_wrong_length() {
    let cases = [
        (v4_with(|f| set(f, "00", "001")), root(0), 2, 2, 3),
        (v4_with(|f| set(f, "53", "9860")), root(53), 3, 3, 4),
        (v4_with(|f| set(f, "58", "BRA")), root(58), 2, 2, 3),
        (v4_with(|f| set(f, "52", "000")), root(52), 4, 4, 3),
        (v4_with(|f| f.insert(1, ("01".to_owned(), "1".to_owned()))), root(1), 2, 2, 1),
        (
            v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("03", "1234567")]))),
            nested(26, 3),
            8,
            8,
            7,
        ),
    ];
    for (input, tag, min, max, found) in cases {
        assert_eq!(parse_err(&input), BrCodeError::WrongLength { tag, min, max, found }, "{input}");
    }
    // EMV lengths run from 01: a 00 length is wrong wherever it appears.
    let zero = v4_with(|f| set(f, "52", ""));
    assert_eq!(parse_err(&zero), BrCodeError::WrongLength { tag: root(52), min: 1, max: 99, found: 0 });
    // The CRC field itself.
    let short_crc = format!("{}6303ABC", &V4[..V4.len() - 8]);
    assert_eq!(parse_err(&short_crc), BrCodeError::WrongLength { tag: root(63), min: 4, max: 4, found: 3 });
    assert_eq!(
        BrCodeError::WrongLength { tag: root(53), min: 3, max: 3, found: 4 }.to_string(),
        "field 53 (Transaction Currency) must be 3 characters long, got 4"
    );
}

#[test]
fn bounded_fields_report_values_too_long() {
    let cases = [
        (v4_with(|f| set(f, "59", &"N".repeat(26))), root(59), 25, 26),
        (v4_with(|f| set(f, "60", &"C".repeat(16))), root(60), 15, 16),
        (v4_with(|f| f.insert(4, ("54".to_owned(), "12345678901.00".to_owned()))), root(54), 13, 14),
        (v4_with(|f| set(f, "62", &tlv("05", &"a".repeat(26)))), nested(62, 5), 25, 26),
        (v4_with(|f| f.insert(7, ("61".to_owned(), "12345678901".to_owned()))), root(61), 10, 11),
    ];
    for (input, tag, max, found) in cases {
        assert_eq!(parse_err(&input), BrCodeError::ValueTooLong { tag, max, found }, "{input}");
    }
    // Exactly at the limits is fine.
    let at_limit = v4_with(|f| {
        set(f, "59", &"N".repeat(25));
        set(f, "60", &"C".repeat(15));
        f.insert(4, ("54".to_owned(), "9999999999.99".to_owned()));
        set(f, "62", &tlv("05", &"a".repeat(25)));
    });
    let code = BrCode::parse(&at_limit).unwrap();
    assert_eq!(code.amount(), Some(Money::from_centavos(999_999_999_999)));
    assert_eq!(code.txid(), Some("a".repeat(25).as_str()));
}

#[test]
fn duplicate_tags_are_refused_at_every_level() {
    let input = v4_with(|f| f.push(("58".to_owned(), "BR".to_owned())));
    let second = input.rfind("5802BR").unwrap();
    assert_eq!(parse_err(&input), BrCodeError::DuplicateTag { tag: root(58), offset: second });
    let input = v4_with(|f| set(f, "62", &(tlv("05", "***") + &tlv("05", "abc"))));
    let second = input.rfind("0503abc").unwrap();
    assert_eq!(parse_err(&input), BrCodeError::DuplicateTag { tag: nested(62, 5), offset: second });
}

#[test]
fn payload_format_comes_first_and_crc_last() {
    let input = v4_with(|f| f.swap(0, 1));
    assert_eq!(parse_err(&input), BrCodeError::MisplacedTag { tag: root(0), expected: Placement::First });
    // Field 58 after the CRC.
    let mut fields = v4_fields();
    remove(&mut fields, "58");
    let with = assemble(&fields) + &tlv("58", "BR");
    assert_eq!(parse_err(&with), BrCodeError::MisplacedTag { tag: root(63), expected: Placement::Last });
    assert_eq!(
        BrCodeError::MisplacedTag { tag: root(63), expected: Placement::Last }.to_string(),
        "field 63 (CRC) must be the last field"
    );
}

#[test]
fn missing_mandatory_fields_are_named() {
    for id in ["00", "52", "53", "58", "59", "60", "62"] {
        let input = v4_with(|f| remove(f, id));
        let tag = root(id.parse().unwrap());
        assert_eq!(parse_err(&input), BrCodeError::MissingTag { tag }, "{id}");
    }
    let no_crc: String = v4_fields().iter().map(|(id, v)| tlv(id, v)).collect();
    assert_eq!(parse_err(&no_crc), BrCodeError::MissingTag { tag: root(63) });
    let no_txid = v4_with(|f| set(f, "62", &tlv("07", "LOJA01")));
    assert_eq!(parse_err(&no_txid), BrCodeError::MissingTag { tag: nested(62, 5) });
    assert_eq!(
        BrCodeError::MissingTag { tag: root(59) }.to_string(),
        "the mandatory field 59 (Merchant Name) is missing"
    );
}

#[test]
fn a_code_without_a_pix_template_is_not_pix() {
    let input = v4_with(|f| set(f, "26", &account(&[("00", "BR.COM.OUTRO"), ("01", "123")])));
    assert_eq!(parse_err(&input), BrCodeError::NotPix);
    let input = v4_with(|f| remove(f, "26"));
    assert_eq!(parse_err(&input), BrCodeError::NotPix);
}

#[test]
fn the_payload_format_indicator_must_be_01() {
    let input = v4_with(|f| set(f, "00", "02"));
    assert_eq!(parse_err(&input), BrCodeError::WrongPayloadFormat { found: "02".to_owned() });
}

#[test]
fn characters_outside_a_fields_set_are_refused_with_their_offset() {
    let position = |input: &str, c: char| input.chars().position(|x| x == c);
    let cases = [
        (v4_with(|f| set(f, "59", "Fulano\u{7}de Tal")), root(59), '\u{7}'),
        (v4_with(|f| set(f, "60", "BRASI\nLIA")), root(60), '\n'),
        (
            v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", "joão@example.com")]))),
            nested(26, 1),
            'ã',
        ),
        (
            v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("25", "pix.example.com/qr v2")]))),
            nested(26, 25),
            ' ',
        ),
        (v4_with(|f| set(f, "52", "00A0")), root(52), 'A'),
        (v4_with(|f| set(f, "62", &tlv("05", "pedidoç1"))), nested(62, 5), 'ç'),
        (v4_with(|f| f.insert(4, ("54".to_owned(), "١٠".to_owned()))), root(54), '١'),
        (
            v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("03", "1234567A")]))),
            nested(26, 3),
            'A',
        ),
    ];
    for (input, tag, found) in cases {
        assert_eq!(
            parse_err(&input),
            BrCodeError::InvalidCharacter { tag, offset: position(&input, found), found },
            "{input:?}"
        );
    }
}

#[test]
fn keys_must_be_in_dict_format() {
    let with_key = |key: &str| v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", key)])));
    assert_eq!(
        parse_err(&with_key("12345678900")),
        BrCodeError::InvalidKey {
            tag: nested(26, 1),
            source: PixKeyError::Document(DocumentError::CheckDigits { kind: "CPF" })
        }
    );
    assert_eq!(
        parse_err(&with_key("hello")),
        BrCodeError::InvalidKey { tag: nested(26, 1), source: PixKeyError::Unrecognized }
    );
    assert_eq!(
        parse_err(&with_key("5511987654321")),
        BrCodeError::InvalidKey { tag: nested(26, 1), source: PixKeyError::Unrecognized },
        "a phone key needs its +"
    );
    let msg = parse_err(&with_key("12345678900")).to_string();
    assert!(!msg.contains("12345678900"), "keys are not echoed: {msg}");

    // Every DICT key type is read, and normalised the way DICT stores it.
    for (raw, kind, value) in [
        ("12345678909", PixKeyType::Cpf, "12345678909"),
        ("11222333000181", PixKeyType::Cnpj, "11222333000181"),
        ("12abc34501de35", PixKeyType::Cnpj, "12ABC34501DE35"),
        ("+5511987654321", PixKeyType::Phone, "+5511987654321"),
        ("Joana@Example.com", PixKeyType::Email, "joana@example.com"),
        ("+tag@example.com", PixKeyType::Email, "+tag@example.com"),
        ("123E4567-E12B-12D1-A456-426655440000", PixKeyType::Evp, EVP),
    ] {
        let code = BrCode::parse(&with_key(raw)).unwrap_or_else(|e| panic!("{raw}: {e}"));
        let key = code.key().unwrap();
        assert_eq!((key.kind(), key.value()), (kind, value), "{raw}");
    }
}

#[test]
fn amounts_must_be_positive_plain_decimals() {
    let with_amount = |amount: &str| v4_with(|f| f.insert(4, ("54".to_owned(), amount.to_owned())));
    for (amount, source) in [
        ("0.00", MoneyError::NotPositive),
        ("-1.00", MoneyError::NotPositive),
        ("1,00", MoneyError::NotANumber),
        ("1.", MoneyError::NotANumber),
        ("1e3", MoneyError::NotANumber),
        (" 1.00", MoneyError::NotANumber),
        ("1.234", MoneyError::TooManyDecimals),
        // 13 characters as written, 16 in the two-place form we would emit.
        ("9999999999999", MoneyError::AboveMaximum { max: Money::from_centavos(999_999_999_999) }),
    ] {
        assert_eq!(parse_err(&with_amount(amount)), BrCodeError::InvalidAmount { source }, "{amount}");
    }
    // One or no decimal place is read; encoding writes two.
    for (amount, centavos, emitted) in [("10", 1000, "10.00"), ("10.5", 1050, "10.50"), ("0.01", 1, "0.01")] {
        let code = BrCode::parse(&with_amount(amount)).unwrap();
        assert_eq!(code.amount(), Some(Money::from_centavos(centavos)));
        assert!(code.encode().contains(&tlv("54", emitted)));
    }
}

#[test]
fn an_amount_may_not_grow_a_full_code_past_512_characters() {
    // 512 characters with a 99-character filler template sized to fit.
    let sized = |amount: &str, total: usize| {
        let base = v4_with(|f| f.insert(4, ("54".to_owned(), amount.to_owned()))).chars().count();
        let mut fill = total - base;
        v4_with(|f| {
            f.insert(4, ("54".to_owned(), amount.to_owned()));
            let mut id = 80;
            while fill > 0 {
                let len = (fill - 4).min(99);
                f.push((id.to_string(), "x".repeat(len)));
                fill -= len + 4;
                id += 1;
            }
        })
    };
    let full = sized("1.00", MAX_PAYLOAD_LEN);
    assert_eq!(full.chars().count(), MAX_PAYLOAD_LEN);
    assert!(BrCode::parse(&full).is_ok());
    let short = sized("1", MAX_PAYLOAD_LEN);
    assert_eq!(short.chars().count(), MAX_PAYLOAD_LEN);
    assert!(matches!(parse_err(&short), BrCodeError::InvalidValue { tag, .. } if tag == root(54)));
    let roomy = sized("1", MAX_PAYLOAD_LEN - 3);
    let code = BrCode::parse(&roomy).unwrap();
    assert_eq!(code.encode().chars().count(), MAX_PAYLOAD_LEN);
    assert_eq!(BrCode::parse(&code.encode()), Ok(code));
}

#[test]
fn values_outside_the_pix_rules_are_invalid() {
    let invalid = |input: &str, tag: TagPath| match parse_err(input) {
        BrCodeError::InvalidValue { tag: found, reason } => {
            assert_eq!(found, tag, "{input}");
            reason
        }
        other => panic!("{input}: {other:?}"),
    };
    invalid(&v4_with(|f| set(f, "53", "840")), root(53));
    invalid(&v4_with(|f| set(f, "58", "US")), root(58));
    invalid(&v4_with(|f| f.insert(1, ("01".to_owned(), "13".to_owned()))), root(1));
    let both = v4_with(|f| {
        set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("25", "pix.example.com/qr/v2/abc")]))
    });
    assert!(invalid(&both, root(26)).contains("both"));
    let scheme = v4_with(|f| set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("25", "https://pix.example.com/qr")])));
    assert!(invalid(&scheme, nested(26, 25)).contains("scheme"));
    let two_pix = v4_with(|f| {
        let second = f[1].1.clone();
        f.insert(2, ("27".to_owned(), second));
    });
    assert!(invalid(&two_pix, root(27)).contains("Pix GUI"));
}

// ---------------------------------------------------------------- lenient parsing

#[test]
fn accented_free_text_is_read_and_kept_byte_for_byte() {
    let input = v4_with(|f| {
        set(f, "59", "João da Conceição");
        set(f, "60", "São Paulo");
        set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("02", "Pão de queijo")]));
    });
    let code = BrCode::parse(&input).unwrap();
    assert_eq!(code.merchant_name(), "João da Conceição");
    assert_eq!(code.merchant_city(), "São Paulo");
    assert_eq!(code.account().description(), Some("Pão de queijo"));
    assert_eq!(code.encode(), input, "lengths count characters, CRC bytes");
}

#[test]
fn root_fields_may_come_in_any_order_and_are_emitted_ascending() {
    let shuffled = v4_with(|f| {
        let name = f.remove(5);
        f.insert(1, name);
        f.swap(3, 4);
    });
    assert_ne!(shuffled, V4);
    let code = BrCode::parse(&shuffled).unwrap();
    assert_eq!(code.encode(), V4);
}

#[test]
fn the_pix_template_is_found_by_its_gui_anywhere_in_26_to_51() {
    let input = v4_with(|f| {
        f[1].0 = "27".to_owned();
        f.insert(1, ("26".to_owned(), account(&[("00", "BR.COM.OUTRO"), ("01", "123")])));
    });
    let code = BrCode::parse(&input).unwrap();
    assert_eq!(code.account().template_id(), 27);
    assert_eq!(code.key(), Some(&evp_key()));
    assert_eq!(code.other_fields().collect::<Vec<_>>(), [(26, "0012BR.COM.OUTRO0103123")]);
    assert_eq!(code.encode(), input);
}

#[test]
fn other_arrangements_templates_are_kept_even_when_malformed() {
    let input = v4_with(|f| f.insert(2, ("27".to_owned(), "not a template".to_owned())));
    let code = BrCode::parse(&input).unwrap();
    assert_eq!(code.other_fields().collect::<Vec<_>>(), [(27, "not a template")]);
    assert_eq!(code.encode(), input);
    // ...but a broken Pix template reports its own error.
    let broken = v4_with(|f| set(f, "26", "0014br.gov.bcb.pix0199abc"));
    assert!(matches!(
        parse_err(&broken),
        BrCodeError::Truncated { tag: Some(TagPath { parent: Some(26), id: 1 }), .. }
    ));
}

#[test]
fn unmodelled_sub_fields_and_optional_fields_survive_a_round_trip() {
    let input = v4_with(|f| {
        set(
            f,
            "26",
            &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("02", "Pedido 42"), ("03", "00038166"), ("10", "x")]),
        );
        f.insert(7, ("61".to_owned(), "70074-900".to_owned()));
        set(f, "62", &(tlv("05", "PEDIDO42") + &tlv("50", "0017br.gov.bcb.brcode01051.0.0")));
        f.insert(1, ("01".to_owned(), "11".to_owned()));
    });
    let code = BrCode::parse(&input).unwrap();
    assert!(code.has_initiation_method());
    assert_eq!(code.initiation_method(), InitiationMethod::Static);
    assert_eq!(code.account().description(), Some("Pedido 42"));
    assert_eq!(code.account().fss(), Some(&Ispb::parse("00038166").unwrap()));
    assert_eq!(code.account().other_fields().collect::<Vec<_>>(), [(10, "x")]);
    assert_eq!(code.postal_code(), Some("70074-900"), "EMV allows ans..10");
    assert_eq!(code.txid(), Some("PEDIDO42"));
    assert_eq!(code.additional_fields().collect::<Vec<_>>(), [(50, "0017br.gov.bcb.brcode01051.0.0")]);
    assert_eq!(code.encode(), input);
}

#[test]
fn a_dynamic_codes_txid_is_ignored_and_its_amount_kept() {
    let input = v4_with(|f| {
        set(f, "26", &account(&[("00", "br.gov.bcb.pix"), ("25", "pix.example.com/qr/v2/abc")]));
        f.insert(4, ("54".to_owned(), "5.00".to_owned()));
        set(f, "62", &tlv("05", "ABC123"));
    });
    let code = BrCode::parse(&input).unwrap();
    assert!(code.is_dynamic());
    assert_eq!(code.raw_txid(), "ABC123");
    assert_eq!(code.txid(), None, "the manual: ignored on dynamic codes");
    assert_eq!(code.amount(), Some(Money::from_centavos(500)));
}

// ---------------------------------------------------------------- the builder

#[test]
fn a_static_code_is_emitted_in_canonical_form() {
    let code = BrCode::static_code(evp_key(), "Fulano de Tal", "BRASILIA").build().unwrap();
    assert_eq!(code.encode(), V4);

    let code = BrCode::static_code(evp_key(), "NOME DO RECEBEDOR", "BRASILIA")
        .amount(Money::from_centavos(12345))
        .txid("PEDIDO42")
        .description("Pedido 42")
        .fss(Ispb::parse("00038166").unwrap())
        .postal_code("70074900")
        .merchant_category_code("5812")
        .initiation_method(Some(InitiationMethod::Static))
        .other_field(80, "0012BR.COM.OUTRO0103abc")
        .other_field(27, "0012BR.COM.OUTRO0103xyz")
        .build()
        .unwrap();
    let expected = with_crc(
        &[
            tlv("00", "01"),
            tlv("01", "11"),
            tlv("26", &account(&[("00", "br.gov.bcb.pix"), ("01", EVP), ("02", "Pedido 42"), ("03", "00038166")])),
            tlv("27", "0012BR.COM.OUTRO0103xyz"),
            tlv("52", "5812"),
            tlv("53", "986"),
            tlv("54", "123.45"),
            tlv("58", "BR"),
            tlv("59", "NOME DO RECEBEDOR"),
            tlv("60", "BRASILIA"),
            tlv("61", "70074900"),
            tlv("62", &tlv("05", "PEDIDO42")),
            tlv("80", "0012BR.COM.OUTRO0103abc"),
        ]
        .concat(),
    );
    assert_eq!(code.encode(), expected);
    assert_eq!(BrCode::parse(&expected), Ok(code));
}

#[test]
fn a_dynamic_code_gets_01_12_and_no_txid() {
    let url = "pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd441";
    let code = BrCode::dynamic_code(url, "Fulano de Tal", "BRASILIA")
        .other_field(80, "0014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa353194890")
        .build()
        .unwrap();
    assert_eq!(code.encode(), V2);
    assert_eq!(code.raw_txid(), "***");

    let err = BrCode::dynamic_code(url, "F", "B").amount(Money::from_centavos(100)).build().unwrap_err();
    assert!(matches!(err, BrCodeError::InvalidValue { tag, .. } if tag == root(54)));
    let err = BrCode::dynamic_code(url, "F", "B").txid("abc").build().unwrap_err();
    assert!(matches!(err, BrCodeError::InvalidValue { tag, .. } if tag == nested(62, 5)));
    let err = BrCode::dynamic_code("https://pix.example.com/qr", "F", "B").build().unwrap_err();
    assert!(matches!(err, BrCodeError::InvalidValue { tag, .. } if tag == nested(26, 25)));
    let err = BrCode::dynamic_code("a".repeat(78), "F", "B").build().unwrap_err();
    assert_eq!(err, BrCodeError::ValueTooLong { tag: nested(26, 25), max: 77, found: 78 });
}

#[test]
fn the_builder_folds_names_to_ascii_but_never_truncates() {
    let code = BrCode::static_code(evp_key(), "João da Conceição", "São Paulo")
        .description("Pão de queijo nº 2")
        .build()
        .unwrap();
    assert_eq!(code.merchant_name(), "Joao da Conceicao");
    assert_eq!(code.merchant_city(), "Sao Paulo");
    assert_eq!(code.account().description(), Some("Pao de queijo no 2"));
    assert!(code.encode().is_ascii());
    assert_eq!(fold_to_ascii("Ñandú"), "Nandu");

    let build = |name: &str, city: &str| BrCode::static_code(evp_key(), name, city).build().unwrap_err();
    assert_eq!(build(&"x".repeat(26), "B"), BrCodeError::ValueTooLong { tag: root(59), max: 25, found: 26 });
    assert_eq!(build("F", "Ribeirão das Neves"), BrCodeError::ValueTooLong { tag: root(60), max: 15, found: 18 });
    assert_eq!(build("", "B"), BrCodeError::WrongLength { tag: root(59), min: 1, max: 25, found: 0 });
    assert_eq!(build("Café ☕", "B"), BrCodeError::InvalidCharacter { tag: root(59), offset: None, found: '☕' });
    assert_eq!(build("F", "B\tC"), BrCodeError::InvalidCharacter { tag: root(60), offset: None, found: '\t' });
}

#[test]
fn the_builder_checks_every_optional_field() {
    let base = || BrCode::static_code(evp_key(), "F", "B");
    let err = |b: pix_core::brcode::BrCodeBuilder| b.build().unwrap_err();

    assert_eq!(err(base().amount(Money::ZERO)), BrCodeError::InvalidAmount { source: MoneyError::NotPositive });
    assert_eq!(
        err(base().amount(Money::from_centavos(1_000_000_000_000))),
        BrCodeError::InvalidAmount { source: MoneyError::AboveMaximum { max: Money::from_centavos(999_999_999_999) } }
    );
    assert_eq!(
        err(base().txid("pedido-42")),
        BrCodeError::InvalidCharacter { tag: nested(62, 5), offset: None, found: '-' }
    );
    assert_eq!(
        base().txid("***").build().unwrap(),
        base().build().unwrap(),
        "an explicit *** is what generators write for no txid: the same as not setting one"
    );
    assert_eq!(err(base().txid("**")), BrCodeError::InvalidCharacter { tag: nested(62, 5), offset: None, found: '*' });
    assert_eq!(err(base().txid("a".repeat(26))), BrCodeError::ValueTooLong { tag: nested(62, 5), max: 25, found: 26 });
    assert_eq!(
        err(base().postal_code("70074-900")),
        BrCodeError::WrongLength { tag: root(61), min: 8, max: 8, found: 9 }
    );
    assert_eq!(
        err(base().merchant_category_code("58a2")),
        BrCodeError::InvalidCharacter { tag: root(52), offset: None, found: 'a' }
    );
    assert!(matches!(
        err(base().description("x".repeat(60))),
        BrCodeError::ValueTooLong { tag, max: 99, found: 122 } if tag == root(26)
    ));
    for id in [0, 1, 26, 52, 53, 54, 58, 59, 60, 61, 62, 63, 100] {
        assert!(
            matches!(err(base().other_field(id, "x")), BrCodeError::InvalidValue { tag, .. } if tag == root(id)),
            "{id}"
        );
    }
    assert!(matches!(
        err(base().other_field(27, "0014BR.GOV.BCB.PIX0103abc")),
        BrCodeError::InvalidValue { tag, .. } if tag == root(27)
    ));
    assert!(matches!(
        err(base().other_field(80, "a").other_field(80, "b")),
        BrCodeError::InvalidValue { tag, .. } if tag == root(80)
    ));
    assert!(matches!(
        err(base().other_field(80, "")),
        BrCodeError::WrongLength { tag, .. } if tag == root(80)
    ));
    let mut crowded = base();
    for id in 80..=85 {
        crowded = crowded.other_field(id, "x".repeat(99));
    }
    assert!(matches!(err(crowded), BrCodeError::PayloadTooLong { max: 512, .. }));
}

// ---------------------------------------------------------------- generic TLV

#[test]
fn the_tlv_reader_exposes_ids_values_and_absolute_offsets() {
    let objects = read_data_objects(V4).unwrap();
    let ids: Vec<u8> = objects.iter().map(|o| o.tag.id).collect();
    assert_eq!(ids, [0, 26, 52, 53, 58, 59, 60, 62, 63]);
    assert_eq!(objects[1].offset, 6);
    assert_eq!(objects[1].value_offset(), 10);
    let children = objects[1].children().unwrap();
    assert_eq!(
        children,
        [
            DataObject { tag: nested(26, 0), value: "br.gov.bcb.pix", offset: 10 },
            DataObject { tag: nested(26, 1), value: EVP, offset: 28 },
        ]
    );
    assert!(read_data_objects("").unwrap().is_empty());
}

#[test]
fn the_tlv_writer_checks_ids_and_lengths() {
    let mut out = String::new();
    write_data_object(&mut out, root(59), "Fulano de Tal").unwrap();
    write_data_object(&mut out, nested(62, 5), "***").unwrap();
    write_data_object(&mut out, root(60), "São").unwrap();
    assert_eq!(out, "5913Fulano de Tal0503***6003São");
    assert!(matches!(write_data_object(&mut out, root(100), "x"), Err(BrCodeError::InvalidValue { .. })));
    assert_eq!(
        write_data_object(&mut out, root(80), &"x".repeat(100)),
        Err(BrCodeError::WrongLength { tag: root(80), min: 1, max: 99, found: 100 })
    );
    assert!(write_data_object(&mut out, root(80), "").is_err());
}

#[test]
fn tag_paths_print_as_the_manuals_write_them() {
    assert_eq!(root(0).to_string(), "00");
    assert_eq!(nested(26, 1).to_string(), "26.01");
    assert_eq!(nested(62, 5).name(), "Reference Label (txid)");
    assert_eq!(root(85).name(), "Unreserved Template");
}

// ---------------------------------------------------------------- properties

fn cpf_digit(digits: &[u32]) -> u32 {
    let sum: u32 = digits.iter().rev().zip(2..).map(|(d, w)| d * w).sum();
    sum * 10 % 11 % 10
}

fn cnpj_digit(values: &[u32]) -> u32 {
    let sum: u32 = values.iter().rev().zip((2..=9).cycle()).map(|(v, w)| v * w).sum();
    match sum % 11 {
        0 | 1 => 0,
        r => 11 - r,
    }
}

fn cpf_key() -> impl Strategy<Value = PixKey> {
    prop::collection::vec(0u32..10, 9).prop_filter("all digits equal", |d| d.iter().any(|x| *x != d[0])).prop_map(
        |mut digits| {
            digits.push(cpf_digit(&digits));
            digits.push(cpf_digit(&digits));
            let text: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
            PixKey::parse(PixKeyType::Cpf, &text).unwrap()
        },
    )
}

fn cnpj_key() -> impl Strategy<Value = PixKey> {
    "[0-9A-Z]{12}".prop_filter("all equal", |s| s.bytes().any(|b| b != s.as_bytes()[0])).prop_map(|base| {
        let mut values: Vec<u32> = base.bytes().map(|b| u32::from(b - b'0')).collect();
        values.push(cnpj_digit(&values));
        values.push(cnpj_digit(&values));
        let check: String = values[12..].iter().map(|d| char::from(b'0' + *d as u8)).collect();
        PixKey::parse(PixKeyType::Cnpj, &format!("{base}{check}")).unwrap()
    })
}

fn any_key() -> impl Strategy<Value = PixKey> {
    let of = |kind: PixKeyType, pattern: &'static str| pattern.prop_map(move |s| PixKey::parse(kind, &s).unwrap());
    prop_oneof![
        cpf_key(),
        cnpj_key(),
        of(PixKeyType::Email, "[a-z0-9+][a-z0-9._+-]{0,15}@[a-z0-9]{1,10}(\\.[a-z]{2,6})?"),
        of(PixKeyType::Phone, "\\+[1-9][0-9]{1,13}"),
        of(PixKeyType::Evp, "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    ]
}

fn any_target() -> impl Strategy<Value = PixTarget> {
    prop_oneof![
        3 => any_key().prop_map(PixTarget::Key),
        2 => "[a-z0-9.-]{1,15}/[A-Za-z0-9/._~-]{1,20}".prop_map(PixTarget::Location),
        1 => Just(PixTarget::Unspecified),
    ]
}

fn other_id() -> impl Strategy<Value = u8> {
    prop_oneof![2u8..=25, 27u8..=51, 55u8..=57, 64u8..=99]
}

#[derive(Debug, Clone)]
struct Model {
    target: PixTarget,
    name: String,
    city: String,
    mcc: String,
    initiation: Option<Option<InitiationMethod>>,
    amount: Option<i64>,
    txid: Option<String>,
    description: Option<String>,
    fss: Option<String>,
    postal_code: Option<String>,
    others: Vec<(u8, String)>,
}

fn any_model() -> impl Strategy<Value = Model> {
    let method = prop_oneof![Just(None), Just(Some(InitiationMethod::Static)), Just(Some(InitiationMethod::Dynamic))];
    (
        (
            any_target(),
            "[A-Za-z0-9][A-Za-z0-9 ]{0,24}",
            "[A-Za-z ]{1,15}",
            "[0-9]{4}",
            prop::option::of(method),
            prop::option::of(1i64..=999_999_999_999),
        ),
        (
            prop::option::of("[A-Za-z0-9]{1,25}"),
            prop::option::of("[A-Za-z0-9 .,-]{1,20}"),
            prop::option::of("[0-9]{8}"),
            prop::option::of("[0-9]{8}"),
            prop::collection::btree_map(other_id(), "[ -~]{1,40}", 0..3),
        ),
    )
        .prop_map(
            |((target, name, city, mcc, initiation, amount), (txid, description, fss, postal_code, mut others))| {
                // A GUI-only Pix template is valid only next to a Pix Automático template.
                if target == PixTarget::Unspecified {
                    others.insert(80, REC_TEMPLATE.to_owned());
                }
                Model {
                    target,
                    name,
                    city,
                    mcc,
                    initiation,
                    amount,
                    txid,
                    description,
                    fss,
                    postal_code,
                    others: others.into_iter().collect(),
                }
            },
        )
}

fn build(model: &Model) -> Result<BrCode, BrCodeError> {
    let dynamic = matches!(model.target, PixTarget::Location(_));
    let mut builder =
        BrCode::builder(model.target.clone(), &model.name, &model.city).merchant_category_code(&model.mcc);
    if let Some(method) = model.initiation {
        builder = builder.initiation_method(method);
    }
    if let (Some(centavos), false) = (model.amount, dynamic) {
        builder = builder.amount(Money::from_centavos(centavos));
    }
    if let (Some(txid), false) = (&model.txid, dynamic) {
        builder = builder.txid(txid);
    }
    if let Some(description) = &model.description {
        builder = builder.description(description);
    }
    if let Some(fss) = &model.fss {
        builder = builder.fss(Ispb::parse(fss).unwrap());
    }
    if let Some(cep) = &model.postal_code {
        builder = builder.postal_code(cep);
    }
    for (id, value) in &model.others {
        builder = builder.other_field(*id, value);
    }
    builder.build()
}

/// Printable ASCII with a bias towards the characters BR Codes are made of.
fn payload_like() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{0,600}", "[0-9A-Za-z.* @+/-]{0,600}", "(0[0-9]|2[6-9]|5[2-9]|6[0-3]|8[0-9])[0-9]{2}[ -~]{0,12}",]
}

/// Data objects with sensible headers, random values, optionally a valid CRC: gets past the
/// TLV layer into the typed checks.
fn tlv_soup() -> impl Strategy<Value = String> {
    let value = prop_oneof!["[ -~]{1,30}", "[0-9a-zA-Z.]{1,20}", "\\PC{1,10}"];
    (any::<bool>(), prop::collection::vec((0u8..100, value), 0..14), any::<bool>()).prop_map(|(pfi, fields, crc)| {
        let mut body = if pfi { "000201".to_owned() } else { String::new() };
        for (id, value) in fields {
            body.push_str(&tlv(&format!("{id:02}"), &value));
        }
        if crc { with_crc(&body) } else { body }
    })
}

/// V4's fields, each kept, dropped or given a random value, plus random extra fields, with a
/// valid CRC: exercises the typed checks behind the structure.
fn field_soup() -> impl Strategy<Value = String> {
    let edit = prop_oneof![
        12 => Just(None),
        1 => Just(Some(String::new())),
        2 => "[ -~]{1,30}".prop_map(Some),
        1 => "\\PC{1,8}".prop_map(Some),
    ];
    let account_edit = prop_oneof![
        3 => Just(None),
        1 => (prop::sample::select(vec!["01", "02", "03", "25", "26"]), "[ -~]{1,40}")
            .prop_map(|(id, v)| Some(account(&[("00", "BR.gov.bcb.PIX"), (id, v.as_str())]))),
    ];
    (prop::collection::vec(edit, 8), account_edit, prop::collection::vec((0u8..100, "[ -~]{1,20}"), 0..3)).prop_map(
        |(edits, account_value, extra)| {
            let mut fields = Vec::new();
            for ((id, value), edit) in v4_fields().into_iter().zip(edits) {
                match edit {
                    Some(v) if v.is_empty() => {} // dropped
                    Some(v) => fields.push((id, v)),
                    None if id == "26" => fields.push((id, account_value.clone().unwrap_or(value))),
                    None => fields.push((id, value)),
                }
            }
            fields.extend(extra.into_iter().map(|(id, v)| (format!("{id:02}"), v)));
            assemble(&fields)
        },
    )
}

/// A public vector with one character replaced, inserted or removed, or cut short; with the CRC
/// recomputed half of the time.
fn mutated_vector() -> impl Strategy<Value = String> {
    (
        0..VECTORS.len(),
        any::<prop::sample::Index>(),
        0..4u8,
        prop_oneof![Just('0'), Just('9'), Just('*'), Just('é'), Just('\u{0}'), any::<char>()],
        any::<bool>(),
    )
        .prop_map(|(vector, at, op, c, fix_crc)| {
            let source = VECTORS[vector];
            let body = &source[..source.len() - 4];
            let mut chars: Vec<char> = if fix_crc { body.chars().collect() } else { source.chars().collect() };
            let i = at.index(chars.len());
            match op {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                2 => {
                    chars.remove(i);
                }
                _ => chars.truncate(i),
            }
            let mutated: String = chars.into_iter().collect();
            if fix_crc && mutated.ends_with("6304") {
                let crc = crc16_ccitt_false(mutated.as_bytes());
                format!("{mutated}{crc:04X}")
            } else {
                mutated
            }
        })
}

/// Whatever parses re-encodes to something that parses back to the same code.
fn check_parse(input: &str) -> Result<(), TestCaseError> {
    if let Ok(code) = BrCode::parse(input) {
        let encoded = code.encode();
        prop_assert_eq!(BrCode::parse(&encoded), Ok(code), "{}", input);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn built_codes_round_trip(model in any_model()) {
        let code = build(&model).map_err(|e| TestCaseError::fail(format!("{model:?}: {e}")))?;
        let encoded = code.encode();
        prop_assert!(encoded.len() <= MAX_PAYLOAD_LEN);
        let parsed = BrCode::parse(&encoded);
        prop_assert_eq!(parsed.as_ref(), Ok(&code));
        prop_assert_eq!(parsed.unwrap().encode(), encoded);
        prop_assert_eq!(code.key(), match &model.target { PixTarget::Key(k) => Some(k), _ => None });
        prop_assert_eq!(code.is_dynamic(), matches!(model.target, PixTarget::Location(_)));
        prop_assert_eq!(code.merchant_name(), model.name.as_str());
        if !code.is_dynamic() {
            prop_assert_eq!(code.amount(), model.amount.map(Money::from_centavos));
            prop_assert_eq!(code.txid(), model.txid.as_deref());
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(input in "\\PC{0,600}") {
        check_parse(&input)?;
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_parse(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn parse_never_panics_on_payload_like_text(input in payload_like()) {
        check_parse(&input)?;
    }

    #[test]
    fn parse_never_panics_on_tlv_soup(input in tlv_soup()) {
        check_parse(&input)?;
    }

    #[test]
    fn parse_never_panics_on_field_soup(input in field_soup()) {
        check_parse(&input)?;
    }

    #[test]
    fn parse_never_panics_on_mutated_vectors(input in mutated_vector()) {
        check_parse(&input)?;
    }
}
