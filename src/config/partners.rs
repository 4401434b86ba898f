//! The merchant accounts: the default partner from the environment, then the
//! `[[partners]]` tables of the file, each on its channel (contract §1).
//!
//! A mapi partner has an MD5 `key` (or `key_file`); a partner with
//! `channel = "openapi"` has an `app_id`, the app's RSA2 private key and
//! Alipay's public key, both read and parsed here so that a bad key stops the
//! start (exit 2) rather than the first refund. A partner id is configured
//! once, on one channel. Reasons never quote a key.

use std::sync::Arc;

use secrecy::SecretString;

use super::{ConfigError, OpenApiApp, Partner, Source};
use crate::alipay::openapi::sign::{AlipayPublicKey, AppKey};

/// Every configured partner, by channel.
pub struct Partners {
    pub mapi: Vec<Partner>,
    pub openapi: Vec<OpenApiApp>,
}

const MAPI_KEYS: &[&str] = &["id", "channel", "key", "key_file"];
const OPENAPI_KEYS: &[&str] = &[
    "id",
    "channel",
    "app_id",
    "private_key_file",
    "alipay_public_key_file",
];

pub fn check_partner_id(var: &str, id: &str) -> Result<(), ConfigError> {
    if id.len() == 16 && id.starts_with("2088") && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!("{id:?} is not a partner id (2088 followed by 12 digits)"),
        ))
    }
}

/// The default partner from the environment, then `[[partners]]` from the file.
pub fn partners(src: &Source) -> Result<Partners, ConfigError> {
    let mut out = Partners {
        mapi: Vec::new(),
        openapi: Vec::new(),
    };
    if let Some(id) = src.get("ALIPAY_PARTNER")? {
        check_partner_id("ALIPAY_PARTNER", &id)?;
        let key = key_of(
            src.get("ALIPAY_KEY")?,
            src.get("ALIPAY_KEY_FILE")?,
            "ALIPAY_KEY",
        )?
        .ok_or_else(|| {
            ConfigError::new(
                "ALIPAY_KEY",
                "required when ALIPAY_PARTNER is set (or ALIPAY_KEY_FILE)",
            )
        })?;
        out.mapi.push(Partner { id, key });
    } else if src.get("ALIPAY_KEY")?.is_some() || src.get("ALIPAY_KEY_FILE")?.is_some() {
        return Err(ConfigError::new(
            "ALIPAY_PARTNER",
            "required when ALIPAY_KEY or ALIPAY_KEY_FILE is set",
        ));
    }
    for (i, table) in src.tables("partners").iter().enumerate() {
        let t = Table {
            var: format!("partners[{i}]"),
            table,
        };
        match t.field("channel")?.as_deref() {
            None | Some("mapi") => out.mapi.push(t.mapi()?),
            Some("openapi") => out.openapi.push(t.openapi()?),
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{}.channel", t.var),
                    format!("must be mapi or openapi, not {other:?}"),
                ));
            }
        }
    }
    let ids = out
        .mapi
        .iter()
        .map(|p| &p.id)
        .chain(out.openapi.iter().map(|a| &a.partner));
    let mut seen: Vec<&String> = Vec::new();
    for id in ids {
        if seen.contains(&id) {
            return Err(ConfigError::new(
                "partners",
                format!("partner {id} is configured twice"),
            ));
        }
        seen.push(id);
    }
    Ok(out)
}

/// One `[[partners]]` table and its name in errors.
struct Table<'t> {
    var: String,
    table: &'t toml::Table,
}

impl Table<'_> {
    fn field(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ConfigError::new(
                format!("{}.{name}", self.var),
                "must be a string",
            )),
        }
    }

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.field(name)?
            .ok_or_else(|| ConfigError::new(format!("{}.{name}", self.var), "missing"))
    }

    fn only(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        match self.table.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ConfigError::new(
                format!("{}.{unknown}", self.var),
                format!("unknown key (expected {})", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    fn id(&self) -> Result<String, ConfigError> {
        let id = self.required("id")?;
        check_partner_id(&format!("{}.id", self.var), &id)?;
        Ok(id)
    }

    fn mapi(&self) -> Result<Partner, ConfigError> {
        self.only(MAPI_KEYS)?;
        let id = self.id()?;
        let var = format!("{}.key", self.var);
        let key = key_of(self.field("key")?, self.field("key_file")?, &var)?
            .ok_or_else(|| ConfigError::new(var, "missing (give key or key_file)"))?;
        Ok(Partner { id, key })
    }

    fn openapi(&self) -> Result<OpenApiApp, ConfigError> {
        self.only(OPENAPI_KEYS)?;
        let partner = self.id()?;
        let app_id = self.required("app_id")?;
        if !(8..=32).contains(&app_id.len()) || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(
                format!("{}.app_id", self.var),
                format!("{app_id:?} is not an app id (digits, like 2021000000000000)"),
            ));
        }
        let private = self.pem("private_key_file")?;
        let key = AppKey::parse(&private).map_err(|e| {
            ConfigError::new(format!("{}.private_key_file", self.var), e.to_string())
        })?;
        let public = self.pem("alipay_public_key_file")?;
        let alipay_public = AlipayPublicKey::parse(&public).map_err(|e| {
            ConfigError::new(
                format!("{}.alipay_public_key_file", self.var),
                e.to_string(),
            )
        })?;
        Ok(OpenApiApp {
            partner,
            app_id,
            key: Arc::new(key),
            alipay_public,
        })
    }

    fn pem(&self, name: &str) -> Result<String, ConfigError> {
        let path = self.required(name)?;
        std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                format!("{}.{name}", self.var),
                format!("cannot read {path}: {}", e.kind()),
            )
        })
    }
}

/// A key given inline or in a file (whose trailing newline is not part of it).
pub fn key_of(
    inline: Option<String>,
    file: Option<String>,
    var: &str,
) -> Result<Option<SecretString>, ConfigError> {
    let key = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(var, "give the key or its file, not both"));
        }
        (Some(k), None) => k,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| {
                ConfigError::new(
                    format!("{var}_file"),
                    format!("cannot read {path}: {}", e.kind()),
                )
            })?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        (None, None) => return Ok(None),
    };
    // The reason never quotes the key itself.
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            var,
            "the key is empty or contains whitespace",
        ));
    }
    if is_placeholder(&key) {
        return Err(ConfigError::new(
            var,
            "the key is the example's placeholder (CHANGE-ME): put the real key from your secret store",
        ));
    }
    Ok(Some(SecretString::from(key)))
}

/// A value copied from an example file without being filled in.
pub fn is_placeholder(value: &str) -> bool {
    value.to_ascii_uppercase().contains("CHANGE-ME")
}
