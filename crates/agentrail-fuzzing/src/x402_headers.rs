//! x402 headers: PAYMENT-SIGNATURE / X-PAYMENT, PAYMENT-REQUIRED and
//! PAYMENT-RESPONSE decode to their shapes or a typed error.

use agentrail_pay::x402::{self, PaymentPayload, PaymentRequired, SettlementResponse};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(payload) = x402::decode_header::<PaymentPayload>(&text) {
        let _ = (payload.scheme(), payload.network());
        let again = x402::encode_header(&payload);
        assert!(x402::decode_header::<PaymentPayload>(&again).is_ok());
    }
    let _ = x402::decode_header::<PaymentRequired>(&text);
    let _ = x402::decode_header::<SettlementResponse>(&text);
}
