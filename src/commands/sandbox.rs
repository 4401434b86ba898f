//! `refund-worker sandbox`: the Alipay gateway simulator, until Ctrl-C or SIGTERM.
//!
//! Thin: flags into a [`SandboxConfig`], bind, print the address and the
//! seed (so a run can be replayed), serve. Partners come from the flags,
//! else from the worker's own ALIPAY_PARTNER/ALIPAY_KEY and config file, so
//! a worker and its sandbox share one configuration. OpenAPI apps and the
//! key the sandbox answers them with come from their flags
//! (`sandbox_openapi.rs`); without `--openapi-app`, the apps are the
//! worker's `[[partners]]` with `channel = "openapi"`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::EXIT_USAGE;
use crate::alipay::wire::request::validate_partner;
use crate::cli::SandboxArgs;
use crate::config::{Partner, Settings};
use crate::sandbox::{self, Faults, PartnerKey, Realism, Sandbox, SandboxConfig};
use crate::shutdown::stop_signal;

#[path = "sandbox_openapi.rs"]
mod openapi;

pub async fn sandbox(settings: &Settings, args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = match config_from(&args, &settings.alipay.partners, seed) {
        Ok(mut config) => {
            // Without --openapi-app, the worker's own OpenAPI partners.
            if config.openapi_apps.is_empty() {
                config.openapi_apps = openapi::from_settings(&settings.alipay.openapi.apps);
            }
            config
        }
        Err(e) => {
            eprintln!("refund-worker sandbox: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("while binding {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("while reading the bound address")?;
    let partners: Vec<&str> = config.partners.iter().map(|p| p.id.as_str()).collect();
    eprintln!(
        "sandbox listening on http://{addr}/gateway.do (seed {seed}, partners {})",
        partners.join(",")
    );
    if !config.openapi_apps.is_empty() || config.alipay_key.is_some() {
        let apps: Vec<&str> = config
            .openapi_apps
            .iter()
            .map(|a| a.app_id.as_str())
            .collect();
        let signing = if config.alipay_key.is_some() {
            "signed with --alipay-private-key-file"
        } else {
            "all refused isv.invalid-app-id: no --alipay-private-key-file"
        };
        eprintln!("sandbox serves OpenAPI apps {} ({signing})", apps.join(","));
    }
    if config.realism.is_on() {
        eprintln!("sandbox answers realistically: {:?}", config.realism);
    }
    let state = Sandbox::new(config)?;
    let shutdown = CancellationToken::new();
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        stop_signal().await;
        stopper.cancel();
    });
    sandbox::serve(listener, state, shutdown)
        .await
        .context("while serving")?;
    eprintln!("sandbox stopped");
    Ok(ExitCode::SUCCESS)
}

/// The sandbox's configuration from its flags; the message says what to fix.
pub fn config_from(
    args: &SandboxArgs,
    configured: &[Partner],
    seed: u64,
) -> Result<SandboxConfig, String> {
    let partners = partners(args, configured)?;
    for id in partners.iter().map(|p| &p.id).chain(&args.no_nopwd_partner) {
        validate_partner(id).map_err(|e| e.to_string())?;
    }
    if args.item_failure_codes.is_empty()
        || args
            .item_failure_codes
            .iter()
            .any(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    {
        return Err(
            "--item-failure-codes takes codes such as TRADE_HAS_CLOSED, comma-separated".into(),
        );
    }
    let mut config = SandboxConfig::new(partners, seed);
    config.no_nopwd_partners = args.no_nopwd_partner.clone();
    config.trade_paid_fen = args.trade_paid;
    config.time_scale = args.time_scale;
    config.auto_approve_pwd = args.auto_approve_pwd;
    config.faults = Faults {
        latency: Duration::from_millis(args.latency_ms),
        latency_rate: args.latency_rate,
        http_5xx_rate: args.http_5xx_rate,
        timeout_after_accept_rate: args.timeout_after_accept_rate,
        timeout_hold: Duration::from_millis(args.timeout_hold_ms),
        system_error_rate: args.system_error_rate,
        processing_rate: args.processing_rate,
        item_failure_rate: args.item_failure_rate,
        item_failure_codes: args.item_failure_codes.clone(),
        notify_drop_rate: args.notify_drop_rate,
        notify_duplicate_rate: args.notify_duplicate_rate,
        notify_delay: Duration::from_millis(args.notify_delay_ms),
        notify_delay_rate: args.notify_delay_rate,
        notify_reorder_rate: args.notify_reorder_rate,
    };
    config.realism = realism_from(args);
    config.openapi_apps = openapi::apps(&args.openapi_app)?;
    config.alipay_key = openapi::alipay_key(args.alipay_private_key_file.as_deref())?;
    Ok(config)
}

/// `--realistic` and the realism rates: a rate given wins over the preset.
fn realism_from(args: &SandboxArgs) -> Realism {
    let base = if args.realistic {
        Realism::realistic()
    } else {
        Realism::default()
    };
    Realism {
        tails_rate: args.tails_rate.unwrap_or(base.tails_rate),
        five_field_rate: args.five_field_rate.unwrap_or(base.five_field_rate),
        lower_case_rate: args.lower_case_rate.unwrap_or(base.lower_case_rate),
        empty_details_rate: args.empty_details_rate.unwrap_or(base.empty_details_rate),
        non_final_rate: args.non_final_rate.unwrap_or(base.non_final_rate),
        non_final_delay: Duration::from_millis(args.non_final_delay_ms),
        balance_not_enough_rate: args
            .balance_not_enough_rate
            .unwrap_or(base.balance_not_enough_rate),
        poison_rate: args.poison_rate.unwrap_or(base.poison_rate),
        xml_query_error_rate: args
            .xml_query_error_rate
            .unwrap_or(base.xml_query_error_rate),
        accepted_then_4xx_rate: args
            .accepted_then_4xx_rate
            .unwrap_or(base.accepted_then_4xx_rate),
        lag_rate: args.lag_rate.unwrap_or(base.lag_rate),
        lag: Duration::from_millis(args.lag_ms),
    }
}

/// `--partner`/`--key` pairs in order, else the worker's configured partners.
fn partners(args: &SandboxArgs, configured: &[Partner]) -> Result<Vec<PartnerKey>, String> {
    if args.partner.is_empty() && args.key.is_empty() {
        if configured.is_empty() {
            return Err("give --partner and --key, or set ALIPAY_PARTNER and ALIPAY_KEY".into());
        }
        return Ok(configured
            .iter()
            .map(|p| PartnerKey {
                id: p.id.clone(),
                key: p.key.expose_secret().to_owned(),
            })
            .collect());
    }
    if args.partner.len() != args.key.len() {
        return Err(format!(
            "{} --partner but {} --key: give one key per partner, in the same order",
            args.partner.len(),
            args.key.len()
        ));
    }
    if args
        .key
        .iter()
        .any(|k| k.is_empty() || k.contains(char::is_whitespace))
    {
        // The message never quotes the key.
        return Err("a --key is empty or contains whitespace".into());
    }
    let pairs: Vec<PartnerKey> = args
        .partner
        .iter()
        .zip(&args.key)
        .map(|(id, key)| PartnerKey {
            id: id.clone(),
            key: key.clone(),
        })
        .collect();
    if let Some((i, p)) = pairs
        .iter()
        .enumerate()
        .find(|(i, p)| pairs[..*i].iter().any(|q| q.id == p.id))
    {
        return Err(format!("partner {} is given twice (at {i})", p.id));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use secrecy::SecretString;

    fn args(flags: &[&str]) -> SandboxArgs {
        let cli = Cli::try_parse_from(["refund-worker", "sandbox"].iter().chain(flags)).unwrap();
        match cli.command {
            Command::Sandbox(args) => *args,
            other => panic!("parsed {other:?}"),
        }
    }

    const P1: &str = "2088101122136241";
    const P2: &str = "2088101122136242";

    #[test]
    fn partners_and_keys_pair_up_whether_repeated_or_comma_separated() {
        let a = args(&[
            "--partner",
            P1,
            "--key",
            "k1",
            "--partner",
            P2,
            "--key",
            "k2",
        ]);
        let b = args(&["--partner", &format!("{P1},{P2}"), "--key", "k1,k2"]);
        for a in [a, b] {
            let c = config_from(&a, &[], 1).unwrap();
            assert_eq!(c.key_of(P1), Some("k1"));
            assert_eq!(c.key_of(P2), Some("k2"));
        }
    }

    #[test]
    fn without_flags_the_workers_own_partner_is_used() {
        let configured = [Partner {
            id: P1.into(),
            key: SecretString::from("from-env"),
        }];
        let c = config_from(&args(&[]), &configured, 1).unwrap();
        assert_eq!(c.key_of(P1), Some("from-env"));
        assert!(config_from(&args(&[]), &[], 1).is_err());
    }

    #[test]
    fn a_partner_without_a_key_is_refused_without_quoting_keys() {
        let e = config_from(
            &args(&["--partner", &format!("{P1},{P2}"), "--key", "secret1"]),
            &[],
            1,
        )
        .unwrap_err();
        assert!(!e.contains("secret1"), "{e}");
        assert!(config_from(&args(&["--partner", "123", "--key", "k"]), &[], 1).is_err());
    }

    #[test]
    fn the_fault_flags_reach_the_config() {
        let a = args(&[
            "--partner",
            P1,
            "--key",
            "k",
            "--http-5xx-rate",
            "0.5",
            "--timeout-after-accept-rate",
            "1",
            "--timeout-hold-ms",
            "250",
            "--item-failure-codes",
            "A_B,C",
            "--no-nopwd-partner",
            P1,
            "--trade-paid",
            "10.5",
            "--time-scale",
            "0.001",
            "--auto-approve-pwd",
        ]);
        let c = config_from(&a, &[], 9).unwrap();
        assert_eq!(c.faults.http_5xx_rate.get(), 0.5);
        assert_eq!(c.faults.timeout_hold, Duration::from_millis(250));
        assert_eq!(c.faults.item_failure_codes, ["A_B", "C"]);
        assert!(!c.has_nopwd_contract(P1));
        assert_eq!(c.trade_paid_fen, 1050);
        assert!(c.auto_approve_pwd);
        assert_eq!(c.seed, 9);
    }

    #[test]
    fn realism_is_off_unless_asked_and_a_rate_given_overrides_the_preset() {
        let plain = config_from(&args(&["--partner", P1, "--key", "k"]), &[], 1).unwrap();
        assert_eq!(plain.realism, Realism::default());
        assert!(!plain.realism.is_on());

        let preset = config_from(
            &args(&["--partner", P1, "--key", "k", "--realistic"]),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(preset.realism, Realism::realistic());
        assert_eq!(preset.realism.lag_rate.get(), 0.02);
        assert_eq!(preset.realism.lag, Duration::from_secs(3));

        let mixed = config_from(
            &args(&[
                "--partner",
                P1,
                "--key",
                "k",
                "--realistic",
                "--poison-rate",
                "0",
                "--accepted-then-4xx-rate",
                "0.5",
                "--non-final-delay-ms",
                "250",
                "--lag-rate",
                "0",
                "--lag-ms",
                "120",
            ]),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(mixed.realism.lag_rate.get(), 0.0);
        assert_eq!(mixed.realism.lag, Duration::from_millis(120));
        assert_eq!(mixed.realism.poison_rate.get(), 0.0);
        assert_eq!(mixed.realism.accepted_then_4xx_rate.get(), 0.5);
        assert_eq!(mixed.realism.non_final_delay, Duration::from_millis(250));
        assert_eq!(mixed.realism.tails_rate, Realism::realistic().tails_rate);

        let one = config_from(
            &args(&["--partner", P1, "--key", "k", "--tails-rate", "1"]),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(one.realism.tails_rate.get(), 1.0);
        assert_eq!(one.realism.poison_rate.get(), 0.0);
        assert_eq!(one.realism.lag_rate.get(), 0.0);

        let lag = config_from(
            &args(&["--partner", P1, "--key", "k", "--lag-rate", "0.5"]),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(lag.realism.lag_rate.get(), 0.5);
        assert!(lag.realism.is_on());
    }

    #[test]
    fn the_openapi_flags_reach_the_config_and_default_to_none() {
        let plain = config_from(&args(&["--partner", P1, "--key", "k"]), &[], 1).unwrap();
        assert!(plain.openapi_apps.is_empty());
        assert!(plain.alipay_key.is_none());
        let keys = format!("{}/deploy/sandbox-keys", env!("CARGO_MANIFEST_DIR"));
        let app = format!("2021000000000001={P1}={keys}/app-private.pem");
        let alipay = format!("{keys}/alipay-private.pem");
        let c = config_from(
            &args(&[
                "--partner",
                P1,
                "--key",
                "k",
                "--openapi-app",
                &app,
                "--alipay-private-key-file",
                &alipay,
            ]),
            &[],
            1,
        )
        .unwrap();
        assert_eq!(c.openapi_apps.len(), 1);
        assert_eq!(c.openapi_apps[0].app_id, "2021000000000001");
        assert!(c.alipay_key.is_some());
        let missing = config_from(
            &args(&[
                "--partner",
                P1,
                "--key",
                "k",
                "--alipay-private-key-file",
                "/nonexistent",
            ]),
            &[],
            1,
        );
        assert!(missing.is_err());
    }

    #[test]
    fn a_rate_above_one_or_a_float_paid_amount_does_not_parse() {
        let parse = |flags: &[&str]| {
            Cli::try_parse_from(["refund-worker", "sandbox"].iter().chain(flags)).is_err()
        };
        assert!(parse(&["--http-5xx-rate", "1.5"]));
        assert!(parse(&["--notify-drop-rate", "1e-2"]));
        assert!(parse(&["--trade-paid", "10.001"]));
        assert!(parse(&["--time-scale", "0"]));
        assert!(parse(&["--poison-rate", "2"]));
    }
}
