//! An error as JSON: `code`, `message`, and the details its variant carries, so a client can
//! rebuild the same [`Error`] variant (`matches!(e, Error::JobNotFound { .. })` holds for an
//! error that came over a socket as for a local one).
//!
//! | code | details |
//! |---|---|
//! | `JOB_NOT_FOUND`, `STALE_LEASE` | `jobId` |
//! | `JOB_NOT_PENDING` | `jobId`, `status` |
//! | `PAYLOAD_TOO_LARGE` | `what`, `size`, `limit` |
//! | `SCHEDULE_EXISTS`, `SCHEDULE_NOT_FOUND` | `name` |
//! | `DATABASE_IN_USE` | `path`, `holder`? (pid), `holderCommand`? |
//! | `DATABASE_NOT_FOUND` | `path` |
//! | `CORRUPTION` | `tree`, `key`, `detail` |
//! | others | none: the message is the whole of it |

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::error::{Error, ErrorCode};

/// An error's `code`, `message` and details, as every door prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorView<'a> {
    code: ErrorCode,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holder_command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tree: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl<'a> From<&'a Error> for ErrorView<'a> {
    fn from(e: &'a Error) -> Self {
        let mut v = ErrorView {
            code: e.code(),
            message: e.message(),
            job_id: None,
            status: None,
            what: None,
            size: None,
            limit: None,
            name: None,
            path: None,
            holder: None,
            holder_command: None,
            tree: None,
            key: None,
            detail: None,
        };
        match e {
            Error::JobNotFound { id } | Error::StaleLease { id } => v.job_id = Some(id),
            Error::JobNotPending { id, status } => {
                v.job_id = Some(id);
                v.status = Some(status);
            }
            Error::PayloadTooLarge { what, size, limit } => {
                v.what = Some(what);
                v.size = Some(*size);
                v.limit = Some(*limit);
            }
            Error::ScheduleExists(name) | Error::ScheduleNotFound(name) => v.name = Some(name),
            Error::DatabaseInUse {
                path,
                holder,
                holder_command,
            } => {
                v.path = Some(path.display().to_string());
                v.holder = *holder;
                v.holder_command = holder_command.as_deref();
            }
            Error::DatabaseNotFound { path } => v.path = Some(path.display().to_string()),
            Error::Corruption { tree, key, detail } => {
                v.tree = Some(tree);
                v.key = Some(key);
                v.detail = Some(detail);
            }
            _ => {}
        }
        v
    }
}

/// An error as the contract prints it (the `error` object of a response); `Error::from`
/// rebuilds the variant it came from.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorJson {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    what: Option<String>,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    holder: Option<u32>,
    #[serde(default)]
    holder_command: Option<String>,
    #[serde(default)]
    tree: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// The `&'static str` names a variant carries, for names this version uses.
fn known(name: Option<String>, names: &[&'static str]) -> Option<&'static str> {
    let name = name?;
    names.iter().copied().find(|n| *n == name)
}

impl From<ErrorJson> for Error {
    /// The variant the JSON was printed from; [`Error::Remote`] (with the code, or
    /// `STORAGE` for a code this version does not know) when its details are missing.
    fn from(j: ErrorJson) -> Error {
        let Some(code) = ErrorCode::from_wire(&j.code) else {
            return Error::Remote {
                code: ErrorCode::Storage,
                message: format!("{}: {}", j.code, j.message),
            };
        };
        let rebuilt = match code {
            ErrorCode::JobNotFound => j.job_id.map(|id| Error::JobNotFound { id }),
            ErrorCode::StaleLease => j.job_id.map(|id| Error::StaleLease { id }),
            ErrorCode::JobNotPending => j
                .job_id
                .zip(j.status)
                .map(|(id, status)| Error::JobNotPending { id, status }),
            ErrorCode::InvalidArgument => Some(Error::InvalidArgument(j.message.clone())),
            ErrorCode::InvalidCron => Some(Error::InvalidCron(j.message.clone())),
            ErrorCode::InvalidTimezone => Some(Error::InvalidTimezone(j.message.clone())),
            ErrorCode::PayloadTooLarge => known(j.what, &["payload", "result"])
                .zip(j.size.zip(j.limit))
                .map(|(what, (size, limit))| Error::PayloadTooLarge { what, size, limit }),
            ErrorCode::ScheduleExists => j.name.map(Error::ScheduleExists),
            ErrorCode::ScheduleNotFound => j.name.map(Error::ScheduleNotFound),
            ErrorCode::DatabaseInUse => j.path.map(|path| Error::DatabaseInUse {
                path,
                holder: j.holder,
                holder_command: j.holder_command,
            }),
            ErrorCode::DatabaseNotFound => j.path.map(|path| Error::DatabaseNotFound { path }),
            ErrorCode::Corruption => known(
                j.tree,
                &[
                    "jobs",
                    "events",
                    "meta",
                    "queues",
                    "schedules",
                    "dedupe",
                    "journal",
                    "sled",
                    "checkpoint",
                ],
            )
            .zip(j.key.zip(j.detail))
            .map(|(tree, (key, detail))| Error::Corruption { tree, key, detail }),
            ErrorCode::Storage => Some(Error::Storage {
                context: j.message.clone(),
                source: None,
            }),
            ErrorCode::ShuttingDown => Some(Error::ShuttingDown),
        };
        rebuilt.unwrap_or(Error::Remote {
            code,
            message: j.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_json() {
        let errors = [
            Error::JobNotFound { id: "j1".into() },
            Error::JobNotPending {
                id: "j1".into(),
                status: "running".into(),
            },
            Error::InvalidArgument("bad".into()),
            Error::PayloadTooLarge {
                what: "result",
                size: 10,
                limit: 5,
            },
            Error::ScheduleExists("s".into()),
            Error::ScheduleNotFound("s".into()),
            Error::InvalidCron("cron".into()),
            Error::InvalidTimezone("tz".into()),
            Error::StaleLease { id: "j2".into() },
            Error::DatabaseInUse {
                path: "/var/q".into(),
                holder: Some(42),
                holder_command: Some("jobspool".into()),
            },
            Error::Corruption {
                tree: "jobs",
                key: "k".into(),
                detail: "d".into(),
            },
            Error::DatabaseNotFound {
                path: "/nope".into(),
            },
            Error::Storage {
                context: "disk".into(),
                source: Some(Box::new(std::io::Error::other("full"))),
            },
            Error::ShuttingDown,
        ];
        assert_eq!(errors.len(), ErrorCode::ALL.len(), "one per code");
        for e in errors {
            let text = serde_json::to_string(&ErrorView::from(&e)).unwrap();
            let back = Error::from(serde_json::from_str::<ErrorJson>(&text).unwrap());
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&e),
                "{text}"
            );
            assert_eq!(back.to_string(), e.to_string(), "{text}");
        }
        let unknown: ErrorJson =
            serde_json::from_str(r#"{"code":"TEAPOT","message":"short and stout"}"#).unwrap();
        let e = Error::from(unknown);
        assert!(
            matches!(
                e,
                Error::Remote {
                    code: ErrorCode::Storage,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.message().contains("TEAPOT"), "{e}");
        let bare: ErrorJson =
            serde_json::from_str(r#"{"code":"JOB_NOT_FOUND","message":"m"}"#).unwrap();
        assert!(matches!(
            Error::from(bare),
            Error::Remote {
                code: ErrorCode::JobNotFound,
                ..
            }
        ));
    }
}
