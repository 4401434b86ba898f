//! What on-call does to a batch or refund, shared by the command line and
//! the operator page: the password form of a batch awaiting an operator.

use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::alipay::wire::batch_no::{beijing_now, parse_refund_date};
use crate::alipay::wire::detail::parse_stored;
use crate::alipay::wire::pwd_form::{PwdRequest, pwd_form_html};
use crate::config::Settings;
use crate::storage;

/// Why a batch has no password form now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoForm {
    #[error("batch {0} is unknown")]
    Unknown(String),
    #[error("batch {0} is {1}, not awaiting_operator: it has no password form")]
    NotAwaiting(String, String),
    #[error("ALIPAY_NOTIFY_URL is required: the form tells Alipay where to send the result")]
    NoNotifyUrl,
    #[error("partner {0} has no key configured")]
    NoKey(String),
    #[error("batch {0} cannot be put in a form as stored: {1}")]
    Unreadable(String, String),
    #[error(
        "batch {0} is dated {1}: Alipay would refuse its form with REFUND_DATE_ERROR; once Alipay provably does not hold it, the reconciler moves its refunds into a new batch awaiting an operator with today's date (batch list --awaiting-operator)"
    )]
    PastDate(String, String),
}

impl NoForm {
    /// A missing setting is a usage error (exit 2); the rest exit 1.
    pub fn is_setting(&self) -> bool {
        matches!(self, Self::NoNotifyUrl | Self::NoKey(_))
    }
}

/// The signed auto-submit page of the password interface for a batch
/// awaiting an operator, rebuilt byte for byte from what was stored; records
/// that it was printed (the reconciler asks Alipay about it from then on).
pub async fn password_form(
    pool: &PgPool,
    settings: &Settings,
    batch_no: &str,
) -> anyhow::Result<Result<String, NoForm>> {
    let Some(b) = storage::batch_view::form_source(pool, batch_no).await? else {
        return Ok(Err(NoForm::Unknown(batch_no.into())));
    };
    if b.status != "awaiting_operator" {
        return Ok(Err(NoForm::NotAwaiting(batch_no.into(), b.status)));
    }
    let today = beijing_now(chrono::Utc::now()).format("%Y%m%d").to_string();
    if batch_no.get(..8).is_some_and(|d| d < today.as_str()) {
        return Ok(Err(NoForm::PastDate(
            batch_no.into(),
            batch_no[..8].to_owned(),
        )));
    }
    let Some(notify_url) = settings.alipay.notify_url.clone() else {
        return Ok(Err(NoForm::NoNotifyUrl));
    };
    let Some(partner) = settings.alipay.partners.iter().find(|p| p.id == b.partner) else {
        return Ok(Err(NoForm::NoKey(b.partner)));
    };
    let request = match build(&b, batch_no, notify_url) {
        Ok(r) => r,
        Err(why) => return Ok(Err(NoForm::Unreadable(batch_no.into(), why))),
    };
    let html = pwd_form_html(
        &settings.alipay.gateway,
        partner.key.expose_secret(),
        &request,
    );
    storage::batch_view::mark_form_printed(pool, batch_no).await?;
    Ok(Ok(html))
}

fn build(
    b: &storage::batch_view::FormSource,
    batch_no: &str,
    notify_url: String,
) -> Result<PwdRequest, String> {
    let request = PwdRequest {
        partner: b.partner.clone(),
        notify_url,
        batch_no: batch_no.to_owned(),
        refund_date: parse_refund_date(&b.refund_date).ok_or("unreadable refund_date")?,
        items: parse_stored(&b.detail_data)?,
    };
    request.validate().map_err(|e| e.to_string())?;
    Ok(request)
}
