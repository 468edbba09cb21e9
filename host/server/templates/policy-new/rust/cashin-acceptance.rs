
/// Blocked (AC06) and closed (AC07) accounts cannot receive. Between 22:00 and 06:00 a person's
/// account takes at most `night-limit` centavos (default R$ 5.000) per Pix from someone else
/// (AM02). Everything else is accepted.
impl exports::pix::policy::cashin_acceptance::Guest for Policy {
    fn decide(input: CashinInput, params: Vec<Param>) -> Result<CashinDecision, PolicyError> {
        let deny = |code: &str, spi_reason: &str, message: &str| {
            Ok(CashinDecision::Deny(CashinDenial {
                code: code.into(),
                spi_reason: spi_reason.into(),
                message: message.into(),
            }))
        };
        match input.payee_status {
            AccountStatus::Blocked => return deny("RECIPIENT_ACCOUNT_INVALID", "AC06", "the account is blocked"),
            AccountStatus::Closed => return deny("RECIPIENT_ACCOUNT_INVALID", "AC07", "the account is closed"),
            AccountStatus::Active => {}
        }
        let minute = input.local_time.minute_of_day;
        let night = minute >= 22 * 60 || minute < 6 * 60;
        if night
            && input.payee_type == PersonType::Natural
            && !input.same_owner
            && input.amount > param_int(&params, "night-limit", 500_000)
        {
            return deny("RECIPIENT_CANNOT_RECEIVE", "AM02", "above the night-time limit");
        }
        Ok(CashinDecision::Accept)
    }
}
