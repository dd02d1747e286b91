//! The back's answer to the front: a status, the body's length and the headers a registry sends,
//! in a few text lines, then the body. Errors carry the registry's error JSON, whose message is the
//! sentence BuildKit shows.
use std::io::{self, BufRead, Read, Write};

use crate::{json::quote, words::MIRROR_SAYS};

/// The most an answer's head may take.
const MAX_HEAD: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerHead {
    pub status: u16,
    /// Bytes of body that follow (for `HEAD`, the length the body would have; none follows).
    pub length: u64,
    pub content_type: String,
    pub digest: Option<String>,
    /// `(first, last, total)` for a part of a blob.
    pub range: Option<(u64, u64, u64)>,
}

impl AnswerHead {
    pub fn ok(length: u64, content_type: &str, digest: &str) -> Self {
        Self {
            status: 200,
            length,
            content_type: content_type.to_string(),
            digest: Some(digest.to_string()),
            range: None,
        }
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut text = format!("{} {}\ntype {}\n", self.status, self.length, self.content_type);
        if let Some(digest) = &self.digest {
            text.push_str(&format!("digest {digest}\n"));
        }
        if let Some((first, last, total)) = self.range {
            text.push_str(&format!("range {first} {last} {total}\n"));
        }
        text.push('\n');
        out.write_all(text.as_bytes())
    }

    pub fn read_from(input: &mut impl BufRead) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("the store's answer: {what}"));
        let mut limited = Read::take(&mut *input, MAX_HEAD);
        let mut line = String::new();
        limited.read_line(&mut line)?;
        let (status, length) = line.trim_end().split_once(' ').ok_or_else(|| bad("no status"))?;
        let mut head = Self {
            status: status.parse().map_err(|_| bad("a bad status"))?,
            length: length.parse().map_err(|_| bad("a bad length"))?,
            content_type: String::new(),
            digest: None,
            range: None,
        };
        loop {
            let mut line = String::new();
            if limited.read_line(&mut line)? == 0 {
                return Err(bad("it ends early"));
            }
            let line = line.trim_end();
            if line.is_empty() {
                return Ok(head);
            }
            let (key, value) = line.split_once(' ').ok_or_else(|| bad("a bad line"))?;
            match key {
                "type" => head.content_type = value.to_string(),
                "digest" => head.digest = Some(value.to_string()),
                "range" => {
                    let parts: Vec<u64> =
                        value.split(' ').map(str::parse).collect::<Result<_, _>>().map_err(|_| bad("a bad range"))?;
                    let [first, last, total] = parts[..] else { return Err(bad("a bad range")) };
                    head.range = Some((first, last, total));
                }
                _ => {}
            }
        }
    }
}

/// The registry error codes we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ManifestUnknown,
    BlobUnknown,
    NameUnknown,
    Unsupported,
    Unknown,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// A registry's error body: `{"errors":[{"code":…,"message":…}]}`.
pub fn error_body(code: Code, message: &str) -> String {
    let said = format!("{MIRROR_SAYS}{message}");
    format!("{{\"errors\":[{{\"code\":\"{}\",\"message\":{}}}]}}", code.as_str(), quote(&said))
}

/// An error answer: its head and body.
pub fn error(status: u16, code: Code, message: &str) -> (AnswerHead, Vec<u8>) {
    let body = error_body(code, message).into_bytes();
    let head = AnswerHead {
        status,
        length: body.len() as u64,
        content_type: "application/json".into(),
        digest: None,
        range: None,
    };
    (head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_head_reads_back() {
        let heads = [
            AnswerHead::ok(12, "application/vnd.oci.image.manifest.v1+json", "sha256:ab"),
            AnswerHead {
                status: 206,
                length: 5,
                content_type: "application/octet-stream".into(),
                digest: Some("sha256:cd".into()),
                range: Some((5, 9, 100)),
            },
            error(410, Code::BlobUnknown, "gone").0,
        ];
        for head in heads {
            let mut text = Vec::new();
            head.write_to(&mut text).unwrap();
            assert_eq!(AnswerHead::read_from(&mut &text[..]).unwrap(), head);
        }
        assert!(AnswerHead::read_from(&mut &b"200 x\n\n"[..]).is_err());
        assert!(AnswerHead::read_from(&mut &b"200 1\ntype x\n"[..]).is_err());
    }

    #[test]
    fn errors_are_the_registrys_json() {
        let body = error_body(Code::ManifestUnknown, "no \"base\" here");
        let value = crate::json::parse(body.as_bytes()).unwrap();
        let first = &value.get("errors").unwrap().as_array()[0];
        assert_eq!(first.get("code").and_then(|v| v.as_str()), Some("MANIFEST_UNKNOWN"));
        assert_eq!(
            first.get("message").and_then(|v| v.as_str()),
            Some("local images: no \"base\" here"),
            "said as the mirror"
        );
    }
}
