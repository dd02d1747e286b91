//! The `--allow-host-port` rule: repeatable, comma lists, default 5000, `0` alone means none.
use std::{collections::BTreeSet, fmt};

/// The port proxied when the user names none: the usual local registry.
pub const DEFAULT_PORT: u16 = 5000;

/// A validated, sorted, duplicate-free set of host ports to proxy (possibly empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortSet(BTreeSet<u16>);

/// Why an `--allow-host-port` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// An empty value or list item.
    #[error("--allow-host-port was given an empty value; give a port number such as 5000, or 0 for no ports")]
    Empty,
    /// A value with anything but digits in it (`-1`, `+5`, `abc`).
    #[error("--allow-host-port {0:?} is not a port number; give a number from 1 to 65535, or 0 for no ports")]
    NotANumber(String),
    /// Digits, but above 65535.
    #[error("--allow-host-port {0} is out of range; ports go from 1 to 65535 (0 alone means no ports)")]
    OutOfRange(String),
    /// `0` (no ports) together with real ports.
    #[error("--allow-host-port 0 means \"no ports\" and cannot be combined with other ports; give 0 alone or only real ports")]
    ZeroMixed,
    /// `0` given to add or remove: it means "no ports", it is not one.
    #[error("0 is not a port to add or remove; give ports from 1 to 65535")]
    ZeroIsNotAPort,
}

impl PortError {
    /// The same fact for the settings window, where ports are typed into a list and no flag exists.
    pub fn in_settings(&self) -> String {
        match self {
            PortError::Empty => "type a port number such as 5000".to_string(),
            PortError::NotANumber(value) => {
                format!("{value:?} is not a port number; type a number from 1 to 65535")
            }
            PortError::OutOfRange(value) => format!("{value} is out of range; ports go from 1 to 65535"),
            PortError::ZeroMixed | PortError::ZeroIsNotAPort => {
                "0 is not a port; to proxy no host ports, remove every port from the list".to_string()
            }
        }
    }

    /// The same fact for `ports add` and `ports rm` (`verb`).
    pub fn in_ports_command(&self, verb: &str) -> String {
        match self {
            PortError::Empty => format!("`ports {verb}` needs port numbers such as 5000 or 6000,7000"),
            PortError::NotANumber(value) => format!("{value:?} is not a port number; give numbers from 1 to 65535"),
            PortError::OutOfRange(value) => format!("{value} is out of range; ports go from 1 to 65535"),
            PortError::ZeroMixed | PortError::ZeroIsNotAPort => format!(
                "0 is not a port to {verb}; give ports from 1 to 65535 (to proxy none, remove each with `ports rm`)"
            ),
        }
    }
}

impl PortSet {
    /// No ports.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses every `--allow-host-port` occurrence. No occurrence at all gives the default port.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, PortError> {
        if values.is_empty() {
            return Ok(Self::from_ports([DEFAULT_PORT]));
        }
        let mut ports = BTreeSet::new();
        let mut saw_zero = false;
        for item in values.iter().flat_map(|v| v.as_ref().split(',')) {
            match parse_one(item.trim())? {
                0 => saw_zero = true,
                port => {
                    ports.insert(port);
                }
            }
        }
        if saw_zero && !ports.is_empty() {
            return Err(PortError::ZeroMixed);
        }
        Ok(Self(ports))
    }

    /// Parses the ports of `ports add` and `ports rm`: numbers and comma lists as for
    /// `--allow-host-port`, but at least one, and never `0`, which means "none" and is not a port.
    pub fn parse_change<S: AsRef<str>>(values: &[S]) -> Result<Self, PortError> {
        if values.is_empty() {
            return Err(PortError::Empty);
        }
        let mut ports = BTreeSet::new();
        for item in values.iter().flat_map(|v| v.as_ref().split(',')) {
            match parse_one(item.trim())? {
                0 => return Err(PortError::ZeroIsNotAPort),
                port => {
                    ports.insert(port);
                }
            }
        }
        Ok(Self(ports))
    }

    /// These ports and `other`'s.
    pub fn union(&self, other: &PortSet) -> PortSet {
        Self(self.0.union(&other.0).copied().collect())
    }

    /// These ports without `other`'s.
    pub fn without(&self, other: &PortSet) -> PortSet {
        Self(self.0.difference(&other.0).copied().collect())
    }

    /// The given ports, sorted and without duplicates; `0` is dropped.
    pub fn from_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        Self(ports.into_iter().filter(|p| *p != 0).collect())
    }

    /// The ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().copied()
    }

    /// True for no ports.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.0.contains(&port)
    }

    /// The label form: `5000,6000`, or empty for none. Parsed back by [`PortSet::from_label`].
    pub fn to_label(&self) -> String {
        self.0.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
    }

    /// Reads [`PortSet::to_label`]'s form back; `None` when any part is not a port from 1 to 65535.
    pub fn from_label(label: &str) -> Option<Self> {
        if label.trim().is_empty() {
            return Some(Self::none());
        }
        let ports: Option<BTreeSet<u16>> =
            label.split(',').map(|p| p.trim().parse::<u16>().ok().filter(|p| *p != 0)).collect();
        ports.map(Self)
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&self.to_label())
        }
    }
}

