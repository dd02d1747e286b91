//! The log viewer's commands. The lines live here, in the app's [`LogStore`] (core), not in the
//! web view: the follow fills the store and tells the window only how many lines there are; the
//! window asks for the rows it shows, and the store searches and saves.
use assemble_core::{
    engine::Engine,
    logs::store::{LogStore, Row},
    Backend, LineSplitter, LogOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use tauri::{ipc::Channel, AppHandle, Manager, Runtime, State};
use tokio::sync::watch;

use crate::{
    errors::{CommandError, Reply},
    state::{Connection, LogCount, LogFeed, LogViewer, Operations, Superseded},
};

fn count(store: &LogStore) -> LogCount {
    LogCount { first: store.first(), end: store.end(), matches: store.match_count() }
}

/// The most rows one request returns: a tall window shows about a hundred.
const MAX_ROWS: usize = 1000;

/// A count reaches the window at most this often while lines stream in.
const LOG_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// While lines pour in (the backlog of a long log: thousands per count), counts come this often
/// instead: each one repaints the window, and nobody reads twenty screens a second.
const FLOOD_FLUSH: std::time::Duration = std::time::Duration::from_millis(200);

/// A count that brought at least this many lines means the lines pour in.
const FLOOD_LINES: u64 = 1000;

/// Starts reading the backend's logs into a fresh store (all of them, then live) until
/// `stop_logs` is called, another feed starts, the engine changes, or the app quits (all at once,
/// through the follow's slot).
///
/// The reading runs on a thread of its own with a one-thread runtime and its own connection to
/// the engine: the engine sends one chunk per line, and handing a million chunks between the
/// threads of the app's runtime cost more than reading them (as it did in the CLI).
pub fn start_feed<R: Runtime>(app: &AppHandle<R>) -> LogFeed {
    let logs = app.state::<LogViewer>();
    let superseded = logs.follow.take();
    logs.with_store(|store| *store = LogStore::default());
    let (counts, counts_seen) = watch::channel(LogCount::default());
    let (outcome, outcome_seen) = watch::channel(None);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let ended = read_on_own_thread(app, counts, superseded).await;
        outcome.send_replace(Some(ended));
    });
    LogFeed { counts: counts_seen, outcome: outcome_seen }
}

/// Starts a feed for the Logs window that is opening, for its page to take.
pub fn offer_feed<R: Runtime>(app: &AppHandle<R>) {
    let feed = start_feed(app);
    app.state::<LogViewer>().offer_feed(feed);
}

async fn read_on_own_thread<R: Runtime>(
    app: AppHandle<R>,
    counts: watch::Sender<LogCount>,
    mut superseded: Superseded,
) -> Reply<()> {
    let (backend, mut quit) = (app.state::<Connection>().backend().await?, app.state::<Operations>().shutdown());
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("assemble-logs".into())
        .spawn(move || {
            let outcome = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(async move {
                    let reading = async {
                        // A connection made on this thread's runtime, so its I/O stays on this thread.
                        let engine = Engine::connect_to(backend.engine().endpoint().clone()).await?;
                        let backend = Backend::new(engine, backend.names().clone());
                        read_into_store(&app.state::<LogViewer>(), &backend, &counts).await
                    };
                    // A stop ends it at any point, even while an engine that hangs is being reached.
                    tokio::select! {
                        ended = reading => ended,
                        () = superseded.wait() => Ok(()),
                        () = quit.recv() => Ok(()),
                    }
                }),
                Err(err) => Err(CommandError::plain(format!(
                    "Could not start reading the logs ({err}); close the log viewer and open it again"
                ))),
            };
            let _ = done.send(outcome);
        })
        .map_err(|err| {
            CommandError::plain(format!("Could not start reading the logs ({err}); close some programs and try again"))
        })?;
    result.await.unwrap_or_else(|_| {
        Err(CommandError::plain("The log reader stopped unexpectedly; close the log viewer and open it again"))
    })
}

