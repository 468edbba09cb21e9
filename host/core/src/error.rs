//! The API error catalogue: stable machine codes, their HTTP status and title.
//!
//! Known Lerian codes (PIX-0000…0008, 0022, 0104, 0112, 0113, 0219, 0404, 0407) keep their published meaning;
//! codes from PIX-0009 upward that Lerian does not publish are ours and stay stable once shipped.
//! Ranges follow Lerian's: 00xx middleware and validation, 01xx DICT, 02xx MED, 03xx QR codes
//! and collections, 04xx transfers.
//! Business codes of the spec (e.g. `OPERATIONS_SUM_MISMATCH`) are plain strings.

use serde::Serialize;

/// Every error the API can answer with. `code()`, `status()` and `title()` are the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Internal,
    MissingHeader,
    InvalidHeader,
    MissingField,
    InvalidField,
    InvalidFieldType,
    UnexpectedField,
    MissingPathParameter,
    InvalidPathParameter,
    Unauthorized,
    Forbidden,
    CredentialNotFound,
    CredentialRevoked,
    RouteNotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RequestTimeout,
    ServiceUnavailable,
    RateLimited,
    IdempotencyInFlight,
    IdempotencyKeyReuse,
    ResourceNotFound,
    AccountNotFound,
    UpstreamUnavailable,
    PolicyRejected,
    PolicyNoEarlierVersion,
    /// The tenant lacks its own ledger or BTG identity (or its secret cannot be read).
    TenantNotConfigured,
    /// Another tenant already has this ledger or BTG client.
    TenantIdentityInUse,
    /// An EndToEndId that is none of the tenant's payments (MED requests on someone else's money).
    PaymentNotFound,
    WebhookEndpointLimit,
    WebhookUrlNotAllowed,
    EntryNotFound,
    ClaimNotFound,
    KeyHolderMismatch,
    KeyNotAccepted,
    EntryLimitExceeded,
    EntryAlreadyExists,
    KeyHeldByOtherParticipant,
    EntryLockedByClaim,
    DictWritesBlocked,
    EntryOperationPending,
    ClaimNotAllowed,
    InvalidClaimStatus,
    KeyNotFound,
    ClaimAlreadyOpen,
    DictRateLimited,
    DictRejected,
    InfractionReportNotFound,
    InvalidInfractionStatus,
    RefundRequestNotFound,
    InvalidRefundStatus,
    FraudMarkerNotFound,
    InvalidRefundId,
    /// Closing a MED refund request with `createRefund`: the refund exists but BTG has not (certainly)
    /// accepted it, so there is no return id to send yet; the request stays OPEN.
    MedRefundPending,
    InvalidInfractionId,
    CautionaryBlockReleasing,
    FundsRecoveryNotFound,
    /// A funds recovery move its status does not allow (cancel from REFUNDING on, refund before ANALYSED).
    InvalidFundsRecoveryStatus,
    InvalidFundsRecoveryId,
    /// A funds recovery's root transaction is a cash-out of the account that has not settled.
    RootTransactionNotSettled,
    /// The root transaction already has a funds recovery that is not final.
    FundsRecoveryAlreadyOpen,
    InvalidQrCode,
    QrPayloadUnavailable,
    QrChargeNotPayable,
    QrPayloadInvalid,
    /// No such immediate or due-date collection for the tenant.
    CollectionNotFound,
    /// Another of the tenant's collections already has this txId.
    CollectionTxIdInUse,
    /// The receiver key is not an ACTIVE DICT key of the `X-Account-Id` account.
    ReceiverKeyNotOwned,
    /// A CONCLUDED (or removed) collection cannot be updated (Lerian's PIX-0022).
    CollectionNotUpdatable,
    /// A CONCLUDED collection cannot be deleted (Lerian's PIX-0104).
    CollectionNotDeletable,
    InvalidTransferQuery,
    TransferNotFound,
    InvalidPurpose,
    InitiationNotFound,
    InitiationExpired,
    InitiationAlreadyProcessed,
    InsufficientBalance,
    TransferNotInReview,
    PayerAccountBlocked,
    AmountAboveMaximum,
    TransferLimitsInvalid,
    OperationsSumMismatch,
    DuplicateAccountAlias,
    AccountAliasNotInOriginalTransaction,
    OriginalTransactionNotFound,
    /// Unblock of a transfer that is not a cash-out in PENDING/PROCESSING (or is in review).
    TransferNotUnblockable,
    /// Unblock of an intra-PSP transfer: there is no BTG payment to read back.
    IntraPspUnblock,
    /// BTG has no record of the payment being unblocked (strict mode).
    ProviderPaymentNotFound,
    /// BTG's record diverges from ours (entity, ids): nothing was settled.
    UnblockInconsistent,
    RefundNotFound,
    InvalidRefundQuery,
    /// Only COMPLETED cash-ins of the account can be refunded.
    TransferNotRefundable,
    /// The refunds of a transfer would together exceed its amount.
    RefundExceedsRemaining,
    /// More than 90 days since the original settled.
    RefundWindowExpired,
    /// Unblock of a refund that is not in flight.
    RefundNotUnblockable,
    /// BTG has no record of the reversal being unblocked (strict mode; Lerian's ErrProviderRefundNotFound).
    ProviderRefundNotFound,
}

