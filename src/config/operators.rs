//! Who may use the operator page (`ADMIN_LISTEN`): the `[[operators]]`
//! tables of the file, each a `name` and a `token_file` holding that
//! person's token, plus the deprecated `ADMIN_TOKEN` as one operator named
//! `admin`.
//!
//! Invariants: at least one operator; names are unique and made of letters,
//! digits and `. _ - @` (they go into the session cookie and the logs);
//! every token is at least 16 characters after trimming, has no whitespace
//! inside, is no placeholder (`CHANGE-ME`, any case) and belongs to one
//! operator only (a bearer token must name one person). Reasons never quote
//! a token.

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Operator, Source};

/// The deprecated single token's operator name.
pub const LEGACY_NAME: &str = "admin";

const MIN_TOKEN: usize = 16;
const MAX_NAME: usize = 64;
const KEYS: &[&str] = &["name", "token_file"];

/// Every operator: `ADMIN_TOKEN`'s first, then the file's in order.
pub fn operators(src: &Source) -> Result<Vec<Operator>, ConfigError> {
    let mut out = Vec::new();
    if let Some(token) = src.get("ADMIN_TOKEN")? {
        out.push(Operator {
            name: LEGACY_NAME.to_owned(),
            token: check_token("ADMIN_TOKEN", &token)?,
        });
    }
    for (i, table) in src.tables("operators").iter().enumerate() {
        out.push(operator(&format!("operators[{i}]"), table)?);
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            "operators",
            "at least one is required when ADMIN_LISTEN is set: [[operators]] tables \
             (name, token_file) in the config file, or ADMIN_TOKEN (deprecated)",
        ));
    }
    distinct(&out)?;
    Ok(out)
}

/// One `[[operators]]` table.
fn operator(var: &str, table: &toml::Table) -> Result<Operator, ConfigError> {
    if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ConfigError::new(
            format!("{var}.{unknown}"),
            format!("unknown key (expected {})", KEYS.join(", ")),
        ));
    }
    let text = |key: &str| match table.get(key) {
        Some(toml::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ConfigError::new(format!("{var}.{key}"), "must be a string")),
        None => Err(ConfigError::new(format!("{var}.{key}"), "missing")),
    };
    let name = text("name")?;
    check_name(&format!("{var}.name"), &name)?;
    let file_var = format!("{var}.token_file");
    let path = text("token_file")?;
    let token = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::new(&file_var, format!("cannot read {path}: {}", e.kind())))?;
    Ok(Operator {
        name,
        token: check_token(&file_var, &token)?,
    })
}

fn check_name(var: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if !name.is_empty() && name.len() <= MAX_NAME && name.chars().all(allowed) {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!(
                "{name:?} is not a name of 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@'"
            ),
        ))
    }
}

/// The token, trimmed, if it may be used; the reason never quotes it.
fn check_token(var: &str, token: &str) -> Result<SecretString, ConfigError> {
    let token = token.trim();
    if token.to_ascii_uppercase().contains("CHANGE-ME") {
        return Err(ConfigError::new(
            var,
            "is still the CHANGE-ME placeholder: put a random token there (e.g. openssl rand -base64 32)",
        ));
    }
    if token.chars().count() < MIN_TOKEN {
        return Err(ConfigError::new(
            var,
            format!("the token must be at least {MIN_TOKEN} characters"),
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            var,
            "the token contains whitespace or control characters",
        ));
    }
    Ok(SecretString::from(token.to_owned()))
}

/// No two operators share a name or a token.
fn distinct(ops: &[Operator]) -> Result<(), ConfigError> {
    for (i, a) in ops.iter().enumerate() {
        for b in &ops[..i] {
            if a.name == b.name {
                return Err(ConfigError::new(
                    "operators",
                    format!("operator {} is configured twice", a.name),
                ));
            }
            if a.token.expose_secret() == b.token.expose_secret() {
                return Err(ConfigError::new(
                    "operators",
                    format!(
                        "operators {} and {} have the same token: each person needs their own",
                        b.name, a.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
