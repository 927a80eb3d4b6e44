//! Log records in the shape of WIT `log-records`: every body in one byte
//! list, every record's attribute text in one string, every span in one
//! list of numbers, and per record only the lengths of its parts. Shared by
//! the host, which packs a batch for a log processor and unpacks what it
//! returns, and by the log-processor SDK, which does the reverse, so both
//! sides read one layout by one rule.
//!
//! Why: with a list per body and per attribute list, a batch of 2,000
//! records crossed the component boundary as 6,000 lists, each with its own
//! guest allocation, copy and check, and that was half the cost of a
//! `process` call. Packed, it is four lists whatever the number of records.

use crate::attributes::{Attributes, PackedError};

/// How much of each list one record takes (WIT `record-head` without its
/// timestamp and source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordLengths {
    pub body_bytes: u32,
    pub attribute_bytes: u32,
    pub attribute_count: u32,
}

/// The lists of a `log-records` being built, one record after another.
#[derive(Debug, Default)]
pub struct Packer {
    pub bodies: Vec<u8>,
    pub attribute_text: String,
    pub attribute_spans: Vec<u32>,
}

impl Packer {
    /// Room for `body_bytes` bytes of bodies. (Attribute text is not
    /// reserved: the records of one side of a call usually have none.)
    pub fn with_body_capacity(body_bytes: usize) -> Self {
        Self { bodies: Vec::with_capacity(body_bytes), ..Self::default() }
    }

    /// Appends one record's body and attributes. An error only for a part
    /// of 4 GiB or more, which 32-bit lengths cannot describe.
    pub fn push(&mut self, body: &[u8], attributes: &Attributes) -> Result<RecordLengths, PackedError> {
        let too_long = |what: &str, n: usize| PackedError::new(format!("{what} of {n} bytes is longer than 4 GiB"));
        let (text, spans) = attributes.packed_parts();
        let lengths = RecordLengths {
            body_bytes: u32::try_from(body.len()).map_err(|_| too_long("a body", body.len()))?,
            attribute_bytes: u32::try_from(text.len()).map_err(|_| too_long("an attribute text", text.len()))?,
            attribute_count: u32::try_from(spans.len() / 3)
                .map_err(|_| PackedError::new(format!("{} attributes are too many", spans.len() / 3)))?,
        };
        self.bodies.extend_from_slice(body);
        self.attribute_text.push_str(text);
        self.attribute_spans.extend_from_slice(spans);
        Ok(lengths)
    }
}

/// Reads records back from the lists of a `log-records`, one record after
/// another, checking that each record's lengths stay inside the lists.
pub struct Unpacker<'a> {
    bodies: &'a [u8],
    attribute_text: &'a str,
    attribute_spans: &'a [u32],
    /// Records read so far (to name the one that is wrong).
    records: usize,
    body_at: usize,
    text_at: usize,
    spans_at: usize,
}

impl<'a> Unpacker<'a> {
    pub fn new(bodies: &'a [u8], attribute_text: &'a str, attribute_spans: &'a [u32]) -> Self {
        Self { bodies, attribute_text, attribute_spans, records: 0, body_at: 0, text_at: 0, spans_at: 0 }
    }

    /// The next record's body and attributes.
    pub fn next(&mut self, lengths: RecordLengths) -> Result<(&'a [u8], Attributes), PackedError> {
        let record = self.records;
        let (body, text, spans) = self.next_parts(lengths)?;
        let attributes = Attributes::from_packed(text.to_owned(), spans)
            .map_err(|e| PackedError::new(format!("record {record}: {e}")))?;
        Ok((body, attributes))
    }

    /// The next record's body, attribute text and spans, not yet checked
    /// against each other.
    pub fn next_parts(&mut self, lengths: RecordLengths) -> Result<(&'a [u8], &'a str, &'a [u32]), PackedError> {
        let record = self.records;
        let past = |what: &str, at: usize, n: usize, total: usize| {
            PackedError::new(format!(
                "record {record}: its {n} {what} from {at} run past the {total} of the batch's records"
            ))
        };
        // Saturating: on wasm32 a usize sum of hostile lengths could wrap.
        let body_end = self.body_at.saturating_add(lengths.body_bytes as usize);
        let body = self
            .bodies
            .get(self.body_at..body_end)
            .ok_or_else(|| past("body bytes", self.body_at, lengths.body_bytes as usize, self.bodies.len()))?;
        let text_end = self.text_at.saturating_add(lengths.attribute_bytes as usize);
        let text = match self.attribute_text.get(self.text_at..text_end) {
            Some(text) => text,
            None if text_end <= self.attribute_text.len() => {
                return Err(PackedError::new(format!(
                    "record {record}: its attribute text ends inside a UTF-8 character at byte {text_end}"
                )));
            }
            None => {
                return Err(past(
                    "attribute text bytes",
                    self.text_at,
                    lengths.attribute_bytes as usize,
                    self.attribute_text.len(),
                ));
            }
        };
        let span_numbers = (lengths.attribute_count as usize).saturating_mul(3);
        let spans_end = self.spans_at.saturating_add(span_numbers);
        let spans = self
            .attribute_spans
            .get(self.spans_at..spans_end)
            .ok_or_else(|| past("span numbers", self.spans_at, span_numbers, self.attribute_spans.len()))?;
        (self.body_at, self.text_at, self.spans_at) = (body_end, text_end, spans_end);
        self.records += 1;
        Ok((body, text, spans))
    }

