//! Just enough JSON: the engine's answers (`/images/…/json`, `/events`), `docker save`'s
//! manifest.json and an image's config are read; the manifests we serve and error bodies are
//! written with [`quote`].

/// A JSON value. Numbers keep their text: we only ever compare or echo them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    /// The strings of an array member (missing or `null`: none).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    }
}

/// How deep documents may nest; the engine's never come close.
const MAX_DEPTH: usize = 64;

/// Parses one JSON document (surrounding white space allowed).
pub fn parse(text: &[u8]) -> Result<Value, String> {
    let mut parser = Parser { text, at: 0 };
    let value = parser.value(0)?;
    parser.space();
    if parser.at != text.len() {
        return Err(format!("unexpected text after the JSON value at byte {}", parser.at));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while matches!(self.text.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.at))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return self.fail("JSON nested too deeply");
        }
        self.space();
        match self.text.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.space();
                    if self.text.get(self.at) != Some(&b'"') {
                        return self.fail("expected a member name");
                    }
                    let key = self.string()?;
                    self.space();
                    if self.text.get(self.at) != Some(&b':') {
                        return self.fail("expected ':'");
                    }
                    self.at += 1;
                    let value = self.value(depth + 1)?;
                    members.push((key, value));
                    self.space();
                    match self.text.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::Object(members));
                        }
                        _ => return self.fail("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.text.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.space();
                    match self.text.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return self.fail("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while matches!(self.text.get(self.at), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.at += 1;
                }
                Ok(Value::Number(String::from_utf8_lossy(&self.text[start..self.at]).into_owned()))
            }
            _ => self.fail("expected a JSON value"),
        }
    }

    fn word(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if self.text[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            self.fail("expected a JSON value")
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits =
            self.text.get(self.at..self.at + 4).ok_or_else(|| format!("short \\u escape at byte {}", self.at))?;
        let text = std::str::from_utf8(digits).map_err(|_| format!("bad \\u escape at byte {}", self.at))?;
        let value = u32::from_str_radix(text, 16).map_err(|_| format!("bad \\u escape at byte {}", self.at))?;
        self.at += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            match self.text.get(self.at) {
                None => return self.fail("unterminated string"),
                Some(b'"') => {
                    self.at += 1;
                    return String::from_utf8(out)
                        .map_err(|_| format!("a string that is not UTF-8 before byte {}", self.at));
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = match self.text.get(self.at) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 1;
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                if self.text.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return self.fail("a lone surrogate");
                                }
                                self.at += 2;
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return self.fail("a bad surrogate pair");
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            let c =
                                char::from_u32(code).ok_or_else(|| format!("bad \\u escape at byte {}", self.at))?;
                            let mut buffer = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                            continue;
                        }
                        _ => return self.fail("bad escape"),
                    };
                    self.at += 1;
                    let mut buffer = [0u8; 4];
                    out.extend_from_slice(escaped.encode_utf8(&mut buffer).as_bytes());
                }
                Some(&byte) if byte < 0x20 => return self.fail("a control character in a string"),
                Some(&byte) => {
                    out.push(byte);
                    self.at += 1;
                }
            }
        }
    }
}

/// `text` as a JSON string, quotes included.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_engine_writes() {
        let text = br#"{"Id":"sha256:ab","RepoTags":["base:dev","x/y:1"],"RootFS":{"Type":"layers","Layers":["sha256:1","sha256:2"]},"Size":123,"Empty":null,"Ok":true,"Esc":"a\"b\\c\u00e9\ud83d\ude00\n"}"#;
        let value = parse(text).unwrap();
        assert_eq!(value.get("Id").and_then(Value::as_str), Some("sha256:ab"));
        assert_eq!(value.strings("RepoTags"), ["base:dev", "x/y:1"]);
        assert_eq!(value.get("RootFS").unwrap().strings("Layers"), ["sha256:1", "sha256:2"]);
        assert_eq!(value.get("Size"), Some(&Value::Number("123".into())));
        assert_eq!(value.get("Empty"), Some(&Value::Null));
        assert!(value.strings("Empty").is_empty());
        assert_eq!(value.get("Esc").and_then(Value::as_str), Some("a\"b\\cé😀\n"));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [&b"{"[..], b"{\"a\" 1}", b"[1,]", b"\"\\x\"", b"{} x", b"tru", b"\"\x01\"", b"\"\\ud800\""] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn quoted_text_reads_back() {
        let text = "line \"one\"\n\ttab \\ \u{1} é";
        assert_eq!(parse(quote(text).as_bytes()).unwrap(), Value::String(text.into()));
    }
}
