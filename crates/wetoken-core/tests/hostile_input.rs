//! Property tests of everything that parses what a stranger sends (SPEC §4
//! "no request input can make the process panic"): callback crypto, the
//! XML reader, ids, query strings and the proxy's rewrite of them. Run by
//! `cargo xtask ci` with the rest of the tests.

use proptest::prelude::*;
use wetoken_core::domain::{AccountId, AgentId, Credential, Ident};
use wetoken_core::msgcrypt::MsgCrypt;
use wetoken_core::urlenc::{Query, percent_decode, query_params};
use wetoken_core::wxml;

const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

fn crypt() -> MsgCrypt {
    MsgCrypt::new("token", AES_KEY, "wxreceiver").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text as `Encrypt`, any signature fields: an error, never a panic.
    #[test]
    fn decrypting_anything_never_panics(encrypt in ".{0,400}", sig in ".{0,50}", ts in ".{0,20}", nonce in ".{0,20}") {
        let c = crypt();
        let _ = c.decrypt(&encrypt);
        let _ = c.decrypt_any(&encrypt);
        let _ = c.open(&sig, &ts, &nonce, &encrypt);
    }

    /// Base64 of arbitrary bytes (right alphabet, wrong content): an error.
    #[test]
    fn decrypting_random_ciphertext_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // Random bytes never carry a valid padding, length and receive id.
        prop_assert!(crypt().decrypt(&text).is_err());
    }

    /// What is encrypted decrypts to itself, for any message.
    #[test]
    fn encrypt_then_decrypt_round_trips(message in "\\PC{0,300}") {
        let c = crypt();
        prop_assert_eq!(c.decrypt(&c.encrypt(&message)).unwrap(), message);
    }

    /// Any text to the XML reader: fields or an error, never a panic.
    #[test]
    fn the_xml_reader_never_panics(xml in ".{0,500}") {
        let _ = wxml::fields(&xml);
        let _ = wxml::fields(&format!("<xml>{xml}</xml>"));
    }

    /// A flat message reads back (trimmed, as the reader documents:
    /// WeChat's samples put spaces around CDATA).
    #[test]
    fn flat_xml_reads_back(name in "[A-Za-z][A-Za-z0-9]{0,20}", value in "[^<>&\\]]{0,60}") {
        let xml = format!("<xml><{name}><![CDATA[{value}]]></{name}></xml>");
        let fields = wxml::fields(&xml).unwrap();
        prop_assert_eq!(fields.get(&name).map(String::as_str), Some(value.trim()));
    }

    /// Ids, agent ids and credentials: parsed or refused, and a parsed id
    /// prints back as itself.
    #[test]
    fn ids_parse_or_refuse(text in ".{0,120}") {
        if let Ok(id) = text.parse::<AccountId>() {
            prop_assert_eq!(id.to_string().parse::<AccountId>().unwrap(), id);
        }
        let _ = Ident::parse("appid", &text);
        let _ = AgentId::parse(&text);
        let _ = text.parse::<Credential>();
    }

    /// Query strings: decoded without panicking, `+` kept.
    #[test]
    fn queries_decode_without_panicking(q in ".{0,300}") {
        let _ = percent_decode(&q);
        let _ = query_params(&q);
        let parsed = Query::parse(&q);
        let _ = parsed.with_values(&["access_token"], "NEW");
    }

    /// The proxy's rewrite: every token parameter, however spelled, carries
    /// the new value; every other parameter passes byte for byte.
    #[test]
    fn the_rewrite_replaces_every_token_and_nothing_else(
        others in proptest::collection::vec(("[a-z_]{1,12}", "[A-Za-z0-9%+=/._-]{0,20}"), 0..6),
        spelled in prop_oneof![Just("access_token"), Just("acc%65ss_token"), Just("%61ccess_token")],
        token in "[A-Za-z0-9_-]{1,40}",
    ) {
        let others: Vec<(String, String)> = others.into_iter().filter(|(k, _)| k != "access_token").collect();
        let mut parts: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.insert(parts.len() / 2, format!("{spelled}=OLD"));
        let raw = parts.join("&");
        let rewritten = Query::parse(&raw).with_values(&["access_token"], &token);
        let back = Query::parse(&rewritten);
        prop_assert_eq!(back.values("access_token").collect::<Vec<_>>(), vec![token.as_str()]);
        for (k, v) in &others {
            prop_assert!(rewritten.split('&').any(|p| p == format!("{k}={v}")), "{} lost in {}", k, rewritten);
        }
    }
}
