//! BR Code: the EMV merchant-presented QR payload ("Pix Copia e Cola") of pix-standards §4.
//!
//! [`BrCode::parse`] reads what a payer scans, [`BrCode::encode`] writes what a receiver shows.
//! Parsing is strict on everything that decides who is paid and how much (CRC, key, location
//! URL, amount, currency, structure) and lenient where real generators differ harmlessly: any
//! root order between `00` and `63`, an uppercase GUI, accented names, foreign templates, whose
//! content is kept verbatim so that nothing is lost when a code is re-encoded. Encoding always
//! writes the canonical form: ascending ids, lowercase GUI, two-place amount, uppercase CRC.
//!
//! Decoding the JWS served at a dynamic code's location is the host's job; the JSON inside it is
//! typed here as [`ImmediateCharge`] and [`DueDateCharge`].

mod charge;
mod due_date;
mod error;
mod tlv;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use crate::ids::Ispb;
use crate::money::{Amount, Money};
use crate::pix_key::{PixKey, PixKeyType};

pub use charge::{
    AdditionalInfo, AmountChange, ChargeStatus, DueDateCalendar, DueDateCharge, DueDateValue, ImmediateCalendar,
    ImmediateCharge, ImmediateValue, Party, TaxId,
};
pub use due_date::{
    AmountOrPercent, DatedRate, DiscountModality, DiscountRule, DueDateError, DueDateRules, InterestModality, Rate,
    Rule, is_business_day, last_payable_date, roll_to_business_day,
};
pub use error::{BrCodeError, Placement};
pub use tlv::{DataObject, MAX_VALUE_LEN, TagPath, crc16_ccitt_false, read_data_objects, write_data_object};

/// The GUI of the Pix arrangement, written lowercase as BCB does; matched case-insensitively.
pub const PIX_GUI: &str = "br.gov.bcb.pix";
/// EMV's ceiling for a whole payload, and API Pix's `pixCopiaECola` maxLength.
pub const MAX_PAYLOAD_LEN: usize = 512;
/// ISO 4217 code of the real, the only currency of Pix.
pub const CURRENCY_BRL: &str = "986";
pub const COUNTRY_BR: &str = "BR";
/// The `62.05` value meaning "no txid"; mandatory in dynamic codes.
pub const NO_TXID: &str = "***";

const PAYLOAD_FORMAT: &str = "01";
const DEFAULT_MCC: &str = "0000";
/// DICT `Key` maxLength; API Pix `location` maxLength.
const MAX_KEY_LEN: usize = 77;
const MAX_URL_LEN: usize = 77;
const MAX_NAME_LEN: usize = 25;
const MAX_CITY_LEN: usize = 15;
const MAX_AMOUNT_LEN: usize = 13;
/// The largest amount whose two-place form fits those 13 characters.
const MAX_AMOUNT: Money = Money::from_centavos(999_999_999_999);
const MAX_TXID_LEN: usize = 25;
/// A CEP, which is what we emit; parsing accepts EMV's `ans..10`.
const CEP_LEN: usize = 8;
const MAX_POSTAL_CODE_LEN: usize = 10;
const CRC_LEN: usize = 4;

const ID_FORMAT: u8 = 0;
const ID_INITIATION: u8 = 1;
/// Where we put the Pix template; parsing finds it anywhere in 26-51 by its GUI.
const ID_PIX: u8 = 26;
const ID_MCC: u8 = 52;
const ID_CURRENCY: u8 = 53;
const ID_AMOUNT: u8 = 54;
const ID_COUNTRY: u8 = 58;
const ID_NAME: u8 = 59;
const ID_CITY: u8 = 60;
const ID_POSTAL_CODE: u8 = 61;
const ID_ADDITIONAL: u8 = 62;
const ID_CRC: u8 = 63;
const ACCOUNT_IDS: std::ops::RangeInclusive<u8> = 26..=51;
const UNRESERVED_IDS: std::ops::RangeInclusive<u8> = 80..=99;

const SUB_GUI: u8 = 0;
const SUB_KEY: u8 = 1;
const SUB_INFO: u8 = 2;
const SUB_FSS: u8 = 3;
const SUB_URL: u8 = 25;
const SUB_TXID: u8 = 5;

/// Field `01`. EMV calls 11 static and 12 dynamic; for Pix, 12 means "pay at most once".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitiationMethod {
    /// `11`: the code may be paid many times.
    Static,
    /// `12`: the code must not be paid more than once (cob/cobv).
    Dynamic,
}

impl InitiationMethod {
    pub const fn code(self) -> &'static str {
        match self {
            InitiationMethod::Static => "11",
            InitiationMethod::Dynamic => "12",
        }
    }
}

/// What the Pix template points the payer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixTarget {
    /// `26.01`: a static code; the payer's PSP looks the key up in DICT.
    Key(PixKey),
    /// `26.25`: a dynamic code; the payer's PSP fetches `https://{url}` for the charge.
    Location(String),
    /// Neither: the template carries only its GUI, as in a Pix Automático code whose location
    /// is in template 80 (vector V1).
    Unspecified,
}