impl ErrorCode {
    /// Every variant, for documentation and exhaustive tests.
    pub const ALL: &'static [ErrorCode] = &[
        Self::Internal,
        Self::MissingHeader,
        Self::InvalidHeader,
        Self::MissingField,
        Self::InvalidField,
        Self::InvalidFieldType,
        Self::UnexpectedField,
        Self::MissingPathParameter,
        Self::InvalidPathParameter,
        Self::Unauthorized,
        Self::Forbidden,
        Self::CredentialNotFound,
        Self::CredentialRevoked,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::ServiceUnavailable,
        Self::RateLimited,
        Self::IdempotencyInFlight,
        Self::IdempotencyKeyReuse,
        Self::ResourceNotFound,
        Self::AccountNotFound,
        Self::UpstreamUnavailable,
        Self::PolicyRejected,
        Self::PolicyNoEarlierVersion,
        Self::TenantNotConfigured,
        Self::TenantIdentityInUse,
        Self::PaymentNotFound,
        Self::WebhookEndpointLimit,
        Self::WebhookUrlNotAllowed,
        Self::EntryNotFound,
        Self::ClaimNotFound,
        Self::KeyHolderMismatch,
        Self::KeyNotAccepted,
        Self::EntryLimitExceeded,
        Self::EntryAlreadyExists,
        Self::KeyHeldByOtherParticipant,
        Self::EntryLockedByClaim,
        Self::DictWritesBlocked,
        Self::EntryOperationPending,
        Self::ClaimNotAllowed,
        Self::InvalidClaimStatus,
        Self::KeyNotFound,
        Self::ClaimAlreadyOpen,
        Self::DictRateLimited,
        Self::DictRejected,
        Self::InfractionReportNotFound,
        Self::InvalidInfractionStatus,
        Self::RefundRequestNotFound,
        Self::InvalidRefundStatus,
        Self::FraudMarkerNotFound,
        Self::InvalidRefundId,
        Self::MedRefundPending,
        Self::InvalidInfractionId,
        Self::CautionaryBlockReleasing,
        Self::FundsRecoveryNotFound,
        Self::InvalidFundsRecoveryStatus,
        Self::InvalidFundsRecoveryId,
        Self::RootTransactionNotSettled,
        Self::FundsRecoveryAlreadyOpen,
        Self::InvalidQrCode,
        Self::QrPayloadUnavailable,
        Self::QrChargeNotPayable,
        Self::QrPayloadInvalid,
        Self::CollectionNotFound,
        Self::CollectionTxIdInUse,
        Self::ReceiverKeyNotOwned,
        Self::CollectionNotUpdatable,
        Self::CollectionNotDeletable,
        Self::InvalidTransferQuery,
        Self::TransferNotFound,
        Self::InvalidPurpose,
        Self::InitiationNotFound,
        Self::InitiationExpired,
        Self::InitiationAlreadyProcessed,
        Self::InsufficientBalance,
        Self::TransferNotInReview,
        Self::PayerAccountBlocked,
        Self::AmountAboveMaximum,
        Self::TransferLimitsInvalid,
        Self::OperationsSumMismatch,
        Self::DuplicateAccountAlias,
        Self::AccountAliasNotInOriginalTransaction,
        Self::OriginalTransactionNotFound,
        Self::TransferNotUnblockable,
        Self::IntraPspUnblock,
        Self::ProviderPaymentNotFound,
        Self::UnblockInconsistent,
        Self::RefundNotFound,
        Self::InvalidRefundQuery,
        Self::TransferNotRefundable,
        Self::RefundExceedsRemaining,
        Self::RefundWindowExpired,
        Self::RefundNotUnblockable,
        Self::ProviderRefundNotFound,
    ];

    /// (code, HTTP status, title): one table so the three can never drift apart.
    const fn spec(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::Internal => ("PIX-0000", 500, "Internal Server Error"),
            Self::MissingHeader => ("PIX-0001", 400, "Missing Headers in Request"),
            Self::InvalidHeader => ("PIX-0002", 400, "Invalid Header Value"),
            Self::MissingField => ("PIX-0003", 400, "Missing Fields in Request"),
            Self::InvalidField => ("PIX-0004", 400, "Invalid Field Values in Request"),
            Self::InvalidFieldType => ("PIX-0005", 400, "Invalid Field Type in Request"),
            Self::UnexpectedField => ("PIX-0006", 400, "Unexpected Fields in Request"),
            Self::MissingPathParameter => ("PIX-0007", 400, "Missing Path Parameters in Request"),
            Self::InvalidPathParameter => ("PIX-0008", 400, "Invalid Path Parameter"),
            Self::Unauthorized => ("PIX-0009", 401, "Unauthorized"),
            Self::Forbidden => ("PIX-0010", 403, "Forbidden"),
            Self::CredentialNotFound => ("PIX-0024", 404, "Credential Not Found"),
            Self::CredentialRevoked => ("PIX-0025", 409, "Credential Revoked"),
            Self::RouteNotFound => ("PIX-0011", 404, "Route Not Found"),
            Self::MethodNotAllowed => ("PIX-0012", 405, "Method Not Allowed"),
            Self::PayloadTooLarge => ("PIX-0013", 413, "Payload Too Large"),
            Self::UnsupportedMediaType => ("PIX-0014", 415, "Unsupported Media Type"),
            Self::RequestTimeout => ("PIX-0015", 504, "Request Timed Out"),
            Self::ServiceUnavailable => ("PIX-0016", 503, "Service Unavailable"),
            Self::RateLimited => ("PIX-0017", 429, "Too Many Requests"),
            Self::IdempotencyInFlight => ("PIX-0018", 409, "Idempotent Request In Flight"),
            Self::IdempotencyKeyReuse => ("IDEMPOTENCY_KEY_REUSE", 422, "Idempotency Key Reused"),
            Self::ResourceNotFound => ("PIX-0019", 404, "Resource Not Found"),
            Self::AccountNotFound => ("PIX-0020", 404, "Account Not Found"),
            Self::UpstreamUnavailable => ("PIX-0021", 502, "Upstream Unavailable"),
            // PIX-0022 is Lerian's "a CONCLUDED collection cannot be updated".
            Self::PolicyRejected => ("PIX-0029", 422, "Policy Component Rejected"),
            Self::PolicyNoEarlierVersion => ("PIX-0023", 409, "No Earlier Policy Version"),
            Self::TenantNotConfigured => ("PIX-0040", 409, "Tenant Upstreams Not Configured"),
            Self::TenantIdentityInUse => ("PIX-0041", 409, "Tenant Identity Already In Use"),
            Self::PaymentNotFound => ("PIX-0035", 404, "Payment Not Found"),
            Self::WebhookEndpointLimit => ("PIX-0030", 409, "Webhook Endpoint Limit Reached"),
            Self::WebhookUrlNotAllowed => ("PIX-0031", 422, "Webhook URL Not Allowed"),
            Self::EntryNotFound => ("PIX-0112", 404, "Entry Not Found"),
            Self::ClaimNotFound => ("PIX-0113", 404, "Claim Not Found"),
            Self::KeyHolderMismatch => ("PIX-0101", 422, "Key Does Not Match Holder"),
            Self::KeyNotAccepted => ("PIX-0102", 400, "Key Must Not Be Sent"),
            Self::EntryLimitExceeded => ("PIX-0103", 422, "Entry Limit Exceeded"),
            Self::EntryAlreadyExists => ("PIX-0105", 409, "Entry Already Exists"),
            Self::KeyHeldByOtherParticipant => ("PIX-0106", 409, "Key Held By Another Participant"),
            Self::EntryLockedByClaim => ("PIX-0107", 409, "Entry Locked By Claim"),
            Self::DictWritesBlocked => ("PIX-0108", 503, "DICT Writes Blocked"),
            Self::EntryOperationPending => ("PIX-0109", 409, "Entry Operation Pending"),
            Self::ClaimNotAllowed => ("PIX-0110", 422, "Claim Not Allowed For Key Type"),
            Self::InvalidClaimStatus => ("PIX-0111", 422, "Claim Operation Not Allowed"),
            Self::KeyNotFound => ("PIX-0114", 404, "Key Not Found"),
            Self::ClaimAlreadyOpen => ("PIX-0115", 409, "Claim Already Open"),
            Self::DictRateLimited => ("PIX-0116", 429, "DICT Anti-Scan Limit Reached"),
            Self::DictRejected => ("PIX-0117", 422, "Rejected By DICT"),
            Self::InfractionReportNotFound => ("PIX-0201", 404, "Infraction Report Not Found"),
            Self::InvalidInfractionStatus => ("PIX-0202", 422, "Infraction Report Operation Not Allowed"),
            Self::RefundRequestNotFound => ("PIX-0203", 404, "Refund Request Not Found"),
            Self::InvalidRefundStatus => ("PIX-0204", 422, "Refund Request Operation Not Allowed"),
            Self::FraudMarkerNotFound => ("PIX-0205", 404, "Fraud Marker Not Found"),
            Self::InvalidRefundId => ("PIX-0206", 400, "Invalid Refund Request Id"),
            Self::MedRefundPending => ("PIX-0207", 409, "Refund Not Yet Accepted By BTG"),
            Self::InvalidInfractionId => ("PIX-0219", 400, "Invalid Infraction Report Id"),
            Self::CautionaryBlockReleasing => ("PIX-0220", 409, "Cautionary Block Being Released"),
            Self::FundsRecoveryNotFound => ("PIX-0210", 404, "Funds Recovery Not Found"),
            Self::InvalidFundsRecoveryStatus => ("PIX-0211", 422, "Funds Recovery Operation Not Allowed"),
            Self::InvalidFundsRecoveryId => ("PIX-0212", 400, "Invalid Funds Recovery Id"),
            Self::RootTransactionNotSettled => ("PIX-0213", 422, "Root Transaction Not Settled"),
            Self::FundsRecoveryAlreadyOpen => ("PIX-0214", 409, "Funds Recovery Already Open"),
            Self::InvalidQrCode => ("PIX-0301", 400, "Invalid QR Code"),
            Self::QrPayloadUnavailable => ("PIX-0302", 502, "Dynamic QR Payload Unavailable"),
            Self::QrChargeNotPayable => ("PIX-0303", 422, "QR Code Charge Not Payable"),
            Self::QrPayloadInvalid => ("PIX-0304", 502, "Dynamic QR Payload Invalid"),
            Self::CollectionNotFound => ("PIX-0305", 404, "Collection Not Found"),
            Self::CollectionTxIdInUse => ("PIX-0306", 409, "Collection TxId Already In Use"),
            Self::ReceiverKeyNotOwned => ("PIX-0307", 422, "Receiver Key Not Owned By The Account"),
            Self::CollectionNotUpdatable => ("PIX-0022", 422, "Collection Cannot Be Updated"),
            Self::CollectionNotDeletable => ("PIX-0104", 422, "Collection Cannot Be Deleted"),
            Self::InvalidTransferQuery => ("PIX-0404", 400, "Invalid Transfer Query"),
            Self::TransferNotFound => ("PIX-0407", 404, "Transfer Not Found"),
            Self::InvalidPurpose => ("PIX-0429", 400, "Unsupported Transfer Purpose"),
            Self::InitiationNotFound => ("PIX-0408", 404, "Initiation Not Found"),
            Self::InitiationExpired => ("PIX-0409", 422, "Initiation Expired"),
            Self::InitiationAlreadyProcessed => ("PIX-0410", 409, "Initiation Already Processed"),
            Self::InsufficientBalance => ("PIX-0411", 422, "Insufficient Balance"),
            Self::TransferNotInReview => ("PIX-0413", 409, "Transfer Not Awaiting Review"),
            Self::PayerAccountBlocked => ("PIX-0414", 422, "Payer Account Blocked Or Closed"),
            Self::AmountAboveMaximum => ("PIX-0415", 422, "Amount Above The Tenant's Maximum"),
            Self::TransferLimitsInvalid => ("PIX-0416", 400, "Invalid Transfer Limits"),
            Self::OperationsSumMismatch => ("OPERATIONS_SUM_MISMATCH", 400, "Operations Sum Mismatch"),
            Self::DuplicateAccountAlias => ("DUPLICATE_ACCOUNT_ALIAS", 400, "Duplicate Account Alias"),
            Self::AccountAliasNotInOriginalTransaction => {
                ("ACCOUNT_ALIAS_NOT_IN_ORIGINAL_TRANSACTION", 422, "Account Alias Not In Original Transaction")
            }
            Self::OriginalTransactionNotFound => {
                ("ORIGINAL_TRANSACTION_NOT_FOUND", 422, "Original Transaction Not Found")
            }
            Self::TransferNotUnblockable => ("PIX-0417", 422, "Transfer Cannot Be Unblocked"),
            Self::IntraPspUnblock => ("PIX-0418", 422, "Intra-PSP Transfer Cannot Be Unblocked"),
            Self::ProviderPaymentNotFound => ("PIX-0419", 409, "Payment Not Found At BTG"),
            Self::UnblockInconsistent => ("PIX-0420", 409, "BTG Record Inconsistent With Local Record"),
            Self::RefundNotFound => ("PIX-0440", 404, "Refund Not Found"),
            Self::InvalidRefundQuery => ("PIX-0441", 400, "Invalid Refund Query"),
            Self::TransferNotRefundable => ("PIX-0442", 422, "Transfer Not Refundable"),
            Self::RefundExceedsRemaining => ("PIX-0443", 422, "Refund Exceeds Remaining Amount"),
            Self::RefundWindowExpired => ("PIX-0444", 422, "Refund Window Expired"),
            Self::RefundNotUnblockable => ("PIX-0445", 422, "Refund Cannot Be Unblocked"),
            Self::ProviderRefundNotFound => ("PIX-1012", 409, "Refund Not Found At BTG"),
        }
    }

    pub const fn code(self) -> &'static str {
        self.spec().0
    }

    pub const fn status(self) -> u16 {
        self.spec().1
    }

    pub const fn title(self) -> &'static str {
        self.spec().2
    }
}

