//! The parse: one pass over the lines of the raw message (CRLF, or bare LF leniently),
//! with an explicit chain of open parts and a stack of open multiparts with their
//! boundaries, producing a flat arena of parts. Work per line is bounded by the number of
//! open multiparts, so time is O(len × depth); nothing recurses.
//!
//! Structure follows RFC 5322 §2.1 (header, empty line, body), RFC 2045 §5 (Content-Type,
//! defaults), RFC 2046 §5.1 (multipart delimiters) and RFC 2046 §5.2.1 / RFC 6532 §3.5
//! (message/rfc822 and message/global). Lenient choices: a delimiter of an outer
//! multipart closes the inner ones (a missing close delimiter is survived); a delimiter
//! line also ends a header block that has no empty line; a header line that is neither a
//! field nor a continuation is skipped and recorded; after its close delimiter a
//! multipart's own boundary is no longer recognised (the epilogue is plain bytes).
//!
//! Complexity. Linear in the message: the line walk, the field positions, the checks of
//! each header block at its end (value lengths, [`parse_work_fits`] of Content-Type and
//! Content-Disposition), our own readers (address lists, Content-Transfer-Encoding,
//! unfolding, transfer decoding) and the pre-scan itself. Bounded, not linear:
//! mail-parser (0.11.9) reading a value, since it tries an encoded word at every `=?` and
//! goes back when one fails (quadratic in unterminated `=?…` runs) and searches all
//! parameters by name for every RFC 2231 continuation (quadratic in parameters). It only
//! gets values of at most `max_field_value` bytes for which [`parse_work_fits`] bounds
//! its work by `MAX_PARSE_WORK_PER_BYTE` per byte; everything else is read as absent or,
//! for unstructured text, left as written. Upgrading mail-parser means checking the
//! pre-scan against its parsers again.

use std::ops::Range;

use mail_parser::{HeaderValue, parsers::MessageStream};

use crate::{
    Limits, MAX_PARSE_WORK_PER_BYTE, PARSE_WORK_SLACK, Problem,
    header::{Field, HeaderView, unfold},
};