/// The Pix merchant account template (normally field 26).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixAccount {
    template_id: u8,
    target: PixTarget,
    description: Option<String>,
    fss: Option<Ispb>,
    other_fields: BTreeMap<u8, String>,
}

impl PixAccount {
    /// The root id of the template: 26 unless another arrangement took it.
    pub fn template_id(&self) -> u8 {
        self.template_id
    }

    pub fn target(&self) -> &PixTarget {
        &self.target
    }

    /// `26.02`, free text the receiver shows the payer.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// `26.03`, the ISPB of the Pix Saque/Troco facilitator.
    pub fn fss(&self) -> Option<&Ispb> {
        self.fss.as_ref()
    }

    /// Sub-fields this crate does not interpret, verbatim.
    pub fn other_fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.other_fields.iter().map(|(id, v)| (*id, v.as_str()))
    }

    fn encode(&self) -> String {
        let mut fields: Vec<(u8, Cow<'_, str>)> = vec![(SUB_GUI, PIX_GUI.into())];
        match &self.target {
            PixTarget::Key(key) => fields.push((SUB_KEY, key.value().into())),
            PixTarget::Location(url) => fields.push((SUB_URL, url.as_str().into())),
            PixTarget::Unspecified => {}
        }
        if let Some(description) = &self.description {
            fields.push((SUB_INFO, description.as_str().into()));
        }
        if let Some(fss) = &self.fss {
            fields.push((SUB_FSS, fss.as_str().into()));
        }
        extend_raw(&mut fields, &self.other_fields);
        write_sorted(fields)
    }
}

/// A decoded or built BR Code. Every value satisfies `BrCode::parse(&code.encode()) == Ok(code)`:
/// fields are private and only [`BrCode::parse`] and [`BrCodeBuilder::build`] create one.
///
/// Currency (986) and country (BR) are fixed for Pix, so they are checked, not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrCode {
    initiation_method: Option<InitiationMethod>,
    account: PixAccount,
    merchant_category_code: String,
    amount: Option<Amount>,
    merchant_name: String,
    merchant_city: String,
    postal_code: Option<String>,
    txid: String,
    additional_fields: BTreeMap<u8, String>,
    other_fields: BTreeMap<u8, String>,
}

impl BrCode {
    /// Parses and validates a payload, CRC included. See the module documentation for what is
    /// strict and what is lenient; the error names the field and the character offset.
    pub fn parse(input: &str) -> Result<BrCode, BrCodeError> {
        if input.is_empty() {
            return Err(BrCodeError::Empty);
        }
        let found = input.chars().count();
        if found > MAX_PAYLOAD_LEN {
            return Err(BrCodeError::PayloadTooLong { max: MAX_PAYLOAD_LEN, found });
        }
        let objects = read_data_objects(input)?;
        check_placement(&objects, ID_FORMAT, Placement::First)?;
        let crc = check_placement(&objects, ID_CRC, Placement::Last)?;
        verify_crc(input, crc)?;

        let format = Text::from(require(&objects, ID_FORMAT)?).exact_len(PAYLOAD_FORMAT.len())?;
        if format.value != PAYLOAD_FORMAT {
            return Err(BrCodeError::WrongPayloadFormat { found: format.value.to_owned() });
        }
        let initiation_method = find(&objects, ID_INITIATION).map(|o| parse_initiation(o.into())).transpose()?;
        let (template, children) = find_pix_template(&objects)?;
        let account = parse_account(template, &children)?;
        let merchant_category_code = parse_mcc(require(&objects, ID_MCC)?.into())?.to_owned();
        let currency = Text::from(require(&objects, ID_CURRENCY)?).exact_len(3)?;
        if currency.value != CURRENCY_BRL {
            return Err(currency.invalid("Pix is always in reais: the currency must be 986"));
        }
        let amount = match find(&objects, ID_AMOUNT) {
            Some(object) => Some(parse_amount(object.into(), found)?),
            None => None,
        };
        let country = Text::from(require(&objects, ID_COUNTRY)?).exact_len(2)?;
        if country.value != COUNTRY_BR {
            return Err(country.invalid("Pix codes are Brazilian: the country must be BR"));
        }
        let merchant_name = Text::from(require(&objects, ID_NAME)?)
            .len_within(1, MAX_NAME_LEN)?
            .chars_where(is_free_text)?
            .value
            .to_owned();
        let merchant_city = Text::from(require(&objects, ID_CITY)?)
            .len_within(1, MAX_CITY_LEN)?
            .chars_where(is_free_text)?
            .value
            .to_owned();
        let postal_code = find(&objects, ID_POSTAL_CODE)
            .map(|o| {
                Text::from(o)
                    .len_within(1, MAX_POSTAL_CODE_LEN)?
                    .chars_where(is_printable_ascii)
                    .map(|t| t.value.to_owned())
            })
            .transpose()?;
        let additional = require(&objects, ID_ADDITIONAL)?.children()?;
        let txid = find(&additional, SUB_TXID)
            .ok_or(BrCodeError::MissingTag { tag: TagPath::nested(ID_ADDITIONAL, SUB_TXID) })?;
        let txid = Text::from(txid).len_within(1, MAX_TXID_LEN)?.chars_where(is_printable_ascii)?.value.to_owned();
        let additional_fields = raw_fields(&additional, |id| id != SUB_TXID);
        let other_fields = raw_fields(&objects, |id| {
            id != template.tag.id
                && !matches!(id, ID_FORMAT | ID_INITIATION | ID_MCC | ID_CURRENCY | ID_AMOUNT | ID_COUNTRY..=ID_CRC)
        });
        check_target_present(&account, template.tag, &other_fields)?;
        Ok(BrCode {
            initiation_method,
            account,
            merchant_category_code,
            amount,
            merchant_name,
            merchant_city,
            postal_code,
            txid,
            additional_fields,
            other_fields,
        })
    }

