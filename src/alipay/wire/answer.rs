//! The synchronous XML answer to a refund request.
//!
//! Owns reading `<alipay><is_success>T|F|P</is_success><error>CODE</error></alipay>`.
//! Invariant: only a well-formed `alipay` document with exactly one readable
//! `is_success` becomes a [`SyncAnswer`]; anything else (an HTML error page,
//! an empty body, a proxy's garbage) is an [`AnswerError`], which the caller
//! must treat as an unknown outcome, never as a failure.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use thiserror::Error;

/// What Alipay said about a submitted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAnswer {
    /// `T`: accepted; the results come later by notification.
    Accepted,
    /// `P`: processing; whether it was accepted is not known yet.
    Processing,
    /// `F`: the whole batch was refused with this code; nothing will be notified.
    Failed {
        /// Alipay's error code, such as `ILLEGAL_SIGN`.
        code: String,
    },
}

/// Why an answer could not be read; its outcome is unknown.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AnswerError {
    /// Not well-formed XML.
    #[error("answer is not XML: {0}")]
    NotXml(String),
    /// Well-formed, but the root element is not `alipay` (often an HTML page).
    #[error("answer's root element is {0:?}, not alipay")]
    WrongRoot(String),
    /// No `is_success` element, or an empty one.
    #[error("answer has no is_success")]
    MissingIsSuccess,
    /// More than one `is_success` or `error`: we will not pick one.
    #[error("answer repeats {0}")]
    Repeated(&'static str),
    /// `is_success` other than `T`, `F` or `P`.
    #[error("answer has is_success {0:?}")]
    UnknownIsSuccess(String),
    /// `F` without an error code.
    #[error("answer is F without an error code")]
    MissingErrorCode,
}

/// Parses the synchronous answer body.
pub fn parse_sync_answer(body: &str) -> Result<SyncAnswer, AnswerError> {
    let fields = read_fields(body)?;
    let is_success = fields.is_success.ok_or(AnswerError::MissingIsSuccess)?;
    match is_success.as_str() {
        "T" => Ok(SyncAnswer::Accepted),
        "P" => Ok(SyncAnswer::Processing),
        "F" => match fields.error {
            Some(code) if !code.is_empty() => Ok(SyncAnswer::Failed { code }),
            _ => Err(AnswerError::MissingErrorCode),
        },
        "" => Err(AnswerError::MissingIsSuccess),
        other => Err(AnswerError::UnknownIsSuccess(other.to_owned())),
    }
}

/// The two fields we read, trimmed.
#[derive(Default)]
struct Fields {
    is_success: Option<String>,
    error: Option<String>,
}

