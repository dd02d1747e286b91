//! Errors as the windows receive them: the core's sentence in the app's terms, and the settings
//! field it is about, so a form can show it beside that field.
use assemble_core::{Error, Place};
use serde::Serialize;

/// A command's failure, as the windows receive it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommandError {
    pub message: String,
    pub field: Option<&'static str>,
}

/// What a command answers.
pub type Reply<T> = Result<T, CommandError>;

impl From<Error> for CommandError {
    fn from(error: Error) -> Self {
        Self { message: error.sentence(Place::App), field: error.settings_field() }
    }
}

impl CommandError {
    /// The core's error in the Build window: the sentence in the app's terms, beside the form's
    /// field it is about.
    pub fn in_build_form(error: Error) -> Self {
        Self { message: error.sentence(Place::App), field: error.build_field() }
    }

    /// A failure of our own (not the core's), such as a file the app could not write.
    pub fn plain(message: impl Into<String>) -> Self {
        Self { message: message.into(), field: None }
    }
}