    /// The canonical payload: ascending ids, `63` last with an uppercase CRC.
    pub fn encode(&self) -> String {
        let mut fields: Vec<(u8, Cow<'_, str>)> = vec![(ID_FORMAT, PAYLOAD_FORMAT.into())];
        if let Some(method) = self.initiation_method {
            fields.push((ID_INITIATION, method.code().into()));
        }
        fields.push((self.account.template_id, self.account.encode().into()));
        fields.push((ID_MCC, self.merchant_category_code.as_str().into()));
        fields.push((ID_CURRENCY, CURRENCY_BRL.into()));
        if let Some(amount) = self.amount {
            fields.push((ID_AMOUNT, amount.to_string().into()));
        }
        fields.push((ID_COUNTRY, COUNTRY_BR.into()));
        fields.push((ID_NAME, self.merchant_name.as_str().into()));
        fields.push((ID_CITY, self.merchant_city.as_str().into()));
        if let Some(postal_code) = &self.postal_code {
            fields.push((ID_POSTAL_CODE, postal_code.as_str().into()));
        }
        fields.push((ID_ADDITIONAL, self.encode_additional().into()));
        extend_raw(&mut fields, &self.other_fields);
        let mut out = write_sorted(fields);
        let _ = write!(out, "{ID_CRC:02}{CRC_LEN:02}");
        let crc = crc16_ccitt_false(out.as_bytes());
        let _ = write!(out, "{crc:04X}");
        out
    }

    fn encode_additional(&self) -> String {
        let mut fields: Vec<(u8, Cow<'_, str>)> = vec![(SUB_TXID, self.txid.as_str().into())];
        extend_raw(&mut fields, &self.additional_fields);
        write_sorted(fields)
    }

    /// Starts a code for any target; [`BrCode::static_code`] and [`BrCode::dynamic_code`] are the
    /// usual cases.
    pub fn builder(
        target: PixTarget,
        merchant_name: impl Into<String>,
        merchant_city: impl Into<String>,
    ) -> BrCodeBuilder {
        BrCodeBuilder::new(target, merchant_name.into(), merchant_city.into())
    }

    /// A code paying a DICT key; the amount and txid are optional.
    pub fn static_code(
        key: PixKey,
        merchant_name: impl Into<String>,
        merchant_city: impl Into<String>,
    ) -> BrCodeBuilder {
        BrCode::builder(PixTarget::Key(key), merchant_name, merchant_city)
    }

    /// A code pointing at a cob/cobv location, given without scheme (`pix.example.com/qr/v2/…`).
    /// It gets `01=12` and `62.05=***`, as pix-standards §4.6 requires.
    pub fn dynamic_code(
        location_url: impl Into<String>,
        merchant_name: impl Into<String>,
        merchant_city: impl Into<String>,
    ) -> BrCodeBuilder {
        BrCode::builder(PixTarget::Location(location_url.into()), merchant_name, merchant_city)
    }

    /// Dynamic means "fetch the charge from 26.25", the classification of pix-standards §4.6.
    /// Field `01` says something else (whether the code may be paid twice); see
    /// [`BrCode::initiation_method`].
    pub fn is_dynamic(&self) -> bool {
        matches!(self.account.target, PixTarget::Location(_))
    }

    /// Field `01` as written; absent means static (reusable).
    pub fn initiation_method(&self) -> InitiationMethod {
        self.initiation_method.unwrap_or(InitiationMethod::Static)
    }

    /// Whether field `01` is present at all (static codes usually omit it).
    pub fn has_initiation_method(&self) -> bool {
        self.initiation_method.is_some()
    }

    pub fn account(&self) -> &PixAccount {
        &self.account
    }

    /// The DICT key of a static code.
    pub fn key(&self) -> Option<&PixKey> {
        match &self.account.target {
            PixTarget::Key(key) => Some(key),
            _ => None,
        }
    }

    /// The location of a dynamic code, without scheme.
    pub fn location_url(&self) -> Option<&str> {
        match &self.account.target {
            PixTarget::Location(url) => Some(url),
            _ => None,
        }
    }

    /// The location of a Pix Automático recurrence (`80.25` in a template whose GUI is Pix; the
    /// first such template from 80 to 99), as in vectors V1-V3.
    pub fn recurrence_location_url(&self) -> Option<&str> {
        recurrence_location(&self.other_fields)
    }

    /// Field `54`. A dynamic code should not carry one: its amount is in the location payload.
    pub fn amount(&self) -> Option<Money> {
        self.amount.map(Amount::money)
    }

    /// The txid to forward as the pacs.008 `TxId`: `62.05` of a static code when it matches
    /// `[A-Za-z0-9]{1,25}`. `None` for `***`, for values such as V5's `RP12345678-2019`, and
    /// for every dynamic code, whose `62.05` the manual says to ignore (the location payload has
    /// the txid).
    pub fn txid(&self) -> Option<&str> {
        let usable = !self.is_dynamic() && self.txid.bytes().all(|b| b.is_ascii_alphanumeric());
        usable.then_some(self.txid.as_str())
    }

    /// `62.05` exactly as written, `***` included.
    pub fn raw_txid(&self) -> &str {
        &self.txid
    }

    pub fn merchant_category_code(&self) -> &str {
        &self.merchant_category_code
    }

    pub fn currency(&self) -> &'static str {
        CURRENCY_BRL
    }

    pub fn country_code(&self) -> &'static str {
        COUNTRY_BR
    }