/// A media type (RFC 2045 §5.1): type and subtype lower-cased, parameter names
/// lower-cased, values decoded (RFC 2231 continuations and charsets merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub ctype: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// RFC 2045 §5.2: no, or an unreadable, Content-Type means text/plain; charset=us-ascii.
    fn text_default() -> Self {
        let params = vec![("charset".to_owned(), "us-ascii".to_owned())];
        ContentType { ctype: "text".to_owned(), subtype: "plain".to_owned(), params }
    }

    /// RFC 2046 §5.1.5: in a multipart/digest the default is message/rfc822.
    fn digest_default() -> Self {
        ContentType { ctype: "message".to_owned(), subtype: "rfc822".to_owned(), params: Vec::new() }
    }

    /// Reads a line from [`parameterized_line`]; `None` when it has no type/subtype.
    fn from_line(line: &[u8]) -> Option<Self> {
        let (ctype, subtype, params) = read_parameterized(line)?;
        let subtype = subtype?;
        if ctype.is_empty() || subtype.is_empty() {
            return None;
        }
        Some(ContentType { ctype, subtype, params })
    }

    /// Whether this is `ctype/subtype` (case-insensitive).
    pub fn is(&self, ctype: &str, subtype: &str) -> bool {
        self.ctype.eq_ignore_ascii_case(ctype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// The first parameter named `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The value, optional subtype and parameters of a parameterized field.
pub(crate) type Parameterized = (String, Option<String>, Vec<(String, String)>);

/// A `value; name=value; …` field body (Content-Type, Content-Disposition, RFC 2045 §5.1,
/// RFC 2183 §2) read with mail-parser: the value (and subtype after `/`, if any) lower-cased,
/// parameter names lower-cased, values decoded (RFC 2231). `None` when unreadable, also
/// when mail-parser would need more than linear time for it ([`parse_work_fits`]); the
/// caller bounds the length.
pub(crate) fn parameterized(value: &[u8]) -> Option<Parameterized> {
    read_parameterized(&parameterized_line(value)?)
}

/// mail-parser's reading of a line from [`parameterized_line`].
fn read_parameterized(line: &[u8]) -> Option<Parameterized> {
    let HeaderValue::ContentType(ct) = MessageStream::new(line).parse_content_type() else {
        return None;
    };
    let ctype = ct.c_type.trim().to_ascii_lowercase();
    let subtype = ct.c_subtype.map(|s| s.trim().to_ascii_lowercase());
    let attrs = ct.attributes.unwrap_or_default().into_iter();
    let params = attrs.map(|a| (a.name.to_ascii_lowercase(), a.value.into_owned())).collect();
    Some((ctype, subtype, params))
}

/// The unfolded value with its line end as mail-parser reads it, if the pre-scan allows.
fn parameterized_line(value: &[u8]) -> Option<Vec<u8>> {
    let mut line = unfold(value);
    line.push(b'\n');
    parse_work_fits(&line, true).then_some(line)
}

/// Whether mail-parser may read `line` (one unfolded value ending in its `\n`): one linear
/// pass bounds the bytes its parsers would read by `MAX_PARSE_WORK_PER_BYTE × len +
/// PARSE_WORK_SLACK`. Real values need less than four per byte (a 255-character CJK file
/// name in 39 RFC 2231 pieces: 3.6; runs of encoded words: 1 to 2).
///
/// - Encoded words (RFC 2047), in unstructured text and in parameter values: at every `=?`
///   mail-parser tries one and, if it fails, starts again at the byte after the `=`. An
///   attempt stops at the latest at the *second* `?=` at or after the byte after its `=?`
///   (the first may end the charset or be the `?` before the encoded text), or at the
///   end. Summed over every `=?`, that bounds the re-reading.
/// - Parameters (`parameterized`): every RFC 2231 continuation (it has a `*`) and every
///   language part (a `'`) makes mail-parser search all parameters by name, and a
///   continuation copies the value merged so far. Every parameter needs a `=` or a `'`, so
///   a search compares at most that many names, whose bytes (like a copy) are at most the
///   line; those run at memcpy speed and count one per 32 bytes.
pub(crate) fn parse_work_fits(line: &[u8], parameterized: bool) -> bool {
    let len = line.len();
    let budget = MAX_PARSE_WORK_PER_BYTE.saturating_mul(len).saturating_add(PARSE_WORK_SLACK);
    let mut work = 0usize;
    if parameterized {
        let count = |c: u8| line.iter().filter(|&&b| b == c).count();
        let (stars, quotes, assignments) = (count(b'*'), count(b'\''), count(b'='));
        let per_search = (assignments + quotes).saturating_add(len / 32);
        work = (stars + quotes).saturating_mul(per_search);
    }
    // `first`: the first `?=` at or after p + 2; `second`: the one after it. Both only move
    // forward, and each scan starts past the end of the previous one: linear.
    let next_end = |from: usize| {
        let found = line.get(from..).and_then(|rest| rest.windows(2).position(|w| w == b"?="));
        found.map_or(len, |n| from + n)
    };
    let (mut first, mut second) = (0, 0);
    for p in (0..len.saturating_sub(1)).filter(|&p| line[p] == b'=' && line[p + 1] == b'?') {
        if first < p + 2 {
            first = next_end(p + 2);
        }
        if second <= first {
            second = next_end(first + 1);
        }
        work = work.saturating_add((second + 2).min(len) - p);
        if work > budget {
            return false;
        }
    }
    work <= budget
}

/// What a part contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// Anything not opened further, including parts kept opaque by a limit.
    Leaf,
    /// A multipart with at least one body part (indices, in order).
    Multipart { children: Vec<usize> },
    /// message/rfc822 or message/global in 7bit/8bit/binary: the enclosed message's root
    /// part, which starts at this part's body start and ends at this part's body end.
    Message { enclosed: usize },
}

/// One part. Ranges index the raw message; `header.end == body.start` always.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Part {
    /// From the first field through the empty line that ends the block; may be empty.
    pub header: Range<usize>,
    /// After the empty line up to the CRLF before the next delimiter (RFC 2046 §5.1.1),
    /// or to the end of the enclosing part, or of the raw message.
    pub body: Range<usize>,
    pub fields: Vec<Field>,
    pub content_type: ContentType,
    /// Content-Transfer-Encoding mechanism, lower-cased, `7bit` when absent (RFC 2045 §6.1).
    pub encoding: String,
    pub kind: PartKind,
    /// The multipart or message/rfc822 part this one is in; `None` for the root.
    pub parent: Option<usize>,
    /// Nesting level: 0 for the root, +1 per multipart and per message/rfc822 level.
    pub depth: usize,
}

