

class CashinAcceptance(exports.CashinAcceptance):
    """Blocked (AC06) and closed (AC07) accounts cannot receive. Between 22:00 and 06:00 a
    person's account takes at most ``night-limit`` centavos (default R$ 5.000) per Pix from
    someone else (AM02). Everything else is accepted."""

    def decide(self, input: CashinInput, params: list[Param]) -> CashinDecision:
        def deny(code: str, spi_reason: str, message: str) -> CashinDecision:
            return CashinDecision_Deny(CashinDenial(code=code, spi_reason=spi_reason, message=message))

        if input.payee_status == AccountStatus.BLOCKED:
            return deny("RECIPIENT_ACCOUNT_INVALID", "AC06", "the account is blocked")
        if input.payee_status == AccountStatus.CLOSED:
            return deny("RECIPIENT_ACCOUNT_INVALID", "AC07", "the account is closed")
        minute = input.local_time.minute_of_day
        night = minute >= 22 * 60 or minute < 6 * 60
        if (
            night
            and input.payee_type == PersonType.NATURAL
            and not input.same_owner
            and input.amount > param_int(params, "night-limit", 500_000)
        ):
            return deny("RECIPIENT_CANNOT_RECEIVE", "AM02", "above the night-time limit")
        return CashinDecision_Accept()