    pub fn merchant_name(&self) -> &str {
        &self.merchant_name
    }

    pub fn merchant_city(&self) -> &str {
        &self.merchant_city
    }

    pub fn postal_code(&self) -> Option<&str> {
        self.postal_code.as_deref()
    }

    /// Sub-fields of template 62 other than the txid, verbatim.
    pub fn additional_fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.additional_fields.iter().map(|(id, v)| (*id, v.as_str()))
    }

    /// Root fields this crate does not interpret (other arrangements 02-51, 55-57, 64-99), verbatim
    /// and in id order.
    pub fn other_fields(&self) -> impl Iterator<Item = (u8, &str)> {
        self.other_fields.iter().map(|(id, v)| (*id, v.as_str()))
    }

    /// The unreserved templates 80-99, verbatim.
    pub fn unreserved_templates(&self) -> impl Iterator<Item = (u8, &str)> {
        self.other_fields.range(UNRESERVED_IDS).map(|(id, v)| (*id, v.as_str()))
    }
}

/// The payload, as `encode` writes it.
impl fmt::Display for BrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for BrCode {
    type Err = BrCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BrCode::parse(s)
    }
}

/// Collects the fields of a code to emit and checks them all at once in [`BrCodeBuilder::build`].
///
/// What we emit follows pix-standards §4.6: names are folded to ASCII ([`fold_to_ascii`]) but
/// never truncated, the txid is `[A-Za-z0-9]{1,25}` or absent (`***`), a dynamic code has no
/// amount and no txid, a postal code is a CEP of 8 digits.
#[derive(Debug, Clone)]
pub struct BrCodeBuilder {
    target: PixTarget,
    merchant_name: String,
    merchant_city: String,
    initiation_method: Option<InitiationMethod>,
    merchant_category_code: String,
    amount: Option<Money>,
    txid: Option<String>,
    description: Option<String>,
    fss: Option<Ispb>,
    postal_code: Option<String>,
    other_fields: Vec<(u8, String)>,
}

impl BrCodeBuilder {
    fn new(target: PixTarget, merchant_name: String, merchant_city: String) -> BrCodeBuilder {
        let initiation_method = matches!(target, PixTarget::Location(_)).then_some(InitiationMethod::Dynamic);
        BrCodeBuilder {
            target,
            merchant_name,
            merchant_city,
            initiation_method,
            merchant_category_code: DEFAULT_MCC.to_owned(),
            amount: None,
            txid: None,
            description: None,
            fss: None,
            postal_code: None,
            other_fields: Vec::new(),
        }
    }

    /// Overrides field `01` (default: `12` for a location, absent otherwise).
    pub fn initiation_method(mut self, method: Option<InitiationMethod>) -> Self {
        self.initiation_method = method;
        self
    }

    /// Four digits; default `0000`.
    pub fn merchant_category_code(mut self, code: impl Into<String>) -> Self {
        self.merchant_category_code = code.into();
        self
    }

    pub fn amount(mut self, amount: Money) -> Self {
        self.amount = Some(amount);
        self
    }

    pub fn txid(mut self, txid: impl Into<String>) -> Self {
        self.txid = Some(txid.into());
        self
    }