/// A parsed message: a flat arena of parts (index 0 is the top-level message) over the
/// raw bytes, and the problems met on the way.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) parts: Vec<Part>,
    problems: Vec<Problem>,
    limits: Limits,
}

impl<'a> Message<'a> {
    /// Parses with the default [`Limits`]. Never fails, never panics.
    pub fn parse(raw: &'a [u8]) -> Self {
        Self::parse_with(raw, Limits::default())
    }

    /// Parses with the given limits.
    pub fn parse_with(raw: &'a [u8], limits: Limits) -> Self {
        let mut p = Parser {
            raw,
            limits,
            parts: Vec::new(),
            problems: Vec::new(),
            chain: Vec::new(),
            bounds: Vec::new(),
            in_header: false,
            cur: Cur::None,
            block_problem: (false, false),
            parts_problem: false,
            total_fields: 0,
        };
        p.run();
        Message { raw, parts: p.parts, problems: p.problems, limits }
    }

    /// The raw bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// All parts; index 0 is the top-level message.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// One part.
    pub fn part(&self, index: usize) -> Option<&Part> {
        self.parts.get(index)
    }

    /// What the lenient parse worked around.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The limits this message was parsed with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The deepest nesting level of any part.
    pub fn depth(&self) -> usize {
        self.parts.iter().map(|p| p.depth).max().unwrap_or(0)
    }

    /// The header fields of a part: the message header for index 0 and for enclosed
    /// messages' roots, the MIME header for other parts. Empty for an unknown index.
    pub fn header(&self, part: usize) -> HeaderView<'_> {
        HeaderView::new(self.raw, self.parts.get(part).map_or(&[][..], |p| &p.fields), self.limits)
    }

    /// The top-level message header.
    pub fn top(&self) -> HeaderView<'_> {
        self.header(0)
    }

    /// Whether the top-level header has a field named `name` (e.g. From, Date, Message-ID).
    pub fn has_field(&self, name: &str) -> bool {
        self.top().has(name)
    }
}

/// What a continuation line of the current header block extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    None,
    Field,
    Skip,
}

/// An open multipart still waiting for delimiters.
#[derive(Debug)]
struct Bound {
    boundary: Vec<u8>,
    /// Position of the multipart in `Parser::chain`.
    chain_pos: usize,
}

#[derive(Debug)]
struct Parser<'a> {
    raw: &'a [u8],
    limits: Limits,
    parts: Vec<Part>,
    problems: Vec<Problem>,
    /// Open parts, outermost first; lines go to the last.
    chain: Vec<usize>,
    /// Open multiparts, outermost first.
    bounds: Vec<Bound>,
    /// The last open part is still in its header block.
    in_header: bool,
    cur: Cur,
    /// (HeaderSyntax, TooManyFields) already recorded for the current header block.
    block_problem: (bool, bool),
    parts_problem: bool,
    /// Fields kept in all header blocks so far (bounded by `Limits::max_total_fields`).
    total_fields: usize,
}

