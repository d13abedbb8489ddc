//! Field paths: `pose.position.x`, `position`, `position[3]`, `position[0:7]`, `data[2:]`.
//!
//! An index may follow any segment; a slice only the last one (a slice in the middle would
//! make the path name several sub-messages, whose leaves have no single order to flatten in).

use std::fmt;

use super::MsgError;

/// What follows a segment's name in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    Index(usize),
    /// `[start:end]`, either bound optional; `end` is exclusive.
    Slice {
        start: Option<usize>,
        end: Option<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub selector: Option<Selector>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, MsgError> {
        let err = |detail: &str| MsgError::Path {
            path: text.to_string(),
            detail: detail.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("the path is empty"));
        }
        let parts: Vec<&str> = trimmed.split('.').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let (name, selector) = match part.find('[') {
                None => (*part, None),
                Some(open) => {
                    let inner = part[open + 1..].strip_suffix(']').ok_or_else(|| {
                        err(&format!(
                            "segment `{part}`: expected `name[index]` or `name[start:end]`"
                        ))
                    })?;
                    (
                        &part[..open],
                        Some(parse_selector(inner).map_err(|d| err(&d))?),
                    )
                }
            };
            if !is_ident(name) {
                return Err(err(&format!(
                    "segment `{part}`: `{name}` is not a field name (letters, digits, `_`)"
                )));
            }
            if matches!(selector, Some(Selector::Slice { .. })) && i + 1 != parts.len() {
                return Err(err(&format!(
                    "segment `{part}`: a slice is only allowed on the last segment"
                )));
            }
            segments.push(Segment {
                name: name.to_string(),
                selector,
            });
        }
        Ok(FieldPath { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn last(&self) -> &Segment {
        self.segments
            .last()
            .expect("a parsed path has at least one segment")
    }

    /// The path without the last segment's selector, e.g. `a.data` for `a.data[2:]`; value
    /// names are built on it (`a.data[2]`, ...).
    pub fn base_text(&self) -> String {
        let mut s = String::new();
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(&seg.name);
            if i + 1 < self.segments.len() {
                if let Some(sel) = &seg.selector {
                    s.push_str(&sel.to_string());
                }
            }
        }
        s
    }
}

fn parse_selector(inner: &str) -> Result<Selector, String> {
    let num = |s: &str| -> Result<Option<usize>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<usize>()
            .map(Some)
            .map_err(|_| format!("`{s}` is not an index (a non-negative integer)"))
    };
    match inner.split_once(':') {
        None => match num(inner)? {
            Some(i) => Ok(Selector::Index(i)),
            None => Err("empty brackets: expected an index or a slice".to_string()),
        },
        Some((a, b)) => {
            let (start, end) = (num(a)?, num(b)?);
            if let (Some(s), Some(e)) = (start, end) {
                if s >= e {
                    return Err(format!("slice [{s}:{e}] selects nothing"));
                }
            }
            Ok(Selector::Slice { start, end })
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Index(i) => write!(f, "[{i}]"),
            Selector::Slice { start, end } => {
                f.write_str("[")?;
                if let Some(s) = start {
                    write!(f, "{s}")?;
                }
                f.write_str(":")?;
                if let Some(e) = end {
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            f.write_str(&seg.name)?;
            if let Some(sel) = &seg.selector {
                write!(f, "{sel}")?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldPath {
    type Err = MsgError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_back() {
        for text in [
            "pose.position.x",
            "position",
            "position[3]",
            "position[0:7]",
            "position[2:]",
            "position[:3]",
            "poses[0].position",
            "poses[1].orientation[0:2]",
            "data[:]",
        ] {
            let p = FieldPath::parse(text).unwrap();
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn segments_and_selectors() {
        let p = FieldPath::parse("poses[2].position[1:4]").unwrap();
        assert_eq!(
            p.segments(),
            &[
                Segment {
                    name: "poses".into(),
                    selector: Some(Selector::Index(2))
                },
                Segment {
                    name: "position".into(),
                    selector: Some(Selector::Slice {
                        start: Some(1),
                        end: Some(4)
                    })
                },
            ]
        );
        assert_eq!(p.base_text(), "poses[2].position");
        let p = FieldPath::parse("data[:3]").unwrap();
        assert_eq!(
            p.last().selector,
            Some(Selector::Slice {
                start: None,
                end: Some(3)
            })
        );
    }

    #[test]
    fn rejects_bad_paths() {
        for text in [
            "", "a..b", ".a", "a.", "a[", "a[]", "a[x]", "a[-1]", "a[1:2].b", "a[3:3]", "a[4:2]",
            "a b", "1a", "a[1]x", "a[0][1]",
        ] {
            let e = FieldPath::parse(text).unwrap_err();
            assert!(
                matches!(&e, MsgError::Path { path, .. } if path == text),
                "{text}: {e}"
            );
        }
    }
}