    /// `26.02`; it shares the 99 characters of template 26 with the GUI and the key.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn fss(mut self, ispb: Ispb) -> Self {
        self.fss = Some(ispb);
        self
    }

    pub fn postal_code(mut self, cep: impl Into<String>) -> Self {
        self.postal_code = Some(cep.into());
        self
    }

    /// A root field this crate does not model (another arrangement 02-25 or 27-51, 55-57,
    /// 64-99), emitted verbatim: for example a Pix Automático template 80.
    pub fn other_field(mut self, id: u8, value: impl Into<String>) -> Self {
        self.other_fields.push((id, value.into()));
        self
    }

    /// Validates every field and the template and payload lengths.
    pub fn build(self) -> Result<BrCode, BrCodeError> {
        let dynamic = matches!(self.target, PixTarget::Location(_));
        let target = match self.target {
            PixTarget::Location(url) => {
                let tag = TagPath::nested(ID_PIX, SUB_URL);
                PixTarget::Location(parse_url(Text::built(tag, &url))?.to_owned())
            }
            other => other,
        };
        let description =
            self.description.map(|d| fold_text(TagPath::nested(ID_PIX, SUB_INFO), &d, MAX_VALUE_LEN)).transpose()?;
        let merchant_name = fold_text(TagPath::root(ID_NAME), &self.merchant_name, MAX_NAME_LEN)?;
        let merchant_city = fold_text(TagPath::root(ID_CITY), &self.merchant_city, MAX_CITY_LEN)?;
        let merchant_category_code =
            parse_mcc(Text::built(TagPath::root(ID_MCC), &self.merchant_category_code))?.to_owned();
        let amount = match self.amount {
            Some(_) if dynamic => {
                return Err(BrCodeError::InvalidValue {
                    tag: TagPath::root(ID_AMOUNT),
                    reason: "a dynamic code takes its amount from the location payload",
                });
            }
            Some(money) => Some(build_amount(money)?),
            None => None,
        };
        let txid_tag = TagPath::nested(ID_ADDITIONAL, SUB_TXID);
        let txid = match self.txid {
            Some(_) if dynamic => {
                return Err(BrCodeError::InvalidValue {
                    tag: txid_tag,
                    reason: "a dynamic code carries *** here; its txid is in the location payload",
                });
            }
            // Generators write `***` for "no txid"; it is what an absent txid encodes to anyway.
            Some(txid) if txid == NO_TXID => txid,
            Some(txid) => {
                Text::built(txid_tag, &txid).len_within(1, MAX_TXID_LEN)?.chars_where(|c| c.is_ascii_alphanumeric())?;
                txid
            }
            None => NO_TXID.to_owned(),
        };
        let postal_code = self
            .postal_code
            .map(|cep| {
                Text::built(TagPath::root(ID_POSTAL_CODE), &cep)
                    .exact_len(CEP_LEN)?
                    .chars_where(|c| c.is_ascii_digit())?;
                Ok(cep)
            })
            .transpose()?;
        let mut other_fields = BTreeMap::new();
        for (id, value) in self.other_fields {
            check_other_field(id, &value)?;
            if other_fields.insert(id, value).is_some() {
                return Err(BrCodeError::InvalidValue { tag: TagPath::root(id), reason: "the field was given twice" });
            }
        }
        let code = BrCode {
            initiation_method: self.initiation_method,
            account: PixAccount {
                template_id: ID_PIX,
                target,
                description,
                fss: self.fss,
                other_fields: BTreeMap::new(),
            },
            merchant_category_code,
            amount,
            merchant_name,
            merchant_city,
            postal_code,
            txid,
            additional_fields: BTreeMap::new(),
            other_fields,
        };
        check_target_present(&code.account, TagPath::root(ID_PIX), &code.other_fields)?;
        let account_len = code.account.encode().chars().count();
        if account_len > MAX_VALUE_LEN {
            return Err(BrCodeError::ValueTooLong {
                tag: TagPath::root(ID_PIX),
                max: MAX_VALUE_LEN,
                found: account_len,
            });
        }
        let found = code.encode().chars().count();
        if found > MAX_PAYLOAD_LEN {
            return Err(BrCodeError::PayloadTooLong { max: MAX_PAYLOAD_LEN, found });
        }
        Ok(code)
    }
}

/// Replaces the accented Latin letters of Portuguese (and Latin-1 generally) with their base
/// letter, `º`/`ª` with `o`/`a` and a no-break space with a space, so names fit EMV's ASCII
/// character set. Anything else is left as is, for the caller's validation to reject.
pub fn fold_to_ascii(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    match c {
        'À'..='Å' => 'A',
        'Ç' => 'C',
        'È'..='Ë' => 'E',
        'Ì'..='Ï' => 'I',
        'Ñ' => 'N',
        'Ò'..='Ö' | 'Ø' => 'O',
        'Ù'..='Ü' => 'U',
        'Ý' => 'Y',
        'à'..='å' | 'ª' => 'a',
        'ç' => 'c',
        'è'..='ë' => 'e',
        'ì'..='ï' => 'i',
        'ñ' => 'n',
        'ò'..='ö' | 'ø' | 'º' => 'o',
        'ù'..='ü' => 'u',
        'ý' | 'ÿ' => 'y',
        '\u{a0}' => ' ',
        other => other,
    }
}

