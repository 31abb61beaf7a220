//! Header fields as ranges into the raw message (RFC 5322 §2.2) and the [`HeaderView`]
//! that every check and every display reads them through.
//!
//! A field's value is everything after the colon up to the end of its last continuation
//! line (folding CRLFs included, the final CRLF not). When a field occurs more than once,
//! the single-value accessors ([`HeaderView::first`], [`HeaderView::addresses`],
//! [`HeaderView::date`], [`HeaderView::decoded`]) read the first: that is what IMAP ENVELOPE
//! shows, and intake refuses duplicates of the fields that may occur once, so a check on
//! an accepted message sees exactly what a client displays.
//!
//! A value longer than `Limits::max_field_value` is not parsed by any accessor: the
//! structured ones ([`HeaderView::addresses`], [`HeaderView::date`],
//! [`HeaderView::disposition`], the part's Content-Type) treat the field as absent, the
//! decoding ones return the text as written. Intake refuses such fields.

use std::{collections::BTreeSet, ops::Range};

use mail_parser::{DateTime, HeaderValue, parsers::MessageStream};

use crate::{
    Limits,
    address::{AddressItem, Mailbox, address_list},
};

/// One header field: byte ranges of its name (without the colon and without obs-syntax
/// whitespace before it) and of its raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// A [`Field`] together with the bytes it points into.
#[derive(Debug, Clone, Copy)]
pub struct FieldRef<'a> {
    raw: &'a [u8],
    field: &'a Field,
    /// `Limits::max_field_value` of the parse.
    max_value: usize,
}

fn get(raw: &[u8], r: Range<usize>) -> &[u8] {
    raw.get(r).unwrap_or_default()
}

impl<'a> FieldRef<'a> {
    /// The ranges.
    pub fn field(&self) -> &'a Field {
        self.field
    }

    /// The name as written (RFC 5322 §2.2: printable US-ASCII except colon).
    pub fn name(&self) -> &'a [u8] {
        get(self.raw, self.field.name.clone())
    }

    /// The name as `&str` (names are validated ASCII, so this never loses anything).
    pub fn name_str(&self) -> &'a str {
        std::str::from_utf8(self.name()).unwrap_or_default()
    }

    /// Whether the field has this name (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The raw value after the colon, folding included, without the final line break.
    pub fn value(&self) -> &'a [u8] {
        get(self.raw, self.field.value.clone())
    }

    /// The value unfolded (RFC 5322 §2.2.3: CRLF before WSP removed) and trimmed.
    pub fn unfolded(&self) -> Vec<u8> {
        unfold(self.value())
    }

    /// The unfolded value as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.unfolded()).into_owned()
    }

    /// Whether the value is short enough to be parsed (`Limits::max_field_value`).
    pub fn readable(&self) -> bool {
        self.field.value.len() <= self.max_value
    }

    /// The unfolded value with RFC 2047 encoded words decoded; as written (like
    /// [`Self::text`]) when the value is too long to be read or to be decoded in linear time.
    pub fn decoded(&self) -> String {
        if self.readable() { decode_words(&self.unfolded()) } else { self.text() }
    }

    /// The whole field as stored, from its name through its line break.
    pub fn bytes(&self) -> &'a [u8] {
        let end = self.field.value.end;
        let rest = self.raw.get(end..).unwrap_or_default();
        let eol = if rest.starts_with(b"\r\n") { 2 } else { usize::from(rest.starts_with(b"\n")) };
        get(self.raw, self.field.name.start..end + eol)
    }
}

/// Removes the line breaks of folding and trims surrounding whitespace.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, &b) in value.iter().enumerate() {
        let fold = b == b'\n' || (b == b'\r' && value.get(i + 1) == Some(&b'\n'));
        if !fold {
            out.push(b);
        }
    }
    out.trim_ascii().to_vec()
}

/// Decodes RFC 2047 encoded words in unstructured text (mail-parser's decoder). Text that
/// mail-parser could not read in linear time (`parse::parse_work_fits`) comes back as
/// written, line breaks as spaces.
pub(crate) fn decode_words(text: &[u8]) -> String {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    line.push(b'\n');
    if !crate::parse::parse_work_fits(&line, false) {
        line.pop();
        return String::from_utf8_lossy(&line).into_owned();
    }
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

/// The fields of one header block: a message's header or a MIME part's header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderView<'a> {
    raw: &'a [u8],
    fields: &'a [Field],
    limits: Limits,
}

