//! Errors as the windows receive them: the core's sentence in the app's terms, and the settings
//! field it is about, so a form can show it beside that field.
use assemble_core::{build::window::FieldError, Error, Place};
use serde::Serialize;

/// A command's failure, as the windows receive it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommandError {
    pub message: String,
    pub field: Option<&'static str>,
    /// The Build window's bad entries, each beside its field (`secret-0`, `ssh`, `output`…); the
    /// first is also `message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSentence>,
}

/// One bad entry of a form: its field (none: the form as a whole) and its sentence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldSentence {
    pub field: Option<String>,
    pub message: String,
}

/// What a command answers.
pub type Reply<T> = Result<T, CommandError>;

impl From<Error> for CommandError {
    fn from(error: Error) -> Self {
        Self { message: error.sentence(Place::App), field: error.settings_field(), fields: Vec::new() }
    }
}

impl CommandError {
    /// The core's error in the Build window: the sentence in the app's terms, beside the form's
    /// field it is about.
    pub fn in_build_form(error: Error) -> Self {
        Self { message: error.sentence(Place::App), field: error.build_field(), fields: Vec::new() }
    }

    /// Every bad entry of the Build window, each with its field.
    pub fn in_build_fields(errors: Vec<FieldError>) -> Self {
        let fields: Vec<FieldSentence> = errors
            .into_iter()
            .map(|e| FieldSentence { field: e.field, message: e.error.sentence(Place::App) })
            .collect();
        let message = fields.first().map(|f| f.message.clone()).unwrap_or_default();
        Self { message, field: None, fields }
    }

    /// A failure of our own (not the core's), such as a file the app could not write.
    pub fn plain(message: impl Into<String>) -> Self {
        Self { message: message.into(), field: None, fields: Vec::new() }
    }
}