/// A value to validate with the field it belongs to, and where it sits in the parsed payload.
/// Parsing and building share these checks so both accept the same values.
#[derive(Clone, Copy)]
struct Text<'a> {
    tag: TagPath,
    value: &'a str,
    /// Character offset of the value; `None` when building.
    offset: Option<usize>,
}

impl<'a> From<&DataObject<'a>> for Text<'a> {
    fn from(object: &DataObject<'a>) -> Self {
        Text { tag: object.tag, value: object.value, offset: Some(object.value_offset()) }
    }
}

impl<'a> Text<'a> {
    fn built(tag: TagPath, value: &'a str) -> Self {
        Text { tag, value, offset: None }
    }

    fn exact_len(self, len: usize) -> Result<Self, BrCodeError> {
        let found = self.value.chars().count();
        if found == len { Ok(self) } else { Err(BrCodeError::WrongLength { tag: self.tag, min: len, max: len, found }) }
    }

    fn len_within(self, min: usize, max: usize) -> Result<Self, BrCodeError> {
        let found = self.value.chars().count();
        if found > max {
            Err(BrCodeError::ValueTooLong { tag: self.tag, max, found })
        } else if found < min {
            Err(BrCodeError::WrongLength { tag: self.tag, min, max, found })
        } else {
            Ok(self)
        }
    }

    fn chars_where(self, allowed: impl Fn(char) -> bool) -> Result<Self, BrCodeError> {
        match self.value.chars().enumerate().find(|(_, c)| !allowed(*c)) {
            Some((index, found)) => Err(BrCodeError::InvalidCharacter {
                tag: self.tag,
                offset: self.offset.map(|offset| offset + index),
                found,
            }),
            None => Ok(self),
        }
    }

    fn invalid(self, reason: &'static str) -> BrCodeError {
        BrCodeError::InvalidValue { tag: self.tag, reason }
    }
}

/// EMV's "ans" set: printable ASCII, space included.
fn is_printable_ascii(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// Names, cities and descriptions: real generators emit accents, and a payer app only displays
/// them, so any character goes except control characters.
fn is_free_text(c: char) -> bool {
    !c.is_control()
}

fn check_placement<'o, 'a>(
    objects: &'o [DataObject<'a>],
    id: u8,
    expected: Placement,
) -> Result<&'o DataObject<'a>, BrCodeError> {
    let tag = TagPath::root(id);
    let index = objects.iter().position(|o| o.tag.id == id).ok_or(BrCodeError::MissingTag { tag })?;
    let wanted = match expected {
        Placement::First => 0,
        Placement::Last => objects.len().saturating_sub(1),
    };
    if index == wanted {
        objects.get(index).ok_or(BrCodeError::MissingTag { tag })
    } else {
        Err(BrCodeError::MisplacedTag { tag, expected })
    }
}

/// The CRC covers every byte before its own four characters, `6304` included. Lowercase hex is
/// accepted (some generators write it); encoding writes uppercase.
fn verify_crc(input: &str, crc: &DataObject<'_>) -> Result<(), BrCodeError> {
    Text::from(crc).exact_len(CRC_LEN)?;
    // Field 63 is the last object, so its value is the tail of the input.
    let body = input.get(..input.len().saturating_sub(crc.value.len())).unwrap_or_default();
    let expected = crc16_ccitt_false(body.as_bytes());
    if crc.value.eq_ignore_ascii_case(&format!("{expected:04X}")) {
        Ok(())
    } else {
        Err(BrCodeError::CrcMismatch { expected, found: crc.value.to_owned() })
    }
}

fn find<'o, 'a>(objects: &'o [DataObject<'a>], id: u8) -> Option<&'o DataObject<'a>> {
    objects.iter().find(|o| o.tag.id == id)
}

fn require<'o, 'a>(objects: &'o [DataObject<'a>], id: u8) -> Result<&'o DataObject<'a>, BrCodeError> {
    find(objects, id).ok_or(BrCodeError::MissingTag { tag: TagPath::root(id) })
}

fn raw_fields(objects: &[DataObject<'_>], keep: impl Fn(u8) -> bool) -> BTreeMap<u8, String> {
    objects.iter().filter(|o| keep(o.tag.id)).map(|o| (o.tag.id, o.value.to_owned())).collect()
}

fn extend_raw<'a>(fields: &mut Vec<(u8, Cow<'a, str>)>, raw: &'a BTreeMap<u8, String>) {
    fields.extend(raw.iter().map(|(id, v)| (*id, Cow::from(v.as_str()))));
}

