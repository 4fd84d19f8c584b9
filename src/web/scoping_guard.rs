//! A guard on the one rule that makes privileges hold everywhere: handlers
//! take [`super::auth::Scoped`] (the state as the request's identity sees
//! it), never the router's own `State<AppState>`, which holds the system's
//! view of the catalogue. Only the middleware that establishes identity
//! and limits may read the router state directly.

#[test]
fn no_handler_takes_the_unscoped_state() {
    // The middleware layers run before any identity exists.
    const ALLOWED: [&str; 3] = ["admission.rs", "deadlines.rs", "auth.rs"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/web is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".rs") || ALLOWED.contains(&name) || name == "scoping_guard.rs" {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        for (i, line) in text.lines().enumerate() {
            if line.contains("State<AppState>") || line.contains("State<super::AppState>") {
                offenders.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} handler files found in {dir:?}"
    );
    assert!(
        offenders.is_empty(),
        "handlers must take auth::Scoped, not the unscoped router state:\n{}",
        offenders.join("\n")
    );
}
