//! The soak's traffic, drawn from a seed (pure): valid refunds, several
//! partial refunds per trade, duplicates, conflicting duplicates, invalid
//! events and refunds above what was paid, shuffled; a share of the trades
//! on the OpenAPI partner (every event of such a trade names it), the rest
//! on the default mapi partner. With a share of 0 nothing is drawn for it,
//! so a seed replays the stream it drew before the OpenAPI channel.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What one published event is, and so what must become of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Stored once; ends in one terminal event.
    Valid,
    /// The same body again: acked, stored once.
    Duplicate,
    /// Same refund_id, other content: dead-lettered `conflicting_duplicate`.
    Conflict,
    /// Dead-lettered with this code.
    Invalid(&'static str),
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub kind: Kind,
    pub refund_id: String,
    /// Sent with `"partner"` = the OpenAPI partner.
    pub openapi: bool,
    pub body: Vec<u8>,
}

/// The trade's paid amount in the sandbox, fen.
pub const PAID_FEN: i64 = 1_000;

/// An event's body; `partner` is named only for the OpenAPI partner (the
/// mapi partner is the workers' default).
fn body(refund_id: &str, trade_no: &str, amount: &str, partner: Option<&str>) -> Vec<u8> {
    let partner = partner
        .map(|p| format!(r#","partner":"{p}""#))
        .unwrap_or_default();
    format!(r#"{{"refund_id":"{refund_id}","trade_no":"{trade_no}","amount":"{amount}","reason":"soak"{partner}}}"#).into_bytes()
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// About `n` events: most valid (one to three partial refunds per trade, the
/// last of some trades above what is left of the paid amount), and a few
/// percent each of duplicates, conflicts and invalid ones; each trade on
/// the OpenAPI partner `openapi` with probability `openapi_share` (0..=1).
pub fn plan(n: usize, seed: u64, run: &str, openapi_share: f64, openapi: &str) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out: Vec<Planned> = Vec::with_capacity(n + n / 10);
    let mut trade = 0u64;
    while out.len() < n {
        trade += 1;
        let trade_no = format!(
            "2026{:024}",
            seed.wrapping_mul(1_000_003) % 1_000_000 * 1_000_000_000 + trade
        );
        let on_openapi = openapi_share > 0.0 && rng.random_bool(openapi_share.min(1.0));
        let partner = on_openapi.then_some(openapi);
        let body = |id: &str, amount: &str| body(id, &trade_no, amount, partner);
        let parts = rng.random_range(1..=3);
        let mut left = PAID_FEN;
        for p in 0..parts {
            let id = format!("{run}-{trade}-{p}");
            // One trade in 40 asks for more than is left: Alipay refuses it.
            let fen = if rng.random_ratio(1, 40) {
                left + 1
            } else {
                rng.random_range(1..=(left / 2).max(1))
            };
            left -= fen.min(left);
            out.push(Planned {
                kind: Kind::Valid,
                refund_id: id.clone(),
                openapi: on_openapi,
                body: body(&id, &yuan(fen)),
            });
            if rng.random_ratio(1, 30) {
                out.push(Planned {
                    kind: Kind::Duplicate,
                    refund_id: id.clone(),
                    openapi: on_openapi,
                    body: body(&id, &yuan(fen)),
                });
            }
            if rng.random_ratio(1, 50) {
                out.push(Planned {
                    kind: Kind::Conflict,
                    refund_id: id.clone(),
                    openapi: on_openapi,
                    body: body(&id, &yuan(fen + 1)),
                });
            }
        }
        if rng.random_ratio(1, 30) {
            let id = format!("{run}-bad-{trade}");
            out.push(Planned {
                kind: Kind::Invalid("invalid_amount"),
                refund_id: id.clone(),
                openapi: on_openapi,
                body: body(&id, "1.001"),
            });
        }
    }
    // Duplicates and conflicts must come after their original to be judged
    // as such: shuffle in blocks that keep each trade's events in order.
    let mut blocks: Vec<Vec<Planned>> = Vec::new();
    for p in out {
        let key = p.refund_id.rsplit_once('-').map(|(k, _)| k.to_owned());
        match blocks.last_mut() {
            Some(b) if b[0].refund_id.rsplit_once('-').map(|(k, _)| k.to_owned()) == key => {
                b.push(p)
            }
            _ => blocks.push(vec![p]),
        }
    }
    blocks.shuffle(&mut rng);
    blocks.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_stream_with_every_kind() {
        let a = plan(3000, 42, "s", 0.33, "P");
        let b = plan(3000, 42, "s", 0.33, "P");
        assert_eq!(
            a.iter().map(|p| &p.body).collect::<Vec<_>>(),
            b.iter().map(|p| &p.body).collect::<Vec<_>>()
        );
        for kind in [
            Kind::Valid,
            Kind::Duplicate,
            Kind::Conflict,
            Kind::Invalid("invalid_amount"),
        ] {
            assert!(a.iter().any(|p| p.kind == kind), "{kind:?}");
        }
        // Every duplicate and conflict comes after its original.
        for (i, p) in a.iter().enumerate() {
            if p.kind != Kind::Valid && !matches!(p.kind, Kind::Invalid(_)) {
                assert!(
                    a[..i]
                        .iter()
                        .any(|o| o.refund_id == p.refund_id && o.kind == Kind::Valid)
                );
            }
        }
    }

    #[test]
    fn a_share_of_trades_names_the_openapi_partner_in_every_event() {
        let a = plan(3000, 7, "s", 0.33, "2088000000000009");
        let on = a.iter().filter(|p| p.openapi).count();
        assert!((700..1300).contains(&on), "{on} of {}", a.len());
        for p in &a {
            let named =
                String::from_utf8_lossy(&p.body).contains(r#""partner":"2088000000000009""#);
            assert_eq!(named, p.openapi, "{}", String::from_utf8_lossy(&p.body));
        }
        // A trade is on one channel: all its refunds, whatever their kind.
        let mut channel_of = std::collections::HashMap::new();
        for p in &a {
            let body = String::from_utf8_lossy(&p.body);
            let trade = body
                .split(r#""trade_no":""#)
                .nth(1)
                .and_then(|r| r.split('"').next());
            let first = *channel_of
                .entry(trade.map(str::to_owned))
                .or_insert(p.openapi);
            assert_eq!(first, p.openapi, "{body}");
        }
        // No share: nothing drawn for it, so the stream is the mapi-only one.
        let none = plan(3000, 7, "s", 0.0, "P");
        assert!(none.iter().all(|p| !p.openapi));
        assert!(
            none.iter()
                .all(|p| !String::from_utf8_lossy(&p.body).contains("partner"))
        );
    }
}
