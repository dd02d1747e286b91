//! A streaming tar reader for `docker save`'s output (ustar, GNU long names, pax paths). Paths are
//! only ever keys of a map here, never paths on disk, so the archive cannot write anywhere.
use std::io::{self, Read};

/// The most a long name or a pax header may hold.
const MAX_META: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link to the path given (relative to the link's folder, or absolute).
    Symlink(String),
    /// A hard link to another entry of the archive.
    Hardlink(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub size: u64,
}

pub struct Reader<R> {
    inner: R,
    /// Bytes of the current entry's data not read yet.
    remaining: u64,
    /// Zero bytes after it, to the next 512-byte boundary.
    padding: u64,
    done: bool,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, remaining: 0, padding: 0, done: false }
    }

    /// The next entry (its data is then read with [`Reader::body`]), or `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let mut long_name: Option<String> = None;
        let mut long_link: Option<String> = None;
        loop {
            self.skip_rest()?;
            if self.done {
                return Ok(None);
            }
            let mut header = [0u8; 512];
            if !read_full(&mut self.inner, &mut header)? {
                // Some writers omit the two zero blocks at the end.
                self.done = true;
                return Ok(None);
            }
            if header.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_sum(&header)?;
            let size = parse_size(&header[124..136])?;
            self.remaining = size;
            self.padding = (512 - size % 512) % 512;
            let kind_byte = header[156];
            match kind_byte {
                b'L' | b'K' | b'x' => {
                    if size > MAX_META {
                        return Err(invalid(format!("a tar header extension of {size} bytes")));
                    }
                    let data = self.read_small(size)?;
                    match kind_byte {
                        b'L' => long_name = Some(c_string(&data)),
                        b'K' => long_link = Some(c_string(&data)),
                        _ => {
                            let (path, link) = pax_paths(&data)?;
                            long_name = path.or(long_name);
                            long_link = link.or(long_link);
                        }
                    }
                    continue;
                }
                b'g' => continue,
                _ => {}
            }
            let name = c_string(&header[0..100]);
            let prefix = if &header[257..262] == b"ustar" && header[262] == 0 {
                c_string(&header[345..500])
            } else {
                String::new()
            };
            let path =
                long_name.take().unwrap_or_else(|| if prefix.is_empty() { name } else { format!("{prefix}/{name}") });
            let link = long_link.take().unwrap_or_else(|| c_string(&header[157..257]));
            let kind = match kind_byte {
                b'0' | 0 | b'7' => Kind::File,
                b'5' => Kind::Dir,
                b'2' => Kind::Symlink(link),
                b'1' => Kind::Hardlink(link),
                _ => Kind::Other,
            };
            let path = path.trim_start_matches("./").trim_end_matches('/').to_string();
            return Ok(Some(Entry { path, kind, size }));
        }
    }

    /// Reads the current entry's data.
    pub fn body(&mut self) -> Body<'_, R> {
        Body { reader: self }
    }

    fn read_small(&mut self, size: u64) -> io::Result<Vec<u8>> {
        let mut data = vec![0u8; size as usize];
        if !read_full(&mut self.inner, &mut data)? && size > 0 {
            return Err(invalid("the archive ends inside an entry".into()));
        }
        self.remaining = 0;
        Ok(data)
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let skip = self.remaining + self.padding;
        if skip > 0 {
            let copied = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
            if copied != skip {
                return Err(invalid("the archive ends inside an entry".into()));
            }
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

/// The current entry's data.
pub struct Body<'a, R> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for Body<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.reader.remaining.min(usize::MAX as u64) as usize);
        let n = self.reader.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("the archive ends inside an entry".into()));
        }
        self.reader.remaining -= n as u64;
        Ok(n)
    }
}

/// Fills `buf`; false when the stream ended before the first byte.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(invalid("the archive ends inside a header".into())),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn check_sum(header: &[u8; 512]) -> io::Result<()> {
    let stored =
        parse_octal(&header[148..156]).ok_or_else(|| invalid("a tar header with an unreadable checksum".into()))?;
    let sum: u64 =
        header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
    if sum != stored {
        return Err(invalid("a tar header whose checksum does not match".into()));
    }
    Ok(())
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).filter(|&b| b != b' ').collect();
    if text.is_empty() {
        return Some(0);
    }
    let mut value: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

