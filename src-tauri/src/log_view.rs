//! The log viewer's commands. The lines live here, in the app's [`LogStore`] (core), not in the
//! web view: the follow fills the store and tells the window only how many lines there are; the
//! window asks for the rows it shows, and the store searches and saves.
use assemble_core::{
    log_store::{LogStore, Row},
    LineSplitter, LogOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use tauri::{ipc::Channel, State};

use crate::{
    errors::{CommandError, Reply},
    state::AppState,
};

/// What the window hears while following: the lines kept now and the search's count, never the
/// lines themselves.
#[derive(Serialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCount {
    /// The number of the first kept line.
    first: u64,
    /// The number the next line will get.
    end: u64,
    /// Lines that match the search.
    matches: usize,
}

fn count(store: &LogStore) -> LogCount {
    LogCount { first: store.first(), end: store.end(), matches: store.match_count() }
}

/// The most rows one request returns: a tall window shows about a hundred.
const MAX_ROWS: usize = 1000;

/// A count reaches the window at most this often while lines stream in.
const LOG_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// Reads the backend's logs into the store (all of them, then live) and tells `channel` how many
/// there are, until `stop_logs` is called, another follow starts, the engine changes, or the
/// window goes away (all at once, through the follow's slot). A new follow starts the store afresh.
#[tauri::command]
pub async fn follow_logs(state: State<'_, AppState>, channel: Channel<LogCount>) -> Reply<()> {
    let mut superseded = state.logs_follow.take();
    let backend = state.backend().await?;
    let options = LogOptions { follow: true, tail: None, timestamps: true };
    let mut stream = Box::pin(backend.logs(&options).await?);
    state.with_logs(|store| *store = LogStore::default());
    let mut quit = state.shutdown();
    let mut splitter = LineSplitter::default();
    let mut told = LogCount::default();
    // One timer for the whole stream, reset after each message: the engine sends a chunk per
    // line, and a timer per chunk would cost more than the line.
    let flush = tokio::time::sleep(LOG_FLUSH);
    tokio::pin!(flush);
    loop {
        let due = tokio::select! {
            next = stream.next() => match next {
                Some(Ok(chunk)) => {
                    let lines = splitter.push(&chunk);
                    state.with_logs(|store| lines.iter().for_each(|(is_err, line)| store.push(*is_err, line)));
                    false
                }
                Some(Err(err)) => return Err(err.into()),
                None => {
                    let lines = splitter.finish();
                    let now = state.with_logs(|store| {
                        lines.iter().for_each(|(is_err, line)| store.push(*is_err, line));
                        count(store)
                    });
                    let _ = channel.send(now);
                    return Ok(());
                }
            },
            () = &mut flush => true,
            () = superseded.wait() => return Ok(()),
            () = quit.recv() => return Ok(()),
        };
        if !due {
            continue;
        }
        let now = state.with_logs(|store| count(store));
        if now != told {
            if channel.send(now).is_err() {
                return Ok(()); // the window is gone
            }
            told = now;
        }
        flush.as_mut().reset(tokio::time::Instant::now() + LOG_FLUSH);
    }
}

#[tauri::command]
pub fn stop_logs(state: State<'_, AppState>) {
    state.logs_follow.end();
}

/// Up to `count` rows from line number `from`: what the window shows.
#[tauri::command]
pub fn log_rows(state: State<'_, AppState>, from: u64, count: usize) -> Vec<Row> {
    state.with_logs(|store| store.rows(from, count.min(MAX_ROWS)))
}

/// A new search (empty: none); the counts, with how many lines match.
#[tauri::command]
pub fn log_search(state: State<'_, AppState>, query: String) -> LogCount {
    state.with_logs(|store| {
        store.set_query(&query);
        count(store)
    })
}

/// Where the search's matches are: the line of match `index`, or (with `from`) the index of the
/// first match at or after line `from`.
#[derive(Serialize)]
pub struct MatchAt {
    index: usize,
    line: u64,
}

#[tauri::command]
pub fn log_match(state: State<'_, AppState>, index: Option<usize>, from: Option<u64>) -> Option<MatchAt> {
    state.with_logs(|store| {
        let index = match (index, from) {
            (Some(index), _) => index,
            (None, Some(line)) => store.match_from(line).unwrap_or(0),
            (None, None) => 0,
        };
        store.match_line(index).map(|line| MatchAt { index, line })
    })
}

/// Every kept line as plain text, for Copy.
#[tauri::command]
pub fn log_text(state: State<'_, AppState>, timestamps: bool) -> String {
    state.with_logs(|store| store.plain_text(timestamps))
}

/// Forgets the lines shown so far (Clear); new lines keep coming.
#[tauri::command]
pub fn clear_logs(state: State<'_, AppState>) -> LogCount {
    state.with_logs(|store| {
        store.clear();
        count(store)
    })
}

/// Saves the kept lines, from the store, to a new file in the user's downloads folder.
#[tauri::command]
pub fn save_logs(state: State<'_, AppState>, timestamps: bool) -> Reply<String> {
    let dir = std::env::var_os("XDG_DOWNLOAD_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join("Downloads")))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).map_err(|e| {
        CommandError::plain(format!(
            "Could not create {}: {e}; set XDG_DOWNLOAD_DIR to a folder you can write to",
            dir.display()
        ))
    })?;
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let path = dir.join(format!("assemble-backend-{seconds}.log"));
    let text = state.with_logs(|store| store.plain_text(timestamps));
    std::fs::write(&path, text).map_err(|e| {
        CommandError::plain(format!(
            "Could not write {}: {e}; free some space or make the folder writable, then save again",
            path.display()
        ))
    })?;
    Ok(path.display().to_string())
}