/// Walks the document, collecting the text of `is_success` and `error`
/// directly under the `alipay` root; other elements (`request`, `sign`, …)
/// are ignored.
fn read_fields(body: &str) -> Result<Fields, AnswerError> {
    let mut reader = Reader::from_str(body);
    let mut fields = Fields::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| AnswerError::NotXml(e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = element_name(&start);
                if path.is_empty() {
                    if saw_root || name != "alipay" {
                        return Err(AnswerError::WrongRoot(name));
                    }
                    saw_root = true;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(start) if path.is_empty() => {
                let name = element_name(&start);
                return Err(AnswerError::WrongRoot(name));
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => {
                let entity = format!("&{};", r.into_inner());
                let resolved = quick_xml::escape::unescape(&entity)
                    .map_err(|e| AnswerError::NotXml(e.to_string()))?;
                text.push_str(&resolved);
            }
            Event::End(_) => {
                if path.len() == 2 {
                    let slot = match path[1].as_str() {
                        "is_success" => Some(("is_success", &mut fields.is_success)),
                        "error" => Some(("error", &mut fields.error)),
                        _ => None,
                    };
                    if let Some((name, slot)) = slot {
                        if slot.is_some() {
                            return Err(AnswerError::Repeated(name));
                        }
                        *slot = Some(text.trim().to_owned());
                    }
                }
                path.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(AnswerError::NotXml("no root element".into()));
    }
    if !path.is_empty() {
        return Err(AnswerError::NotXml("unclosed element".into()));
    }
    Ok(fields)
}

/// The local name of an element, without any namespace prefix.
fn element_name(start: &BytesStart<'_>) -> String {
    let name: &str = start.local_name().into_inner();
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

    #[test]
    fn t_is_accepted() {
        let body = format!("{DECL}<alipay><is_success>T</is_success></alipay>");
        assert_eq!(parse_sync_answer(&body), Ok(SyncAnswer::Accepted));
    }

    #[test]
    fn p_is_processing() {
        let body = "<alipay><is_success>P</is_success></alipay>";
        assert_eq!(parse_sync_answer(body), Ok(SyncAnswer::Processing));
    }

    #[test]
    fn f_carries_its_error_code() {
        let body =
            format!("{DECL}<alipay><is_success>F</is_success><error>ILLEGAL_SIGN</error></alipay>");
        assert_eq!(
            parse_sync_answer(&body),
            Ok(SyncAnswer::Failed {
                code: "ILLEGAL_SIGN".into()
            })
        );
    }

    #[test]
    fn whitespace_and_other_elements_are_ignored() {
        let body = format!(
            "{DECL}\n<alipay>\n  <error> DUPLICATE_BATCH_NO </error>\n  <request><param name=\"x\">1</param></request>\n  <is_success>\n F\n</is_success>\n</alipay>\n"
        );
        assert_eq!(
            parse_sync_answer(&body),
            Ok(SyncAnswer::Failed {
                code: "DUPLICATE_BATCH_NO".into()
            })
        );
    }

    #[test]
    fn an_is_success_nested_deeper_does_not_count() {
        let body = "<alipay><request><is_success>T</is_success></request></alipay>";
        assert_eq!(parse_sync_answer(body), Err(AnswerError::MissingIsSuccess));
    }

    #[test]
    fn an_html_error_page_is_not_an_answer() {
        let body = "<html><head><title>502 Bad Gateway</title></head><body>502</body></html>";
        assert_eq!(
            parse_sync_answer(body),
            Err(AnswerError::WrongRoot("html".into()))
        );
        let sloppy = "<!DOCTYPE html><html><body><br><p>oops</body></html>";
        assert!(parse_sync_answer(sloppy).is_err());
    }

    #[test]
    fn an_empty_body_is_not_an_answer() {
        assert!(matches!(parse_sync_answer(""), Err(AnswerError::NotXml(_))));
        assert!(matches!(
            parse_sync_answer("  \n"),
            Err(AnswerError::NotXml(_))
        ));
    }

    #[test]
    fn garbage_is_not_an_answer() {
        for body in [
            "success",
            "is_success=T",
            "<alipay><is_success>T</alipay>",
            "<alipay><is_success>T</is_success>",
        ] {
            assert!(parse_sync_answer(body).is_err(), "{body}");
        }
    }

    #[test]
    fn f_without_a_code_is_unreadable() {
        let body = "<alipay><is_success>F</is_success><error></error></alipay>";
        assert_eq!(parse_sync_answer(body), Err(AnswerError::MissingErrorCode));
        let body = "<alipay><is_success>F</is_success></alipay>";
        assert_eq!(parse_sync_answer(body), Err(AnswerError::MissingErrorCode));
    }

    #[test]
    fn a_repeated_is_success_is_refused() {
        let body = "<alipay><is_success>F</is_success><is_success>T</is_success></alipay>";
        assert_eq!(
            parse_sync_answer(body),
            Err(AnswerError::Repeated("is_success"))
        );
    }

    #[test]
    fn an_unknown_is_success_is_refused() {
        let body = "<alipay><is_success>t</is_success></alipay>";
        assert_eq!(
            parse_sync_answer(body),
            Err(AnswerError::UnknownIsSuccess("t".into()))
        );
    }

    #[test]
    fn entities_and_cdata_in_the_code_are_decoded() {
        let body = "<alipay><is_success>F</is_success><error><![CDATA[SYSTEM_]]>ERROR&#65;</error></alipay>";
        assert_eq!(
            parse_sync_answer(body),
            Ok(SyncAnswer::Failed {
                code: "SYSTEM_ERRORA".into()
            })
        );
    }
}