fn write_sorted(mut fields: Vec<(u8, Cow<'_, str>)>) -> String {
    fields.sort_by_key(|(id, _)| *id);
    let mut out = String::new();
    for (id, value) in &fields {
        tlv::push(&mut out, *id, value);
    }
    out
}

/// The `25` of the first template in 80-99 whose GUI is Pix: a Pix Automático recurrence.
fn recurrence_location(other_fields: &BTreeMap<u8, String>) -> Option<&str> {
    other_fields.range(UNRESERVED_IDS).find_map(|(id, value)| {
        let template = DataObject { tag: TagPath::root(*id), value, offset: 0 };
        let children = template.children().ok()?;
        has_pix_gui(&children).then(|| find(&children, SUB_URL).map(|url| url.value)).flatten()
    })
}

/// A Pix template with only its GUI says whom to pay only when a Pix Automático template (80-99)
/// carries the location, as in vector V1; otherwise the code pays no one.
fn check_target_present(
    account: &PixAccount,
    tag: TagPath,
    other_fields: &BTreeMap<u8, String>,
) -> Result<(), BrCodeError> {
    if account.target == PixTarget::Unspecified && recurrence_location(other_fields).is_none() {
        return Err(no_target(tag));
    }
    Ok(())
}

fn no_target(tag: TagPath) -> BrCodeError {
    BrCodeError::InvalidValue {
        tag,
        reason: "it carries neither a key (01) nor a location URL (25), and no Pix Automático template (80) \
                 says whom to pay",
    }
}

fn has_pix_gui(children: &[DataObject<'_>]) -> bool {
    find(children, SUB_GUI).is_some_and(|gui| gui.value.eq_ignore_ascii_case(PIX_GUI))
}

/// A broken template that starts with the Pix GUI is ours: report its error instead of "no Pix
/// template".
fn starts_with_pix_gui(value: &str) -> bool {
    value.get(..4) == Some("0014")
        && value.get(4..4 + PIX_GUI.len()).is_some_and(|gui| gui.eq_ignore_ascii_case(PIX_GUI))
}

/// The one template of 26-51 whose GUI is Pix. Other arrangements' templates are not ours to
/// judge, so one that is not even valid TLV is skipped; two Pix templates are refused, since
/// payer apps could disagree on which to pay.
fn find_pix_template<'o, 'a>(
    objects: &'o [DataObject<'a>],
) -> Result<(&'o DataObject<'a>, Vec<DataObject<'a>>), BrCodeError> {
    let mut found = None;
    for object in objects.iter().filter(|o| ACCOUNT_IDS.contains(&o.tag.id)) {
        let children = match object.children() {
            Ok(children) => children,
            Err(err) if starts_with_pix_gui(object.value) => return Err(err),
            Err(_) => continue,
        };
        if !has_pix_gui(&children) {
            continue;
        }
        if found.is_some() {
            return Err(BrCodeError::InvalidValue {
                tag: object.tag,
                reason: "a second template carries the Pix GUI; a code has only one",
            });
        }
        found = Some((object, children));
    }
    found.ok_or(BrCodeError::NotPix)
}

fn parse_account(template: &DataObject<'_>, children: &[DataObject<'_>]) -> Result<PixAccount, BrCodeError> {
    let key = find(children, SUB_KEY).map(|o| parse_key(o.into())).transpose()?;
    let url = find(children, SUB_URL).map(|o| parse_url(o.into())).transpose()?;
    let target = match (key, url) {
        (Some(_), Some(_)) => {
            return Err(BrCodeError::InvalidValue {
                tag: template.tag,
                reason: "it carries both a key (01) and a location URL (25); a code is static or \
                         dynamic, not both",
            });
        }
        (Some(key), None) => PixTarget::Key(key),
        (None, Some(url)) => PixTarget::Location(url.to_owned()),
        (None, None) => PixTarget::Unspecified,
    };
    let description = find(children, SUB_INFO)
        .map(|o| Text::from(o).chars_where(is_free_text).map(|t| t.value.to_owned()))
        .transpose()?;
    let fss = find(children, SUB_FSS)
        .map(|o| {
            let text = Text::from(o).exact_len(8)?.chars_where(|c| c.is_ascii_digit())?;
            Ispb::parse(text.value).map_err(|_| text.invalid("an FSS is an 8-digit ISPB"))
        })
        .transpose()?;
    let other_fields = raw_fields(children, |id| !matches!(id, SUB_GUI | SUB_KEY | SUB_INFO | SUB_FSS | SUB_URL));
    Ok(PixAccount { template_id: template.tag.id, target, description, fss, other_fields })
}

/// A DICT key in DICT format. Anything with `@` is read as an e-mail first: `PixKey::infer` would
/// take `+tag@example.com`, a valid e-mail key, for a phone number.
fn parse_key(text: Text<'_>) -> Result<PixKey, BrCodeError> {
    let text = text.len_within(1, MAX_KEY_LEN)?.chars_where(is_printable_ascii)?;
    let key =
        if text.value.contains('@') { PixKey::parse(PixKeyType::Email, text.value) } else { PixKey::infer(text.value) };
    key.map_err(|source| BrCodeError::InvalidKey { tag: text.tag, source })
}

