fn main() {
    // Only our own commands exist in the ACL; each window's capability names the ones it may call.
    let manifest = tauri_build::AppManifest::new().commands(&[
        "snapshot",
        "uptime",
        "refresh",
        "start_backend",
        "stop_backend",
        "restart_backend",
        "apply_settings",
        "purge_preview",
        "purge_cache",
        "get_settings",
        "save_settings",
        "action_error",
        "autostart",
        "set_autostart",
        "add_port",
        "list_contexts",
        "list_volumes",
        "follow_logs",
        "stop_logs",
        "log_rows",
        "log_search",
        "log_match",
        "log_text",
        "clear_logs",
        "save_logs",
        "follow_build",
        "follow_builds",
        "open_window",
        "list_nodes",
        "add_node",
        "remove_node",
        "run_build",
        "cancel_build",
        "build_under_way",
        "choose_path",
    ]);
    // src-tauri/tauri.conf.json links to the root config; its paths are relative to src-tauri, which
    // is what both this build and `cargo tauri` expect.
    let attributes = tauri_build::Attributes::new().app_manifest(manifest);
    tauri_build::try_build(attributes).expect("tauri build step");
}
