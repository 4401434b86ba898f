//! Where a setting's text comes from: the environment first, then the file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;

use super::{ConfigError, VARIABLES};

/// The arrays of tables the file may hold beside the variables.
const TABLES: [&str; 2] = ["partners", "operators"];

/// The environment's variables and the file's keys, as text.
pub struct Source {
    env: HashMap<String, String>,
    file: toml::Table,
}

impl Source {
    /// Reads the TOML text; a key that names no setting is an error, so a typo
    /// in the file cannot silently leave a default in force.
    pub fn new(env: HashMap<String, String>, file_text: Option<&str>) -> Result<Self, ConfigError> {
        let file: toml::Table = match file_text {
            Some(t) => t.parse().map_err(|e: toml::de::Error| {
                ConfigError::new("--config", format!("not valid TOML: {}", e.message()))
            })?,
            None => toml::Table::new(),
        };
        for key in file.keys() {
            let known = TABLES.contains(&key.as_str())
                || VARIABLES.iter().any(|v| v.to_lowercase() == *key);
            if !known {
                return Err(ConfigError::new(
                    key.clone(),
                    "unknown setting in the config file",
                ));
            }
        }
        Ok(Self { env, file })
    }

    /// The text of a setting, `None` when unset or empty in the environment.
    pub fn get(&self, var: &str) -> Result<Option<String>, ConfigError> {
        if let Some(v) = self.env.get(var) {
            return Ok(Some(v.clone()).filter(|v| !v.is_empty()));
        }
        match self.file.get(&var.to_lowercase()) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(toml::Value::Boolean(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfigError::new(
                var,
                "must be a string, an integer or a boolean in the file",
            )),
        }
    }

    /// The tables of an array of tables in the file (`[[partners]]`,
    /// `[[operators]]`), empty when it has none.
    pub fn tables(&self, name: &str) -> Vec<toml::Table> {
        match self.file.get(name) {
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| v.as_table().cloned().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn string_or(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(var)?.unwrap_or_else(|| default.to_owned()))
    }

    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var)?.as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(ConfigError::new(
                var,
                format!("must be true or false, not {other:?}"),
            )),
        }
    }

    pub fn number_in(
        &self,
        var: &str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(text) = self.get(var)? else {
            return Ok(default);
        };
        match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError::new(
                var,
                format!(
                    "must be a whole number from {} to {}, not {text:?}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    pub fn addr_or(&self, var: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let text = self.string_or(var, default)?;
        text.parse().map_err(|_| {
            ConfigError::new(var, format!("{text:?} is not an address like 0.0.0.0:8080"))
        })
    }

    pub fn url_or(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        let url = self.string_or(var, default)?;
        check_url(var, &url)?;
        Ok(url)
    }

    pub fn optional_url(&self, var: &str) -> Result<Option<String>, ConfigError> {
        let url = self.get(var)?;
        if let Some(u) = &url {
            check_url(var, u)?;
        }
        Ok(url)
    }
}

/// An http(s) URL without a query string: Alipay appends its own parameters.
fn check_url(var: &str, url: &str) -> Result<(), ConfigError> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let host_ok = url
        .split("://")
        .nth(1)
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !scheme_ok
        || !host_ok
        || url.contains('?')
        || url.contains('#')
        || url.contains(char::is_whitespace)
    {
        return Err(ConfigError::new(
            var,
            format!("{url:?} is not an http(s) URL without a query string"),
        ));
    }
    Ok(())
}
