//! JSON Schemas of the types whose serde form is written by hand (amounts,
//! identities, hashes, signatures, signed grants), so that every wire type
//! derives its schema for the OpenAPI document.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::amount::Amount;
use crate::channel::ChannelId;
use crate::command::{Command, SignedCommand};
use crate::did::Did;
use crate::grant::{Grant, SignedGrant};
use crate::signing::{DocumentId, SignatureBytes};

impl JsonSchema for Amount {
    fn schema_name() -> Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(0|[1-9][0-9]{0,38})$",
            "description": "Atomic units (1 USD = 1,000,000), as a decimal string",
            "examples": ["2500000"]
        })
    }
}

impl JsonSchema for Did {
    fn schema_name() -> Cow<'static, str> {
        "Did".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$",
            "description": "An Ed25519 did:key: base58btc of 0xed 0x01 and the 32-byte public key",
            "examples": ["did:key:z6Mko9hTggMwjSTEaJaPUfE6tqcy2xvU6BnNq3e3o8qVBiyH"]
        })
    }
}

fn hex(name: &'static str, digits: u32, description: &'static str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": format!("^[0-9a-f]{{{digits}}}$"),
        "description": description,
        "title": name
    })
}

impl JsonSchema for ChannelId {
    fn schema_name() -> Cow<'static, str> {
        "ChannelId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        hex(
            "ChannelId",
            64,
            "SHA-256 over the payer, the payee and the opener's idempotency key (docs/protocol.md)",
        )
    }
}

impl JsonSchema for DocumentId {
    fn schema_name() -> Cow<'static, str> {
        "DocumentId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        hex(
            "DocumentId",
            64,
            "SHA-256 of a signed document's signing bytes",
        )
    }
}

impl JsonSchema for SignatureBytes {
    fn schema_name() -> Cow<'static, str> {
        "Signature".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        hex("Signature", 128, "An Ed25519 signature")
    }
}

impl JsonSchema for SignedGrant {
    fn schema_name() -> Cow<'static, str> {
        "SignedGrant".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let grant = generator.subschema_for::<Grant>();
        let signature = generator.subschema_for::<SignatureBytes>();
        json_schema!({
            "type": "object",
            "description": "A grant and its issuer's signature over \"agentrail grant v1\\n\" and the grant's JCS bytes",
            "required": ["grant", "signature"],
            "additionalProperties": false,
            "properties": {"grant": grant, "signature": signature}
        })
    }
}

impl JsonSchema for SignedCommand {
    fn schema_name() -> Cow<'static, str> {
        "SignedCommand".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let (signer, command) = (
            generator.subschema_for::<Did>(),
            generator.subschema_for::<Command>(),
        );
        let signature = generator.subschema_for::<SignatureBytes>();
        json_schema!({
            "type": "object",
            "description": "A command and its signer's signature over \"agentrail command v1\\n\" and the command's JCS bytes",
            "required": ["signer", "command", "signature"],
            "additionalProperties": false,
            "properties": {"signer": signer, "command": command, "signature": signature}
        })
    }
}