/// Tells `channel` how many lines the store holds as the feed reads them: the feed the window's
/// opening started, or (when the window follows again, after a switch of engine) a new one.
/// Returns when the feed ends, with its outcome, or when the window is gone.
#[tauri::command]
pub async fn follow_logs<R: Runtime>(
    app: AppHandle<R>,
    logs: State<'_, LogViewer>,
    channel: Channel<LogCount>,
) -> Reply<()> {
    let LogFeed { mut counts, mut outcome } = logs.claim_feed().unwrap_or_else(|| start_feed(&app));
    loop {
        let now = *counts.borrow_and_update();
        if channel.send(now).is_err() {
            return Ok(()); // the window is gone
        }
        if counts.changed().await.is_err() {
            break; // the reader is done
        }
    }
    let ended = match outcome.wait_for(Option::is_some).await {
        Ok(ended) => ended.clone().unwrap_or(Ok(())),
        Err(_) => Ok(()),
    };
    let _ = channel.send(*counts.borrow());
    ended
}

async fn read_into_store(logs: &LogViewer, backend: &Backend, counts: &watch::Sender<LogCount>) -> Reply<()> {
    let options = LogOptions { follow: true, tail: None, timestamps: true };
    let mut stream = Box::pin(backend.logs(&options).await?);
    logs.with_store(|store| *store = LogStore::default());
    let mut splitter = LineSplitter::default();
    let mut told = LogCount::default();
    // One timer, armed when lines arrive and none is pending: the engine sends a chunk per line,
    // and a timer per chunk would cost more than the line; an idle log wakes nobody.
    let flush = tokio::time::sleep(LOG_FLUSH);
    tokio::pin!(flush);
    let mut armed = false;
    let mut pause = LOG_FLUSH;
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(chunk)) => {
                    logs.with_store(|store| splitter.each_line(&chunk, |is_err, line| store.push(is_err, line)));
                    if !armed {
                        flush.as_mut().reset(tokio::time::Instant::now() + pause);
                        armed = true;
                    }
                    continue;
                }
                Some(Err(err)) => {
                    // The lines read so far stay, and are counted.
                    counts.send_replace(logs.with_store(|store| count(store)));
                    return Err(err.into());
                }
                None => {
                    let lines = splitter.finish();
                    let now = logs.with_store(|store| {
                        lines.iter().for_each(|(is_err, line)| store.push(*is_err, line));
                        count(store)
                    });
                    counts.send_replace(now);
                    return Ok(());
                }
            },
            () = &mut flush, if armed => armed = false,
        }
        let now = logs.with_store(|store| count(store));
        if now != told {
            counts.send_replace(now);
            pause = if now.end.saturating_sub(told.end) >= FLOOD_LINES { FLOOD_FLUSH } else { LOG_FLUSH };
            told = now;
        }
    }
}

#[tauri::command]
pub fn stop_logs(logs: State<'_, LogViewer>) {
    logs.end_feed();
}

/// Up to `count` rows from line number `from`: what the window shows.
#[tauri::command]
pub fn log_rows(logs: State<'_, LogViewer>, from: u64, count: usize) -> Vec<Row> {
    logs.with_store(|store| store.rows(from, count.min(MAX_ROWS)))
}

/// A new search (empty: none); the counts, with how many lines match.
#[tauri::command]
pub fn log_search(logs: State<'_, LogViewer>, query: String) -> LogCount {
    logs.with_store(|store| {
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
pub fn log_match(logs: State<'_, LogViewer>, index: Option<usize>, from: Option<u64>) -> Option<MatchAt> {
    logs.with_store(|store| {
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
pub fn log_text(logs: State<'_, LogViewer>, timestamps: bool) -> String {
    logs.with_store(|store| store.plain_text(timestamps))
}

/// Forgets the lines shown so far (Clear); new lines keep coming.
#[tauri::command]
pub fn clear_logs(logs: State<'_, LogViewer>) -> LogCount {
    logs.with_store(|store| {
        store.clear();
        count(store)
    })
}

/// Saves the kept lines, from the store, to a new file in the user's downloads folder.
#[tauri::command]
pub fn save_logs(logs: State<'_, LogViewer>, timestamps: bool) -> Reply<String> {
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
    let text = logs.with_store(|store| store.plain_text(timestamps));
    std::fs::write(&path, text).map_err(|e| {
        CommandError::plain(format!(
            "Could not write {}: {e}; free some space or make the folder writable, then save again",
            path.display()
        ))
    })?;
    Ok(path.display().to_string())
}