/// A location is fetched as `https://{url}`, so it must carry no scheme and no space.
fn parse_url(text: Text<'_>) -> Result<&str, BrCodeError> {
    let text = text.len_within(1, MAX_URL_LEN)?.chars_where(|c| ('!'..='~').contains(&c))?;
    if text.value.contains("://") {
        return Err(text.invalid("the location URL must not carry a scheme such as https://"));
    }
    Ok(text.value)
}

fn parse_initiation(text: Text<'_>) -> Result<InitiationMethod, BrCodeError> {
    match text.exact_len(2)?.value {
        "11" => Ok(InitiationMethod::Static),
        "12" => Ok(InitiationMethod::Dynamic),
        _ => Err(text.invalid("it must be 11 (static) or 12 (dynamic, pay once)")),
    }
}

fn parse_mcc(text: Text<'_>) -> Result<&str, BrCodeError> {
    Ok(text.exact_len(4)?.chars_where(|c| c.is_ascii_digit())?.value)
}

/// `123.45`, at most 13 characters, greater than zero. Like `Money::parse`, one or no decimal
/// place is accepted (`10`, `10.5`); encoding writes two.
///
/// Encoding must give back a valid code, so the value must fit 13 characters in two-place form
/// too (`9999999999999` does not), and the code must stay within 512 characters once the amount
/// gains its decimals (`1` becomes `1.00`).
fn parse_amount(text: Text<'_>, payload_len: usize) -> Result<Amount, BrCodeError> {
    let text = text.len_within(1, MAX_AMOUNT_LEN)?.chars_where(is_printable_ascii)?;
    let amount = Amount::parse(text.value).map_err(|source| BrCodeError::InvalidAmount { source })?;
    let amount = check_amount(amount)?;
    let growth = amount.to_string().len().saturating_sub(text.value.len());
    if payload_len + growth > MAX_PAYLOAD_LEN {
        return Err(text.invalid("written with two decimal places it would take the code past 512 characters"));
    }
    Ok(amount)
}

fn build_amount(money: Money) -> Result<Amount, BrCodeError> {
    Amount::new(money).map_err(|source| BrCodeError::InvalidAmount { source }).and_then(check_amount)
}

fn check_amount(amount: Amount) -> Result<Amount, BrCodeError> {
    amount.ensure_at_most(MAX_AMOUNT).map_err(|source| BrCodeError::InvalidAmount { source })
}

/// Folds to ASCII, then requires 1..=max printable ASCII characters.
fn fold_text(tag: TagPath, text: &str, max: usize) -> Result<String, BrCodeError> {
    let folded = fold_to_ascii(text);
    Text::built(tag, &folded).len_within(1, max)?.chars_where(is_printable_ascii)?;
    Ok(folded)
}

/// An unmodelled root field of a built code: a free id, 1..=99 printable ASCII characters, and
/// in 26-51 not a second Pix template.
fn check_other_field(id: u8, value: &str) -> Result<(), BrCodeError> {
    let tag = TagPath::root(id);
    if usize::from(id) > MAX_VALUE_LEN {
        return Err(BrCodeError::InvalidValue { tag, reason: "ids are two digits, 00 to 99" });
    }
    if matches!(id, ID_FORMAT | ID_INITIATION | ID_PIX | ID_MCC | ID_CURRENCY | ID_AMOUNT | ID_COUNTRY..=ID_CRC) {
        return Err(BrCodeError::InvalidValue { tag, reason: "this field is set by its own builder method" });
    }
    Text::built(tag, value).len_within(1, MAX_VALUE_LEN)?.chars_where(is_printable_ascii)?;
    let object = DataObject { tag, value, offset: 0 };
    let is_pix =
        ACCOUNT_IDS.contains(&id) && (starts_with_pix_gui(value) || object.children().is_ok_and(|c| has_pix_gui(&c)));
    if is_pix {
        return Err(BrCodeError::InvalidValue {
            tag,
            reason: "a second template carries the Pix GUI; a code has only one",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_covers_portuguese_and_leaves_the_rest() {
        assert_eq!(fold_to_ascii("João Ação Ñandú"), "Joao Acao Nandu");
        assert_eq!(fold_to_ascii("SÃO PAULO"), "SAO PAULO");
        assert_eq!(fold_to_ascii("Rua 7, nº 12"), "Rua 7, no 12");
        assert_eq!(fold_to_ascii("ÀÁÂÃÄÅàáâãäå"), "AAAAAAaaaaaa");
        assert_eq!(fold_to_ascii("日本"), "日本");
    }

    #[test]
    fn pix_gui_prefix_is_matched_case_insensitively_without_slicing_characters() {
        assert!(starts_with_pix_gui("0014br.gov.bcb.pix0101x"));
        assert!(starts_with_pix_gui("0014BR.GOV.BCB.PIX"));
        assert!(!starts_with_pix_gui("0014br.gov.bcb.pi"));
        assert!(!starts_with_pix_gui("0014ãr.gov.bcb.pix"));
        assert!(!starts_with_pix_gui("0012BR.COM.OUTRO"));
    }
}
