//! The name of one node of a cluster (`[cluster] node`): it marks the node's queue claims,
//! its log lines and the `Received:` fields it writes.

use std::fmt;

/// A node name: 1 to 63 characters of `A-Z a-z 0-9 - _ .`. Safe inside a header comment
/// and a log line as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(String);

/// The longest node name.
pub const MAX_NODE_NAME_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    #[error("a node name must not be empty")]
    Empty,
    #[error("a node name has at most 63 characters")]
    TooLong,
    #[error("'{0}' is not allowed in a node name: use letters, digits, '-', '_' and '.'")]
    Character(char),
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl NodeName {
    pub fn parse(name: &str) -> Result<NodeName, NodeNameError> {
        if name.is_empty() {
            return Err(NodeNameError::Empty);
        }
        if let Some(c) = name.chars().find(|&c| !allowed(c)) {
            return Err(NodeNameError::Character(c));
        }
        if name.len() > MAX_NODE_NAME_LEN {
            return Err(NodeNameError::TooLong);
        }
        Ok(NodeName(name.to_string()))
    }

    /// A node name made from a machine's host name: characters that are not allowed become
    /// `-`, and it is cut to 63 characters; an empty name becomes `postfach`.
    pub fn from_host_name(host: &str) -> NodeName {
        let name: String =
            host.trim().chars().map(|c| if allowed(c) { c } else { '-' }).take(MAX_NODE_NAME_LEN).collect();
        if name.is_empty() { NodeName("postfach".into()) } else { NodeName(name) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_short_and_plain() {
        for good in ["a", "node-1", "mail_2.example", &"x".repeat(63)] {
            assert_eq!(NodeName::parse(good).expect("valid").as_str(), good);
        }
        assert_eq!(NodeName::parse(""), Err(NodeNameError::Empty));
        assert_eq!(NodeName::parse(&"x".repeat(64)), Err(NodeNameError::TooLong));
        for (bad, c) in [("a b", ' '), ("a)", ')'), ("knoten-ü", 'ü'), ("a\r\nX: y", '\r')] {
            assert_eq!(NodeName::parse(bad), Err(NodeNameError::Character(c)));
        }
    }

    #[test]
    fn a_host_name_always_gives_a_node_name() {
        assert_eq!(NodeName::from_host_name("mail1.example.net\n").as_str(), "mail1.example.net");
        assert_eq!(NodeName::from_host_name("weird host(1)").as_str(), "weird-host-1-");
        assert_eq!(NodeName::from_host_name(&"h".repeat(80)).as_str().len(), 63);
        assert_eq!(NodeName::from_host_name("").as_str(), "postfach");
    }
}
