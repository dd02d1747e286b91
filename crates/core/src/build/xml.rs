//! A little XML, enough for project files (a Maven pom, a .csproj): comments left out, an
//! element's text, and the text-only children of an element. Not a parser for XML at large.
pub(super) fn without_xml_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The inside of the first `<name>…</name>`.
fn section(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&close)? + start;
    Some(text[start..end].to_string())
}

/// The text of the first `<name>…</name>`, trimmed.
pub(super) fn element(text: &str, name: &str) -> Option<String> {
    section(text, name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The direct children of the first `<root …>` element that hold only text, as (name, text):
/// a pom's own artifactId and version, not those inside `<parent>` or `<dependencies>`.
pub(super) fn simple_children(text: &str, root: &str) -> Vec<(String, String)> {
    let open = format!("<{root}");
    let Some(start) = text.find(&open) else { return Vec::new() };
    let Some(body) = text[start..].find('>').map(|i| &text[start + i + 1..]) else { return Vec::new() };
    let mut children = Vec::new();
    let mut depth = 0usize;
    // The child being read: its name, where its text starts, and whether it has children.
    let mut child: Option<(String, usize, bool)> = None;
    let mut at = 0;
    while let Some(lt) = body[at..].find('<').map(|i| at + i) {
        let Some(gt) = body[lt..].find('>').map(|i| lt + i) else { break };
        let tag = &body[lt + 1..gt];
        at = gt + 1;
        if tag.starts_with(['?', '!']) {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if depth == 0 {
                break; // the root's end
            }
            depth -= 1;
            if depth == 0 {
                if let Some((open_name, text_start, false)) = child.take() {
                    if open_name == name.trim() {
                        children.push((open_name, body[text_start..lt].trim().to_string()));
                    }
                }
            }
            continue;
        }
        if depth >= 1 {
            if let Some(child) = child.as_mut() {
                child.2 = true;
            }
        }
        if tag.ends_with('/') {
            continue;
        }
        if depth == 0 {
            let name = tag.split_whitespace().next().unwrap_or_default().to_string();
            child = Some((name, gt + 1, false));
        }
        depth += 1;
    }
    children
}

/// The text of `root`'s direct child `name`, if it has one.
pub(super) fn child_text(children: &[(String, String)], name: &str) -> Option<String> {
    children.iter().find(|(n, _)| n == name).map(|(_, text)| text.clone()).filter(|t| !t.is_empty())
}
