//! The backend's logs: read from the engine as `docker logs` gives them ([`stream`]), and kept for
//! the log viewer in a compact store with its search ([`store`]); their ANSI escape codes read by
//! one grammar ([`ansi`]) for what is searched, copied and saved, and for what is shown.
pub mod ansi;
pub mod error;
pub mod store;
pub mod stream;
