//! A build's progress as BuildKit streams it (`Control.Status`: vertexes, their statuses, logs and
//! warnings), read once, here, for every face: `assemble build --progress plain|tty|rawjson`, the
//! app's Build window, `assemble backend builds logs` and the app's Builds window. The same
//! messages give the same steps everywhere: the same `#N`, names, sizes and lines.
//!
//! - [`decode`] turns the messages into [`Step`]s, and says what each message changed;
//! - [`plain`] writes buildx's `--progress plain` text from those changes and steps (the live
//!   printer, the replay of a recorded build, the failure box, the texts the windows show);
//! - [`rawjson`] writes each message as `--progress rawjson` does (BuildKit's own JSON, untouched).
//!
//! # The rules, and why
//!
//! They are buildx's (`progressui` in moby/buildkit: `display.go` reads, `printer.go` writes
//! plain), so our output reads like `docker buildx build --progress plain`. Where buildx's
//! result depends on when its display timer fires, we take the rule that depends only on the
//! messages, so that a live build and its replay from the history (which BuildKit may batch
//! differently) agree:
//!
//! - **`#N` is the order in which steps first appear**: a vertex becomes step `#N` in the first
//!   message that shows it begun, or that brings a status, a log line or a warning for it.
//!   buildx gives the number when it first prints a vertex, which it does from its start, so its
//!   numbers rise down the page. Not the order of the start times (which the history once used):
//!   a live printer cannot wait for a step that began earlier but is reported later. BuildKit
//!   sends the whole graph first, unstarted: a vertex that never begins is no step (buildx prints
//!   none, and a number given to it would have to change when it began).
//! - **A step's time is the sum of its runs** (buildx's merged intervals): BuildKit may run a
//!   vertex twice (it loads the Dockerfile's definition twice), and `DONE 0.3s` counts both.
//!   Log times are seconds since the step's latest run began.
//! - **The end**: `#N ERROR: <error>`, `#N CANCELED` when the error ends in `context canceled`,
//!   `#N CACHED`, else `#N DONE 1.2s`, after the step's lines of that message.
//! - **A message is read whole, then told step by step in `#N` order.** BuildKit replays a
//!   recorded build as one message (every vertex, then every status, log and warning); told kind
//!   by kind, each step would print twice. A step that ends and begins again within one message
//!   (BuildKit runs the Dockerfile's definition twice) has not ended. The two runs sometimes come
//!   in two messages, so an end alone in its message waits for the next one and is not told if
//!   that one begins the step again (buildx's display timer hides the short pause the same way).
//! - **Output lines are joined across messages**: a piece without a newline waits for the rest
//!   (per step, whatever the stream, as buildx); the line's time is that of its first piece. A
//!   line is whole at its newline, at its step's end, or at the end of the stream. buildx prints
//!   a half line at once and finishes it in place; we print it once, whole, so every face has
//!   the same line. Empty lines are kept (buildx prints them); a `\r` before the newline is not.
//!   The time has 3 decimals under 10 s, 2 under 100 s, else 1 (`0.250`, `12.35`, `123.4`).
//! - **Sizes are buildx's** (`units.Bytes` with `%.2f`): decimal units, two decimals (`2.06kB`,
//!   `27.14MB / 27.14MB`), whole bytes under 1000 (`32B`). Never raw byte counts.
//! - **A status line prints once, when its part ends** (`#N transferring context: 2.06kB 0.1s
//!   done`), or at the end of the stream if it never did; the running byte counts are for the live
//!   views (the tty, a running step in the Builds window). buildx also prints a part while it runs,
//!   sampled by its timer: that would make the live lines and the replayed ones differ.
//! - **Warnings print in their step** (`#N WARN: <short>`), as buildx; one for no known step
//!   prints alone (`WARNING: <short>`).
//! - **Switching steps** prints `#N ...` for the step left unfinished, a blank line, then the
//!   header of the step now printing, as buildx does.
//! - **The failure box** (`------` / ` > name:` / its last 10 output lines with their times /
//!   `------`) is printed for every step that failed (not one that was canceled), in `#N` order.
pub mod decode;
pub mod plain;
pub mod rawjson;

/// BuildKit's progress message, which [`decode::Decoder::apply`] and [`plain::PlainPrinter::apply`] take.
pub use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
pub use decode::{Decoder, Part, Step, StepLine};
pub use plain::PlainPrinter;
