//! The backend's logs: read from the engine as `docker logs` gives them ([`stream`]), and kept for
//! the log viewer in a compact store with its search ([`store`]).
pub mod store;
pub mod stream;
