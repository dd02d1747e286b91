//! `--call` and `--check`, as buildx spells them: instead of building, ask the Dockerfile frontend
//! a question (a subrequest): `check` lints the Dockerfile, `outline` lists what the build takes
//! (arguments, secrets, ssh), `targets` lists its stages. The frontend answers in metadata
//! (`result.txt`, `result.json`, `result.statuscode`), which is printed as buildx prints it.
use std::collections::HashMap;

use crate::{build::error::BuildError, Result};

/// The frontend capability subrequests need (buildx adds it with any `--call`).
pub const SUBREQUESTS_CAP: &str = "moby.buildkit.frontend.subrequests+forward";

/// A question for the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// Lint the Dockerfile (`check`; buildx's old name is `lint`).
    Check,
    /// What the build takes: arguments, secrets, ssh.
    Outline,
    /// The Dockerfile's stages.
    Targets,
}

/// `--call` checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The question.
    pub question: Question,
    /// `format=json`: the answer's JSON, not its text.
    pub json: bool,
    /// `ignorestatus=true`: a positive answer (warnings found) does not fail the command.
    pub ignore_status: bool,
}

impl Call {
    /// The frontend's request ID for the question.
    pub fn request_id(&self) -> &'static str {
        match self.question {
            Question::Check => "frontend.lint",
            Question::Outline => "frontend.outline",
            Question::Targets => "frontend.targets",
        }
    }

    /// The question as `--call` names it.
    pub fn name(&self) -> &'static str {
        match self.question {
            Question::Check => "check",
            Question::Outline => "outline",
            Question::Targets => "targets",
        }
    }
}

/// `--call VALUE` as buildx reads it: `NAME[,format=json|text][,ignorestatus=BOOL]`; `build` (the
/// default) is a build, not a call.
pub fn parse(text: &str) -> Result<Option<Call>> {
    let bad = |reason: &str| BuildError::InvalidCall { value: text.to_string(), reason: reason.to_string() };
    let mut name = None;
    let (mut json, mut ignore_status) = (false, false);
    for field in text.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("format", "json")) => json = true,
            Some(("format", "text")) => json = false,
            Some(("format", _)) => return Err(bad("has a format that is not json or text").into()),
            Some(("ignorestatus", value)) => {
                ignore_status = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("has an ignorestatus that is not true or false").into()),
                }
            }
            Some(_) => return Err(bad("has a field that is not format= or ignorestatus=").into()),
            None if name.is_some() => return Err(bad("names two questions; give one").into()),
            None => name = Some(field),
        }
    }
    let question = match name.unwrap_or_default() {
        "build" => return Ok(None),
        "check" | "lint" => Question::Check,
        "outline" => Question::Outline,
        "targets" => Question::Targets,
        _ => {
            return Err(
                bad("is not a question the Dockerfile frontend answers: give build, check, outline or targets").into()
            )
        }
    };
    Ok(Some(Call { question, json, ignore_status }))
}

/// What to print, and whether the answer fails the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The text for standard output.
    pub text: String,
    /// The frontend's status (1: a check found warnings), unless `ignorestatus` was given.
    pub status: i32,
}

/// The frontend's answer (its metadata, as text) as buildx prints it; `dockerfile_name` replaces
/// the frontend's name for the Dockerfile where the text shows its lines, as buildx names it.
pub fn answer(call: &Call, metadata: &HashMap<String, String>, dockerfile_name: Option<&str>) -> Result<Answer> {
    let get = |key: &str| metadata.get(key).cloned().unwrap_or_default();
    let status = if call.ignore_status { 0 } else { get("result.statuscode").trim().parse().unwrap_or(0) };
    if call.json {
        return Ok(Answer { text: format!("{}\n", get("result.json").trim_end()), status });
    }
    if call.question != Question::Check {
        return Ok(Answer { text: get("result.txt"), status });
    }
    let results: serde_json::Value = serde_json::from_str(&get("result.json")).unwrap_or_default();
    let frontend_names: Vec<&str> =
        results["sources"].as_array().into_iter().flatten().filter_map(|s| s["filename"].as_str()).collect();
    let rename = |name: &str| dockerfile_name.filter(|_| frontend_names.contains(&name)).unwrap_or(name).to_string();
    // A Dockerfile the frontend could not read: its message and place, as the failure.
    if let Some(error) = results.get("buildError").filter(|e| !e.is_null()) {
        let message = error["message"].as_str().unwrap_or("the Dockerfile could not be read").to_string();
        let source = error["location"]["sourceIndex"].as_u64().unwrap_or(0) as usize;
        let file = rename(results["sources"][source]["filename"].as_str().unwrap_or("Dockerfile"));
        let line = error["location"]["ranges"][0]["start"]["line"].as_u64();
        let place = line.map_or(file.to_string(), |line| format!("{file}:{line}"));
        return Err(BuildError::CheckFailed { message: format!("{message} ({place})") }.into());
    }
    let warnings = results["warnings"].as_array().map_or(0, Vec::len);
    let listed = renamed_sources(&get("result.txt"), &frontend_names, &rename);
    let text = match warnings {
        0 => "Check complete, no warnings found.\n".to_string(),
        1 => format!("Check complete, 1 warning has been found!\n{listed}"),
        n => format!("Check complete, {n} warnings have been found!\n{listed}"),
    };
    Ok(Answer { text, status })
}

