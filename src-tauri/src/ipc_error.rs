//! The one error shape the UI receives.

use serde::Serialize;

/// An error as the UI receives it: a stable machine-readable `code` to
/// branch on and a plain-language `message` to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpcError {
    /// A stable `snake_case` code, the engine's [`escale_core::ErrorKind::code`].
    pub code: String,
    /// A complete sentence for the user.
    pub message: String,
}

impl From<escale_core::Error> for IpcError {
    fn from(error: escale_core::Error) -> Self {
        IpcError {
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }
}

impl IpcError {
    /// An error of the shell's own, with its code and message.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        IpcError {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// An engine error in an office user's words where it is a common one
    /// (the shared storage unreachable, the login refused), its own
    /// description otherwise.
    pub(crate) fn plain(error: &escale_core::Error) -> Self {
        let problem = crate::views::ProblemView::new(error.code(), &error.to_string());
        IpcError {
            code: problem.code,
            message: problem.message,
        }
    }

    /// For failures of the shell itself rather than the engine.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        IpcError {
            code: "internal".to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_code_and_message() {
        let error = escale_core::Error::NoConfigDir;
        let expected_message = error.to_string();
        let ipc = IpcError::from(error);
        assert_eq!(ipc.code, "config_invalid");
        assert_eq!(ipc.message, expected_message);
    }

    #[test]
    fn plain_words_replace_the_engine_message_of_common_problems() {
        let paused = escale_core::Error::MassDeletion {
            repository: "Reports".into(),
            folder: "/home/ana/Reports".into(),
            gone: 40,
            total: 50,
        };
        let ipc = IpcError::plain(&paused);
        assert_eq!(ipc.code, "mass_deletion");
        assert!(
            ipc.message.starts_with("Many files went missing"),
            "{}",
            ipc.message
        );
        assert!(
            !ipc.message.contains("escale confirm-deletions"),
            "{}",
            ipc.message
        );
        let other = escale_core::Error::NoConfigDir;
        assert_eq!(IpcError::plain(&other).message, other.to_string());
    }

    #[test]
    fn serializes_as_code_and_message_only() {
        let json = serde_json::to_string(&IpcError::internal("boom")).unwrap();
        assert_eq!(json, r#"{"code":"internal","message":"boom"}"#);
    }
}