impl serde::Serialize for PortSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

fn parse_one(item: &str) -> Result<u16, PortError> {
    if item.is_empty() {
        return Err(PortError::Empty);
    }
    if !item.bytes().all(|b| b.is_ascii_digit()) {
        // `-1` and `+5` are not numbers to us: a port has digits only.
        return Err(PortError::NotANumber(item.to_string()));
    }
    item.parse::<u16>().map_err(|_| PortError::OutOfRange(item.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(values: &[&str]) -> Result<Vec<u16>, PortError> {
        PortSet::parse(values).map(|set| set.iter().collect())
    }

    #[test]
    fn default_is_5000() {
        assert_eq!(ports(&[]), Ok(vec![5000]));
    }

    #[test]
    fn repeats_and_comma_lists_combine_and_duplicates_collapse() {
        assert_eq!(ports(&["6000"]), Ok(vec![6000]));
        assert_eq!(ports(&["6000,7000"]), Ok(vec![6000, 7000]));
        assert_eq!(ports(&["7000", "6000"]), Ok(vec![6000, 7000]));
        assert_eq!(ports(&["6000,6000", "6000"]), Ok(vec![6000]));
        assert_eq!(ports(&[" 6000 , 7000 "]), Ok(vec![6000, 7000]));
    }

    #[test]
    fn zero_alone_means_none() {
        assert_eq!(ports(&["0"]), Ok(vec![]));
        assert_eq!(ports(&["0", "0"]), Ok(vec![]));
    }

    #[test]
    fn invalid_forms_are_refused_with_a_reason() {
        assert_eq!(ports(&["0,5000"]), Err(PortError::ZeroMixed));
        assert_eq!(ports(&["5000", "0"]), Err(PortError::ZeroMixed));
        assert_eq!(ports(&["65536"]), Err(PortError::OutOfRange("65536".into())));
        assert_eq!(ports(&["99999999999999999999"]), Err(PortError::OutOfRange("99999999999999999999".into())));
        assert_eq!(ports(&["abc"]), Err(PortError::NotANumber("abc".into())));
        assert_eq!(ports(&["-1"]), Err(PortError::NotANumber("-1".into())));
        assert_eq!(ports(&[""]), Err(PortError::Empty));
        assert_eq!(ports(&["5000,"]), Err(PortError::Empty));
        assert!(PortError::ZeroMixed.to_string().contains("0 alone"));
    }

    #[test]
    fn ports_to_add_or_remove_follow_the_same_rules_but_zero_is_not_one() {
        let change = |values: &[&str]| PortSet::parse_change(values).map(|set| set.iter().collect::<Vec<_>>());
        assert_eq!(change(&["7000,6000", "6000"]), Ok(vec![6000, 7000]));
        assert_eq!(change(&["0"]), Err(PortError::ZeroIsNotAPort));
        assert_eq!(change(&["70000"]), Err(PortError::OutOfRange("70000".into())));
        assert_eq!(change(&["abc"]), Err(PortError::NotANumber("abc".into())));
        assert_eq!(change(&[""]), Err(PortError::Empty));
        assert_eq!(change(&[]), Err(PortError::Empty));
        assert_eq!(
            PortError::ZeroIsNotAPort.in_ports_command("add"),
            "0 is not a port to add; give ports from 1 to 65535 (to proxy none, remove each with `ports rm`)"
        );
        let (a, b) = (PortSet::from_ports([5000, 6000]), PortSet::from_ports([6000, 7000]));
        assert_eq!(a.union(&b), PortSet::from_ports([5000, 6000, 7000]));
        assert_eq!(a.without(&b), PortSet::from_ports([5000]));
    }

    #[test]
    fn label_round_trips() {
        let set = PortSet::parse(&["7000,5000"]).unwrap();
        assert_eq!(set.to_label(), "5000,7000");
        assert_eq!(PortSet::from_label("5000,7000"), Some(set));
        assert_eq!(PortSet::from_label(""), Some(PortSet::none()));
        assert_eq!(PortSet::from_label("x"), None);
    }
}