/// `text` with each source header (`NAME:LINE` over a rule of dashes, BuildKit's way of showing a
/// file's lines) naming the file by `rename`.
fn renamed_sources(text: &str, names: &[&str], rename: &dyn Fn(&str) -> String) -> String {
    const RULE: &str = "--------------------";
    let lines: Vec<&str> = text.split('\n').collect();
    let header = |line: &str| {
        let (name, number) = line.rsplit_once(':')?;
        (names.contains(&name) && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("{}:{number}", rename(name)))
    };
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| match header(line) {
            Some(renamed) if lines.get(i + 1) == Some(&RULE) => renamed,
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_values_are_read_as_buildx_reads_them() {
        assert_eq!(parse("build").unwrap(), None);
        let check = parse("check").unwrap().unwrap();
        assert_eq!((check.question, check.request_id(), check.json), (Question::Check, "frontend.lint", false));
        assert_eq!(parse("lint").unwrap().unwrap().question, Question::Check);
        let targets = parse("targets,format=json,ignorestatus=true").unwrap().unwrap();
        assert_eq!((targets.request_id(), targets.json, targets.ignore_status), ("frontend.targets", true, true));
        for (value, says) in [
            ("tests", "give build, check, outline or targets"),
            ("check,outline", "names two questions"),
            ("check,format=yaml", "not json or text"),
            ("check,ignorestatus=maybe", "not true or false"),
            ("check,color=red", "not format= or ignorestatus="),
        ] {
            let said = parse(value).unwrap_err().to_string();
            assert!(said.starts_with(&format!("--call {value:?} ")) && said.contains(says), "{value}: {said}");
        }
    }

    fn metadata(json: &str, txt: &str, status: &str) -> HashMap<String, String> {
        [("result.json", json), ("result.txt", txt), ("result.statuscode", status)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_check_says_how_many_warnings_and_fails_unless_told_not_to() {
        let check = parse("check").unwrap().unwrap();
        let two = metadata(r#"{"warnings":[{"ruleName":"A"},{"ruleName":"B"}]}"#, "\nWARNING: A\n…\n", "1");
        let answer = super::answer(&check, &two, None).unwrap();
        assert_eq!(
            answer,
            Answer { text: "Check complete, 2 warnings have been found!\n\nWARNING: A\n…\n".into(), status: 1 }
        );
        let one = metadata(r#"{"warnings":[{"ruleName":"A"}]}"#, "\nWARNING: A\n", "1");
        assert!(super::answer(&check, &one, None)
            .unwrap()
            .text
            .starts_with("Check complete, 1 warning has been found!\n"));
        let clean = metadata(r#"{"warnings":[]}"#, "", "0");
        assert_eq!(
            super::answer(&check, &clean, None).unwrap(),
            Answer { text: "Check complete, no warnings found.\n".into(), status: 0 }
        );
        let ignoring = parse("check,ignorestatus=true").unwrap().unwrap();
        assert_eq!(super::answer(&ignoring, &two, None).unwrap().status, 0);
        let json = parse("check,format=json").unwrap().unwrap();
        assert_eq!(
            super::answer(&json, &two, None).unwrap().text,
            "{\"warnings\":[{\"ruleName\":\"A\"},{\"ruleName\":\"B\"}]}\n"
        );
        let broken = metadata(
            r#"{"warnings":[],"sources":[{"filename":"Dockerfile"}],"buildError":{"message":"unknown instruction: FORM","location":{"sourceIndex":0,"ranges":[{"start":{"line":2}}]}}}"#,
            "",
            "1",
        );
        let err = super::answer(&check, &broken, Some("app/Dockerfile")).unwrap_err().to_string();
        assert_eq!(
            err,
            "the Dockerfile check could not read the Dockerfile: unknown instruction: FORM (app/Dockerfile:2)"
        );
    }

    #[test]
    fn the_dockerfile_is_named_as_the_user_gave_it_where_its_lines_show() {
        let check = parse("check").unwrap().unwrap();
        let text = "\nWARNING: A\ndetail\nDockerfile:3\n--------------------\n   3 | >>> FROM x as y\n--------------------\nDockerfile:3 is mentioned\n";
        let found = metadata(r#"{"warnings":[{"ruleName":"A"}],"sources":[{"filename":"Dockerfile"}]}"#, text, "1");
        let answer = super::answer(&check, &found, Some("/src/app/Dockerfile")).unwrap();
        assert!(answer.text.contains("\n/src/app/Dockerfile:3\n--------------------\n"), "{}", answer.text);
        assert!(answer.text.contains("\nDockerfile:3 is mentioned\n"), "only headers are renamed: {}", answer.text);
    }

    #[test]
    fn other_answers_are_the_frontend_s_text() {
        let targets = parse("targets").unwrap().unwrap();
        let answer = super::answer(&targets, &metadata("{}", "TARGET  DESCRIPTION\nbase\n", "0"), None).unwrap();
        assert_eq!(answer, Answer { text: "TARGET  DESCRIPTION\nbase\n".into(), status: 0 });
    }
}