impl Parser<'_> {
    fn run(&mut self) {
        let raw = self.raw;
        self.parts.push(new_part(0, None, 0));
        self.open_header(0);
        let mut pos = 0;
        while pos < raw.len() {
            let (mut end, next) = match raw[pos..].iter().position(|&b| b == b'\n') {
                Some(n) => (pos + n, pos + n + 1),
                None => (raw.len(), raw.len()),
            };
            if end > pos && raw[end - 1] == b'\r' {
                end -= 1;
            }
            if let Some((k, close)) = self.delimiter_of(&raw[pos..end]) {
                self.delimiter(k, close, pos, next);
            } else if self.in_header {
                self.header_line(pos, end, next);
            }
            pos = next;
        }
        self.close_from(0, raw.len());
    }

    fn open_header(&mut self, part: usize) {
        self.chain.push(part);
        self.in_header = true;
        self.cur = Cur::None;
        self.block_problem = (false, false);
    }

    /// A new part if `max_parts` allows (the root is always created).
    fn try_part(&mut self, header_start: usize, parent: usize, depth: usize) -> Option<usize> {
        if self.parts.len() >= self.limits.max_parts {
            if !self.parts_problem {
                self.problems.push(Problem::TooManyParts { part: parent });
                self.parts_problem = true;
            }
            return None;
        }
        self.parts.push(new_part(header_start, Some(parent), depth));
        Some(self.parts.len() - 1)
    }

    /// RFC 2046 §5.1.1: `--boundary`, optionally `--`, then only transport padding. The
    /// innermost open multipart is tried first, then the outer ones.
    fn delimiter_of(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        self.bounds.iter().enumerate().rev().find_map(|(k, b)| {
            let tail = rest.strip_prefix(b.boundary.as_slice())?;
            let (close, tail) = match tail.strip_prefix(b"--") {
                Some(t) => (true, t),
                None => (false, tail),
            };
            tail.iter().all(|&c| c == b' ' || c == b'\t').then_some((k, close))
        })
    }

    /// A delimiter of bound `k` at line `start`: everything opened inside that multipart
    /// ends before the line break preceding the line (RFC 2046 §5.1.1).
    fn delimiter(&mut self, k: usize, close: bool, start: usize, next: usize) {
        let before = &self.raw[..start];
        let end = if before.ends_with(b"\r\n") { start - 2 } else { start - usize::from(before.ends_with(b"\n")) };
        let cp = self.bounds[k].chain_pos;
        self.close_from(cp + 1, end);
        let multipart = self.chain[cp];
        if close {
            self.bounds.truncate(k);
        } else if let Some(child) = self.try_part(next, multipart, self.parts[multipart].depth + 1) {
            if let PartKind::Multipart { children } = &mut self.parts[multipart].kind {
                children.push(child);
            }
            self.open_header(child);
        }
    }

    /// Ends the parts at `chain[from..]` at `end`, outermost first. An inner part never
    /// ends before it starts nor starts after its parent ends.
    fn close_from(&mut self, from: usize, end: usize) {
        let mut limit = usize::MAX;
        let last = self.chain.len().saturating_sub(1);
        for i in from..self.chain.len() {
            let p = self.chain[i];
            let in_header = self.in_header && i == last;
            if in_header {
                self.classify(p);
            }
            let part = &mut self.parts[p];
            part.header.start = part.header.start.min(limit);
            let e = end.max(part.header.start);
            if in_header {
                part.header.end = e;
            }
            part.header.end = part.header.end.min(e);
            part.body = part.header.end..e;
            if matches!(&part.kind, PartKind::Multipart { children } if children.is_empty()) {
                part.kind = PartKind::Leaf;
            }
            limit = e;
        }
        self.chain.truncate(from);
        while self.bounds.last().is_some_and(|b| b.chain_pos >= from) {
            self.bounds.pop();
        }
        self.in_header = false;
    }

    /// One line of the header block of the last open part (RFC 5322 §2.2).
    fn header_line(&mut self, start: usize, end: usize, next: usize) {
        let Some(&p) = self.chain.last() else { return };
        let line = &self.raw[start..end];
        let Some(&first) = line.first() else {
            return self.end_header(p, next);
        };
        if first == b' ' || first == b'\t' {
            // RFC 5322 §2.2.3: folding continues the current field.
            match self.cur {
                Cur::Field => {
                    if let Some(f) = self.parts[p].fields.last_mut() {
                        f.value.end = end;
                    }
                }
                Cur::Skip => {}
                Cur::None => self.syntax(p, start),
            }
            return;
        }
        let Some((name_len, colon)) = field_name(line) else {
            return self.syntax(p, start);
        };
        let whole_message = self.total_fields >= self.limits.max_total_fields;
        if whole_message || self.parts[p].fields.len() >= self.limits.max_fields {
            if !self.block_problem.1 {
                self.problems.push(Problem::TooManyFields { part: p, whole_message });
                self.block_problem.1 = true;
            }
            self.cur = Cur::Skip;
            return;
        }
        self.parts[p].fields.push(Field { name: start..start + name_len, value: start + colon + 1..end });
        self.total_fields += 1;
        self.cur = Cur::Field;
    }

    fn syntax(&mut self, part: usize, line_offset: usize) {
        if !self.block_problem.0 {
            self.problems.push(Problem::HeaderSyntax { part, line_offset });
            self.block_problem.0 = true;
        }
        self.cur = Cur::Skip;
    }

    /// The empty line ending part `p`'s header: decide what the body is.
    fn end_header(&mut self, p: usize, body_start: usize) {
        self.in_header = false;
        self.parts[p].header.end = body_start;
        self.parts[p].body = body_start..body_start;
        self.classify(p);
        let part = &self.parts[p];
        let (ct, depth) = (&part.content_type, part.depth);
        if ct.ctype == "multipart" {
            // RFC 2046 §5.1.1: without a boundary there are no body parts to find.
            let Some(boundary) = ct.param("boundary").filter(|b| !b.is_empty()) else { return };
            let boundary = boundary.as_bytes().to_vec();
            if depth >= self.limits.max_depth {
                return self.problems.push(Problem::TooDeep { part: p });
            }
            self.parts[p].kind = PartKind::Multipart { children: Vec::new() };
            self.bounds.push(Bound { boundary, chain_pos: self.chain.len().saturating_sub(1) });
        } else if ct.ctype == "message"
            && matches!(ct.subtype.as_str(), "rfc822" | "global")
            && matches!(part.encoding.as_str(), "7bit" | "8bit" | "binary")
        {
            // RFC 2046 §5.2.1, RFC 6532 §3.5; other encodings leave it opaque.
            if depth >= self.limits.max_depth {
                return self.problems.push(Problem::TooDeep { part: p });
            }
            if let Some(root) = self.try_part(body_start, p, depth + 1) {
                self.parts[p].kind = PartKind::Message { enclosed: root };
                self.open_header(root);
            }
        }
    }

    /// Content-Type (first field; RFC 2045 §5.2 / RFC 2046 §5.1.5 defaults) and
    /// Content-Transfer-Encoding (first field, RFC 2045 §6.1) of part `p`, read when its
    /// header block ends (once per part); also records the block's fields that the views
    /// will not read (too long, or a Content-Type/-Disposition too costly to parse).
    fn classify(&mut self, p: usize) {
        let parent = self.parts[p].parent.and_then(|q| self.parts.get(q));
        let digest = parent
            .is_some_and(|q| matches!(q.kind, PartKind::Multipart { .. }) && q.content_type.is("multipart", "digest"));
        let view = HeaderView::new(self.raw, &self.parts[p].fields, self.limits);
        let mut problems = Vec::new();
        if let Some(field) = self.parts[p].fields.iter().position(|f| f.value.len() > self.limits.max_field_value) {
            problems.push(Problem::FieldTooLong { part: p, field });
        }
        let mut content_type = None;
        for name in ["Content-Type", "Content-Disposition"] {
            let Some(field) = view.readable_index(name) else { continue };
            let Some(line) = view.field_at(field).and_then(|f| parameterized_line(f.value())) else {
                problems.push(Problem::FieldTooComplex { part: p, field });
                continue;
            };
            if name == "Content-Type" {
                content_type = ContentType::from_line(&line);
            }
        }
        let content_type = content_type
            .unwrap_or_else(|| if digest { ContentType::digest_default() } else { ContentType::text_default() });
        let encoding = view.readable("Content-Transfer-Encoding").map(|f| {
            let v = f.unfolded();
            let token = v.split(|&b| b.is_ascii_whitespace() || b == b';' || b == b'(').next().unwrap_or_default();
            String::from_utf8_lossy(token).to_ascii_lowercase()
        });
        self.problems.extend(problems);
        let part = &mut self.parts[p];
        part.content_type = content_type;
        part.encoding = encoding.filter(|e| !e.is_empty()).unwrap_or_else(|| "7bit".to_owned());
    }
}

fn new_part(header_start: usize, parent: Option<usize>, depth: usize) -> Part {
    Part {
        header: header_start..header_start,
        body: header_start..header_start,
        fields: Vec::new(),
        content_type: ContentType::text_default(),
        encoding: "7bit".to_owned(),
        kind: PartKind::Leaf,
        parent,
        depth,
    }
}

/// RFC 5322 §2.2 (and §4.5 obs-syntax: whitespace before the colon): the length of the
/// field name and the position of the colon if `line` starts a field.
fn field_name(line: &[u8]) -> Option<(usize, usize)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let mut name = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    let valid = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
    valid.then_some((name.len(), colon))
}