/// An error meant for the API client: a catalogue code plus a human message.
///
/// The message must never contain internals (SQL, stack traces, secrets); 5xx messages are generic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.code())]
pub struct PixError {
    pub code: ErrorCode,
    pub message: String,
}

impl PixError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// A generic 500: the cause is logged by the caller, never shown.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "an unexpected error occurred; it has been logged")
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.code().to_owned(),
            title: self.code.title().to_owned(),
            message: self.message.clone(),
        }
    }
}

/// The wire shape `{"code":"PIX-xxxx","title":"…","message":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub title: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate code {}", code.code());
            assert!((400..600).contains(&code.status()), "{code:?}");
            assert!(!code.title().is_empty());
        }
    }

    #[test]
    fn published_lerian_codes_keep_their_meaning() {
        assert_eq!(ErrorCode::Internal.code(), "PIX-0000");
        assert_eq!(ErrorCode::InvalidFieldType.code(), "PIX-0005");
        assert_eq!(ErrorCode::InvalidTransferQuery.status(), 400, "PIX-0404 is a validation error");
        assert_eq!(ErrorCode::TransferNotFound.status(), 404);
        assert_eq!(ErrorCode::IdempotencyKeyReuse.status(), 422);
        assert_eq!(ErrorCode::CollectionNotUpdatable.code(), "PIX-0022", "a CONCLUDED collection cannot be updated");
        assert_eq!(ErrorCode::CollectionNotDeletable.code(), "PIX-0104", "a CONCLUDED collection cannot be deleted");
        assert_ne!(ErrorCode::PolicyRejected.code(), "PIX-0022", "policy rejections have their own code");
    }
}
