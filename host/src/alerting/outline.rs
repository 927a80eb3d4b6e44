//! Positions of nodes in block-style YAML. serde gives no spans for values,
//! and promtool reports semantic errors at `line:column` of the offending
//! node, so after serde has accepted a file we re-read its block structure
//! here just to find where things are. Flow collections and multi-line
//! scalars are skipped over, not interpreted: a position we cannot find is
//! reported as `0:0`, which is also what promtool prints for absent nodes.

/// A node's 1-based position and, for collections, its children.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub line: usize,
    pub column: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, Default)]
pub(crate) enum Kind {
    #[default]
    Scalar,
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn item(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    /// `line:column`, or `0:0` for a node we could not locate.
    pub fn pos(node: Option<&Node>) -> (usize, usize) {
        node.map_or((0, 0), |n| (n.line, n.column))
    }
}

#[derive(Debug, Clone)]
struct Line<'a> {
    /// 0-based column of `text`'s first character.
    indent: usize,
    text: &'a str,
    number: usize,
}

/// Parses the outline of `text`; `None` when the document is not block-style
/// at the top.
pub(crate) fn outline(text: &str) -> Option<Node> {
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        let body = trimmed.trim_end();
        if body.is_empty() || body.starts_with('#') || body == "---" || body == "..." || body.starts_with("%") {
            continue;
        }
        lines.push(Line { indent: raw.len() - trimmed.len(), text: body, number: i + 1 });
    }
    let mut p = Parser { lines, pos: 0 };
    p.node(0)
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Line<'a>> {
        self.lines.get(self.pos)
    }

    /// The node starting at the current line, whose indent must be at least `min`.
    fn node(&mut self, min: usize) -> Option<Node> {
        let line = self.peek()?.clone();
        if line.indent < min {
            return None;
        }
        if is_seq_item(line.text) {
            Some(self.seq(line.indent))
        } else if split_key(line.text).is_some() {
            Some(self.map(line.indent))
        } else {
            // A scalar or flow collection, possibly spanning lines.
            self.pos += 1;
            self.skip_deeper(line.indent);
            Some(Node { line: line.number, column: line.indent + 1, kind: Kind::Scalar })
        }
    }

    fn skip_deeper(&mut self, indent: usize) {
        while self.peek().is_some_and(|l| l.indent > indent) {
            self.pos += 1;
        }
    }

    fn seq(&mut self, indent: usize) -> Node {
        let mut items = Vec::new();
        let (first_line, first_col) = self.peek().map_or((0, 0), |l| (l.number, l.indent + 1));
        while let Some(line) = self.peek().cloned() {
            if line.indent != indent || !is_seq_item(line.text) {
                break;
            }
            let rest = line.text[1..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.pos += 1;
                match self.node(indent + 1) {
                    Some(n) => items.push(n),
                    None => items.push(Node { line: line.number, column: indent + 1, kind: Kind::Scalar }),
                }
            } else {
                // `- key: value`: the rest of the line starts a node whose
                // indent is the column it starts at.
                let col = indent + (line.text.len() - rest.len());
                self.lines[self.pos] = Line { indent: col, text: rest, number: line.number };
                match self.node(col) {
                    Some(n) => items.push(n),
                    None => self.pos += 1,
                }
            }
        }
        Node { line: first_line, column: first_col, kind: Kind::Seq(items) }
    }

    fn map(&mut self, indent: usize) -> Node {
        let mut entries = Vec::new();
        let (first_line, first_col) = self.peek().map_or((0, 0), |l| (l.number, l.indent + 1));
        while let Some(line) = self.peek().cloned() {
            if line.indent != indent {
                break;
            }
            let Some((key, rest_at)) = split_key(line.text) else { break };
            self.pos += 1;
            let rest = &line.text[rest_at..];
            let value_text = rest.trim_start_matches(' ');
            let value_col = indent + rest_at + (rest.len() - value_text.len()) + 1;
            let value = if value_text.is_empty() || value_text.starts_with('#') {
                // The value is on the following lines: deeper, or a sequence
                // at the same indent.
                match self.peek() {
                    Some(next) if next.indent > indent || (next.indent == indent && is_seq_item(next.text)) => {
                        let min = if next.indent == indent { indent } else { indent + 1 };
                        self.node(min).unwrap_or_default()
                    }
                    _ => Node { line: line.number, column: value_col, kind: Kind::Scalar },
                }
            } else {
                // Inline scalar, flow collection or block scalar header;
                // continuation lines are deeper.
                self.skip_deeper(indent);
                Node { line: line.number, column: value_col, kind: Kind::Scalar }
            };
            entries.push((key, value));
        }
        Node { line: first_line, column: first_col, kind: Kind::Map(entries) }
    }
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// A mapping key at the start of `text`: the unquoted key and the byte offset
/// just past its `:`.
fn split_key(text: &str) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let first = *b.first()?;
    if first == b'"' || first == b'\'' {
        let mut i = 1;
        let mut key = String::new();
        while i < b.len() {
            let c = b[i];
            if c == first {
                if first == b'\'' && b.get(i + 1) == Some(&b'\'') {
                    key.push('\'');
                    i += 2;
                    continue;
                }
                break;
            }
            if c == b'\\' && first == b'"' && i + 1 < b.len() {
                i += 1;
            }
            let ch = text[i..].chars().next()?;
            key.push(ch);
            i += ch.len_utf8();
        }
        let after = text.get(i + 1..)?.trim_start_matches(' ');
        let colon = text.len() - after.len();
        return (after.starts_with(':') && (after.len() == 1 || after[1..].starts_with([' ', '\t'])))
            .then(|| (key, colon + 1));
    }
    if matches!(first, b'[' | b'{' | b'|' | b'>' | b'&' | b'*' | b'!' | b'%' | b'@' | b'`') {
        return None;
    }
    let mut search = 0;
    while let Some(off) = text[search..].find(':') {
        let at = search + off;
        let next = b.get(at + 1);
        if next.is_none() || next == Some(&b' ') || next == Some(&b'\t') {
            if text[..at].contains(" #") {
                return None;
            }
            return Some((text[..at].trim_end().to_string(), at + 1));
        }
        search = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rule_positions_like_yaml_v3() {
        let text = "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up\n        for: 5m\n  - name: g\n    rules: []\n";
        let root = outline(text).unwrap();
        let groups = root.get("groups").unwrap();
        let g1 = groups.item(1).unwrap();
        assert_eq!((g1.line, g1.column), (7, 5));
        let rule = groups.item(0).unwrap().get("rules").unwrap().item(0).unwrap();
        assert_eq!(Node::pos(rule.get("expr")), (5, 15));
        assert_eq!(Node::pos(rule.get("record")), (4, 17));
    }

    #[test]
    fn sequences_at_the_parent_indent_and_block_scalars() {
        let text =
            "groups:\n- name: a\n  rules:\n  - alert: X\n    expr: |\n      up\n      == 0\n    labels:\n      a: b\n";
        let root = outline(text).unwrap();
        let rule = root.get("groups").unwrap().item(0).unwrap().get("rules").unwrap().item(0).unwrap();
        assert_eq!(Node::pos(rule.get("alert")), (4, 12));
        assert_eq!(Node::pos(rule.get("expr")), (5, 11));
        assert!(rule.get("labels").unwrap().get("a").is_some());
    }
}