fn parse_size(field: &[u8]) -> io::Result<u64> {
    if field[0] & 0x80 != 0 {
        // GNU base-256: big-endian, the first byte's top bit set.
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| invalid("a tar entry too large".into()))?;
        }
        return Ok(value);
    }
    parse_octal(field).ok_or_else(|| invalid("a tar header with an unreadable size".into()))
}

/// `path` and `linkpath` from pax records (`LEN key=value\n`).
fn pax_paths(mut data: &[u8]) -> io::Result<(Option<String>, Option<String>)> {
    let (mut path, mut link) = (None, None);
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(|| invalid("a bad pax record".into()))?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("a bad pax record".into()))?;
        if len <= space + 1 || len > data.len() {
            return Err(invalid("a bad pax record".into()));
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            match &record[..eq] {
                b"path" => path = Some(value),
                b"linkpath" => link = Some(value),
                _ => {}
            }
        }
        data = &data[len..];
    }
    Ok((path, link))
}

/// A tar archive in memory, for tests (ours and the export's).
#[cfg(test)]
pub fn build(entries: &[(&str, Kind, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, data) in entries {
        let mut header = [0u8; 512];
        let name = path.as_bytes();
        if name.len() > 100 {
            let mut long = Vec::from(name);
            long.push(0);
            out.extend_from_slice(&raw_header("././@LongLink", b'L', long.len() as u64, ""));
            out.extend_from_slice(&long);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        let (flag, link, size) = match kind {
            Kind::File => (b'0', "", data.len() as u64),
            Kind::Dir => (b'5', "", 0),
            Kind::Symlink(l) => (b'2', l.as_str(), 0),
            Kind::Hardlink(l) => (b'1', l.as_str(), 0),
            Kind::Other => (b'3', "", 0),
        };
        header.copy_from_slice(&raw_header(&path.chars().take(100).collect::<String>(), flag, size, link));
        out.extend_from_slice(&header);
        if flag == b'0' {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[cfg(test)]
fn raw_header(name: &str, flag: u8, size: u64, link: &str) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[156] = flag;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_links_and_long_names() {
        let long = format!("blobs/sha256/{}", "a".repeat(120));
        let archive = build(&[
            ("dir", Kind::Dir, b""),
            ("dir/layer.tar", Kind::File, b"layer bytes"),
            ("link/layer.tar", Kind::Symlink("../dir/layer.tar".into()), b""),
            (&long, Kind::File, &[7u8; 1000]),
            ("manifest.json", Kind::File, b"[]"),
        ]);
        let mut reader = Reader::new(&archive[..]);
        let mut seen = Vec::new();
        while let Some(entry) = reader.next_entry().unwrap() {
            let mut data = Vec::new();
            // Read only some of one entry: the next header is still found.
            if entry.path == long {
                reader.body().take(10).read_to_end(&mut data).unwrap();
            } else {
                reader.body().read_to_end(&mut data).unwrap();
            }
            seen.push((entry, data));
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0].0.kind, Kind::Dir);
        assert_eq!((seen[1].0.path.as_str(), seen[1].1.as_slice()), ("dir/layer.tar", &b"layer bytes"[..]));
        assert_eq!(seen[2].0.kind, Kind::Symlink("../dir/layer.tar".into()));
        assert_eq!((seen[3].0.path.as_str(), seen[3].0.size, seen[3].1.len()), (long.as_str(), 1000, 10));
        assert_eq!(seen[4].1, b"[]");
    }

    #[test]
    fn a_damaged_archive_is_an_error_not_a_guess() {
        let mut archive = build(&[("a", Kind::File, b"hello")]);
        archive[0] = b'b'; // the checksum no longer matches
        assert!(Reader::new(&archive[..]).next_entry().is_err());
        let archive = build(&[("a", Kind::File, &[1u8; 2000])]);
        let mut reader = Reader::new(&archive[..700]);
        reader.next_entry().unwrap();
        assert!(reader.body().read_to_end(&mut Vec::new()).is_err(), "cut inside the data");
    }

    #[test]
    fn pax_records_name_paths() {
        let (path, link) = pax_paths(b"30 path=blobs/sha256/abcdefgh\n19 linkpath=../x/y\n").unwrap();
        assert_eq!(path.as_deref(), Some("blobs/sha256/abcdefgh"));
        assert_eq!(link.as_deref(), Some("../x/y"));
        assert!(pax_paths(b"99 path=x\n").is_err());
    }
}
