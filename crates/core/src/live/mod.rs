//! The backend seen live, for the tray, the windows and the soak: its state at a glance
//! ([`status`]), Docker's events about our containers and the engine coming and going
//! ([`watch`]), the repair of the sidecars after each change ([`keeper`]), and which changes
//! deserve a notification ([`notice`]). Built on the backend; the backend knows nothing of it.
pub mod keeper;
pub mod notice;
pub mod status;
pub mod watch;