impl<'a> HeaderView<'a> {
    pub(crate) fn new(raw: &'a [u8], fields: &'a [Field], limits: Limits) -> Self {
        HeaderView { raw, fields, limits }
    }

    /// Every field in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldRef<'a>> + 'a {
        let (raw, max_value) = (self.raw, self.limits.max_field_value);
        self.fields.iter().map(move |field| FieldRef { raw, field, max_value })
    }

    /// Field `index` of the block (e.g. an index from a [`crate::Problem`]).
    pub fn field_at(&self, index: usize) -> Option<FieldRef<'a>> {
        let field = self.fields.get(index)?;
        Some(FieldRef { raw: self.raw, field, max_value: self.limits.max_field_value })
    }

    /// The index of the first field named `name`, if its value may be parsed: the one
    /// field every structured accessor reads. `None` when there is none or it is too long.
    pub(crate) fn readable_index(&self, name: &str) -> Option<usize> {
        let index = self.fields().position(|f| f.is(name))?;
        self.field_at(index)?.readable().then_some(index)
    }

    /// The first field named `name`, if its value may be parsed (see [`FieldRef::readable`]).
    pub fn readable(&self, name: &str) -> Option<FieldRef<'a>> {
        self.field_at(self.readable_index(name)?)
    }

    /// Every field named `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> impl Iterator<Item = FieldRef<'a>> + 'a {
        let name = name.to_owned();
        self.fields().filter(move |f| f.is(&name))
    }

    /// The first field named `name`.
    pub fn first(&self, name: &str) -> Option<FieldRef<'a>> {
        self.fields().find(|f| f.is(name))
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.fields().filter(|f| f.is(name)).count()
    }

    /// Whether a field named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// The address list of the first field named `name` (RFC 5322 §3.4): at most
    /// `Limits::max_addresses` items (and a closing group marker); empty if there is none
    /// or it is too long to be read.
    pub fn addresses(&self, name: &str) -> Vec<AddressItem> {
        let max = self.limits.max_addresses;
        self.readable(name).map(|f| address_list(f.value(), max).0).unwrap_or_default()
    }

    /// Whether the address list of `field` has more than `Limits::max_addresses` items.
    pub(crate) fn too_many_addresses(&self, field: FieldRef<'_>) -> bool {
        address_list(field.value(), self.limits.max_addresses).1
    }

    /// Only the mailboxes of [`Self::addresses`], group members included, markers dropped.
    pub fn mailboxes(&self, name: &str) -> Vec<Mailbox> {
        let items = self.addresses(name).into_iter();
        items.filter_map(|i| if let AddressItem::Mailbox(m) = i { Some(m) } else { None }).collect()
    }

    /// The domains of the authors (the `From:` mailboxes, RFC 5322 §3.6.2), lower case,
    /// without a trailing dot, each once, in the order they appear. What DMARC aligns, the
    /// hosted-domain rule protects and DKIM signs for.
    pub fn author_domains(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let domains = self.mailboxes("From").into_iter();
        let domains = domains.map(|m| m.domain.trim_end_matches('.').to_ascii_lowercase());
        domains.filter(|d| seen.insert(d.clone())).collect()
    }

    /// The first Date field (RFC 5322 §3.3), if it parses.
    pub fn date(&self) -> Option<DateTime> {
        DateTime::parse_rfc822(&self.readable("Date")?.text())
    }

    /// The first field named `name`, unfolded, with RFC 2047 encoded words decoded.
    pub fn decoded(&self, name: &str) -> Option<String> {
        self.first(name).map(|f| f.decoded())
    }

    /// `Content-Disposition` (RFC 2183 §2): the disposition type lower-cased and its
    /// parameters, from the first such field.
    pub fn disposition(&self) -> Option<(String, Vec<(String, String)>)> {
        let (kind, _, params) = crate::parse::parameterized(self.readable("Content-Disposition")?.value())?;
        (!kind.is_empty()).then_some((kind, params))
    }
}