    /// After the last record: every list read to its end, or an error that
    /// says which holds more than the records claim (bytes no record owns
    /// would be lost without a word).
    pub fn finish(self) -> Result<(), PackedError> {
        let left = [
            ("body bytes", self.bodies.len() - self.body_at),
            ("attribute text bytes", self.attribute_text.len() - self.text_at),
            ("span numbers", self.attribute_spans.len() - self.spans_at),
        ];
        match left.iter().find(|(_, n)| *n > 0) {
            None => Ok(()),
            Some((what, n)) => Err(PackedError::new(format!(
                "{n} {what} after the last of {} records belong to no record",
                self.records
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        pairs.iter().copied().collect()
    }

    #[test]
    fn records_come_back_as_they_were_packed() {
        let records = [
            (&b"first"[..], attributes(&[("b", "2"), ("a", "1")])),
            (&b""[..], attributes(&[])),
            (&[0xff, b'x'][..], attributes(&[("k\u{e9}y", "v\u{e9}")])),
        ];
        let mut packer = Packer::with_body_capacity(16);
        let lengths: Vec<RecordLengths> = records.iter().map(|(b, a)| packer.push(b, a).unwrap()).collect();
        assert_eq!(lengths[0], RecordLengths { body_bytes: 5, attribute_bytes: 4, attribute_count: 2 });
        assert_eq!(packer.bodies, b"first\xffx");
        let mut unpacker = Unpacker::new(&packer.bodies, &packer.attribute_text, &packer.attribute_spans);
        for ((body, attrs), lengths) in records.iter().zip(&lengths) {
            let (got_body, got_attrs) = unpacker.next(*lengths).unwrap();
            assert_eq!((got_body, &got_attrs), (*body, attrs));
        }
        unpacker.finish().unwrap();
    }

    #[test]
    fn lengths_that_do_not_add_up_are_errors_naming_the_record() {
        let mut packer = Packer::default();
        let first = packer.push(b"ab", &attributes(&[("k", "\u{e9}")])).unwrap();
        let (bodies, text, spans) = (&packer.bodies, packer.attribute_text.as_str(), &packer.attribute_spans);

        let mut u = Unpacker::new(bodies, text, spans);
        let err = u.next(RecordLengths { body_bytes: 3, ..first }).unwrap_err();
        assert_eq!(err.to_string(), "record 0: its 3 body bytes from 0 run past the 2 of the batch's records");

        let mut u = Unpacker::new(bodies, text, spans);
        let err = u.next(RecordLengths { attribute_bytes: 2, ..first }).unwrap_err();
        assert_eq!(err.to_string(), "record 0: its attribute text ends inside a UTF-8 character at byte 2");

        let mut u = Unpacker::new(bodies, text, spans);
        let err = u.next(RecordLengths { attribute_count: 2, ..first }).unwrap_err();
        assert_eq!(err.to_string(), "record 0: its 6 span numbers from 0 run past the 3 of the batch's records");

        let mut u = Unpacker::new(bodies, text, spans);
        u.next(RecordLengths { body_bytes: 1, ..first }).unwrap();
        let err = u.finish().unwrap_err();
        assert_eq!(err.to_string(), "1 body bytes after the last of 1 records belong to no record");

        // Spans that do not fit the record's own text, though they would fit the batch's.
        let mut packer = Packer::default();
        let first = packer.push(b"", &attributes(&[])).unwrap();
        packer.push(b"", &attributes(&[("key", "value")])).unwrap();
        packer.attribute_spans.splice(0..0, [0, 3, 5]);
        let mut u = Unpacker::new(&packer.bodies, &packer.attribute_text, &packer.attribute_spans);
        let err = u.next(RecordLengths { attribute_count: 1, ..first }).unwrap_err();
        assert!(err.to_string().starts_with("record 0: attribute 0: key of 3 and value of 5 bytes"), "{err}");
    }
}
