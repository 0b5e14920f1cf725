//! The decoder's careful path: reads any record, plain or not, and judges every rule of the decoder's module
//! documentation in its order, giving each reason its code and a sentence naming the field. The fast path hands
//! it every record it does not read itself; the two agree on every record (`tests.rs`, the fuzz target).

use compact_str::CompactString;

use super::{Bad, Cursor, Decoder, Field, MAX_COLUMNS, Reason, bad, check_text};
use crate::value::{DataType, Value, parse_timestamp};

impl Decoder {
    /// The careful path: reads `text` into `row`, judging every rule (see the module's doc).
    pub(super) fn read_object(&self, text: &str, row: &mut [Value]) -> Result<(), Bad> {
        let s = &mut Scan {
            s: text,
            cur: Cursor {
                b: text.as_bytes(),
                at: 0,
            },
        };
        s.ws();
        if s.peek() != Some(b'{') {
            return Err(match s.skip_value() {
                Ok(()) => bad(Reason::NotObject, "the value is JSON but not an object"),
                Err(e) => e.into_bad(),
            });
        }
        s.at += 1;
        // Bit i: field i was seen (as a value or as null); was null.
        let (mut seen, mut null_seen) = (0u128, 0u128);
        // Rules judged after parsing, as the seed's parser does: the first text rule broken by a field that is
        // not stored (reported in declared order with the stored ones), and the first BIGINT that is not an
        // integer of 64 bits.
        let mut deferred_text: Option<(usize, Bad)> = None;
        let mut deferred_number: Option<Bad> = None;
        let mut hint = 0;
        s.ws();
        if s.peek() == Some(b'}') {
            s.at += 1;
        } else {
            loop {
                s.ws();
                let key = s.key()?;
                s.ws();
                s.expect(b':')?;
                s.ws();
                match self.find(&key, hint) {
                    None => s.skip_value().map_err(Syntax::into_bad)?,
                    Some(i) => {
                        hint = i + 1;
                        let field = &self.fields[i];
                        let value = match s.typed(field)? {
                            Typed::Value(v) => v,
                            Typed::BadText(b) => {
                                if deferred_text.as_ref().is_none_or(|(j, _)| i < *j) {
                                    deferred_text = Some((i, b));
                                }
                                Some(Value::Null)
                            }
                            Typed::BadNumber(b) => {
                                deferred_number.get_or_insert(b);
                                Some(Value::Null)
                            }
                        };
                        let bit = 1u128 << (i % MAX_COLUMNS);
                        if seen & bit != 0 {
                            return Err(bad(
                                Reason::DuplicateField,
                                format!("the field `{}` appears twice", field.name),
                            ));
                        }
                        seen |= bit;
                        match value {
                            None => null_seen |= bit,
                            Some(v) if field.keep => row[i] = v,
                            Some(_) => {}
                        }
                    }
                }
                s.ws();
                match s.next() {
                    Some(b',') => continue,
                    Some(b'}') => break,
                    _ => return Err(Syntax::Malformed("expected `,` or `}` after a field").into_bad()),
                }
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            let bit = 1u128 << (i % MAX_COLUMNS);
            if !f.nullable && (seen & bit == 0 || null_seen & bit != 0) {
                let how = if seen & bit != 0 { "is null" } else { "is missing" };
                return Err(bad(Reason::MissingField, format!("the field `{}` {how}", f.name)));
            }
        }
        s.ws();
        if s.at != s.b.len() {
            return Err(bad(
                Reason::NotJson,
                "the value is not valid JSON: text after the object",
            ));
        }
        // String rules, in declared order. A field not stored was checked while it was read.
        for (i, f) in self.fields.iter().enumerate() {
            if deferred_text.as_ref().is_some_and(|(j, _)| *j == i) {
                return Err(deferred_text.take().map(|(_, b)| b).expect("checked above"));
            }
            if let Value::Text(t) = &row[i] {
                check_text(&f.name, t, f.max_bytes, f.text_key)?;
            }
        }
        match deferred_number {
            Some(b) => Err(b),
            None => Ok(()),
        }
    }

    /// The declared field called `key`, trying `hint` (the field after the last one found) first.
    #[inline]
    fn find(&self, key: &Key<'_>, hint: usize) -> Option<usize> {
        let name = key.as_str();
        if let Some(f) = self.fields.get(hint)
            && *f.name == *name
        {
            return Some(hint);
        }
        self.fields.iter().position(|f| *f.name == *name)
    }
}

/// A JSON syntax problem.
#[derive(Debug)]
enum Syntax {
    Malformed(&'static str),
}

impl Syntax {
    fn into_bad(self) -> Bad {
        let Syntax::Malformed(what) = self;
        bad(Reason::NotJson, format!("the value is not valid JSON: {what}"))
    }
}

/// Which kind of container each open level is, for a value being skipped: the first 128 levels in a word, any
/// deeper ones (hostile input only) in a vector.
#[derive(Default)]
struct Levels {
    shallow: u128,
    deep: Vec<bool>,
    len: usize,
}

impl Levels {
    fn push(&mut self, object: bool) {
        if self.len < 128 {
            if object {
                self.shallow |= 1 << self.len;
            } else {
                self.shallow &= !(1 << self.len);
            }
        } else {
            self.deep.truncate(self.len - 128);
            self.deep.push(object);
        }
        self.len += 1;
    }

    /// Whether the innermost open level is an object (`None`: none is open).
    fn top(&self) -> Option<bool> {
        let i = self.len.checked_sub(1)?;
        Some(if i < 128 {
            self.shallow & (1 << i) != 0
        } else {
            self.deep[i - 128]
        })
    }

    fn pop(&mut self) {
        self.len -= 1;
    }
}

/// An object key: borrowed when it has no escapes.
enum Key<'a> {
    Plain(&'a str),
    Escaped(CompactString),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Plain(s) => s,
            Key::Escaped(s) => s,
        }
    }
}

/// The careful path's cursor over the record's bytes (valid UTF-8).
struct Scan<'a> {
    s: &'a str,
    cur: Cursor<'a>,
}

impl<'a> std::ops::Deref for Scan<'a> {
    type Target = Cursor<'a>;

    fn deref(&self) -> &Cursor<'a> {
        &self.cur
    }
}

impl std::ops::DerefMut for Scan<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.cur
    }
}

impl<'a> Scan<'a> {
    /// `s[from..to]`; both ends sit next to ASCII bytes of the (valid UTF-8) text, so they are character
    /// boundaries and the check is O(1).
    fn slice(&self, from: usize, to: usize) -> Result<&'a str, Syntax> {
        self.s.get(from..to).ok_or(Syntax::Malformed("bad UTF-8"))
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Result<(), Bad> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(Syntax::Malformed("expected `:` after a key").into_bad())
        }
    }

    fn key(&mut self) -> Result<Key<'a>, Bad> {
        if self.peek() != Some(b'"') {
            return Err(Syntax::Malformed("expected a string key").into_bad());
        }
        match self.string().map_err(Syntax::into_bad)? {
            Text::Plain(s) => Ok(Key::Plain(s)),
            Text::Escaped(s) => Ok(Key::Escaped(s)),
        }
    }

    /// A string at the cursor (which is at its opening quote): borrowed when it has no escapes, else decoded
    /// (inline up to 24 bytes).
    fn string(&mut self) -> Result<Text<'a>, Syntax> {
        self.at += 1;
        let start = self.at;
        // Fast scan up to the closing quote or the first escape.
        loop {
            match self.b.get(self.at) {
                None => return Err(Syntax::Malformed("unterminated string")),
                Some(b'"') => {
                    let s = self.slice(start, self.at)?;
                    self.at += 1;
                    return Ok(Text::Plain(s));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(Syntax::Malformed("a control character inside a string")),
                Some(_) => self.at += 1,
            }
        }
        let mut out = CompactString::from(self.slice(start, self.at)?);
        loop {
            match self.next() {
                None => return Err(Syntax::Malformed("unterminated string")),
                Some(b'"') => return Ok(Text::Escaped(out)),
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(Syntax::Malformed("an invalid escape in a string")),
                    };
                    out.push(c);
                }
                Some(0..=0x1f) => return Err(Syntax::Malformed("a control character inside a string")),
                Some(_) => {
                    // Copy the run up to the next quote, escape or control byte at once.
                    let run_start = self.at - 1;
                    while let Some(&c) = self.b.get(self.at) {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    let run = self.slice(run_start, self.at)?;
                    out.push_str(run);
                }
            }
        }
    }

    /// Skips a string at the cursor without decoding it. As in the seed's parser, escapes are checked for their
    /// form only (a lone surrogate passes), control characters are refused.
    fn skip_string(&mut self) -> Result<(), Syntax> {
        self.at += 1;
        loop {
            match self.next() {
                None => return Err(Syntax::Malformed("unterminated string")),
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        self.hex4()?;
                    }
                    _ => return Err(Syntax::Malformed("an invalid escape in a string")),
                },
                Some(0..=0x1f) => return Err(Syntax::Malformed("a control character inside a string")),
                Some(_) => {}
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Syntax> {
        let digits = self
            .b
            .get(self.at..self.at + 4)
            .ok_or(Syntax::Malformed("a truncated \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or(Syntax::Malformed("an invalid \\u escape"))?;
            v = v * 16 + x;
        }
        self.at += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, Syntax> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err(Syntax::Malformed("a lone surrogate in a \\u escape"));
                }
                self.at += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(Syntax::Malformed("a lone surrogate in a \\u escape"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(Syntax::Malformed("a lone surrogate in a \\u escape")),
            other => other,
        };
        char::from_u32(code).ok_or(Syntax::Malformed("an invalid \\u escape"))
    }

    /// A JSON number at the cursor: its text and whether it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Result<(&'a str, bool), Syntax> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.at += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(Syntax::Malformed("a number with a leading zero"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Syntax::Malformed("an invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Syntax::Malformed("an invalid number"));
            }
            self.digits();
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Syntax::Malformed("an invalid number"));
            }
            self.digits();
            integer = false;
        }
        let text = self.slice(start, self.at)?;
        Ok((text, integer))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Syntax> {
        if self.b.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Syntax::Malformed("an invalid literal"))
        }
    }

    /// The value of a declared field: `None` for `null`; a field that is not stored gives `Some(NULL)`, or the
    /// text rule it breaks.
    fn typed(&mut self, field: &Field) -> Result<Typed, Bad> {
        self.typed_value(field).map(Typed::Value).or_else(|e| match e {
            Deferred::Now(b) => Err(b),
            Deferred::Text(b) => Ok(Typed::BadText(b)),
            Deferred::Number(b) => Ok(Typed::BadNumber(b)),
        })
    }

    fn typed_value(&mut self, field: &Field) -> Result<Option<Value>, Deferred> {
        let wrong = |found: &str| {
            bad(
                Reason::WrongType,
                format!(
                    "the field `{}` has the wrong type: expected {}, found {found}",
                    field.name, field.ty
                ),
            )
        };
        let c = self
            .peek()
            .ok_or_else(|| Syntax::Malformed("unexpected end").into_bad())?;
        if c == b'n' {
            self.literal(b"null").map_err(Syntax::into_bad)?;
            return Ok(None);
        }
        match (field.ty, c) {
            (DataType::Text, b'"') => match self.string().map_err(Syntax::into_bad)? {
                Text::Plain(s) => {
                    if field.keep {
                        Ok(Some(Value::Text(CompactString::from(s))))
                    } else {
                        check_text(&field.name, s, field.max_bytes, field.text_key).map_err(Deferred::Text)?;
                        Ok(Some(Value::Null))
                    }
                }
                Text::Escaped(s) => {
                    if field.keep {
                        Ok(Some(Value::Text(s)))
                    } else {
                        check_text(&field.name, &s, field.max_bytes, field.text_key).map_err(Deferred::Text)?;
                        Ok(Some(Value::Null))
                    }
                }
            },
            (DataType::BigInt | DataType::Double | DataType::Timestamp, b'-' | b'0'..=b'9') => {
                let (text, integer) = self.number().map_err(Syntax::into_bad)?;
                let float = || match text.parse::<f64>() {
                    Ok(f) if f.is_finite() => Ok(f),
                    _ => Err(bad(
                        Reason::NotJson,
                        format!("the value is not valid JSON: the number {} is out of range", clip(text)),
                    )),
                };
                match field.ty {
                    DataType::Double => Ok(Some(Value::Float(float()?))),
                    _ if !integer => {
                        float()?;
                        Err(Deferred::Number(wrong(&format!(
                            "{}, which is not an integer",
                            clip(text)
                        ))))
                    }
                    ty => match text.parse::<i64>() {
                        Ok(i) if ty == DataType::Timestamp => Ok(Some(Value::Timestamp(i))),
                        Ok(i) => Ok(Some(Value::Int(i))),
                        Err(_) => Err(Deferred::Number(bad(
                            Reason::OutOfRange,
                            format!("the field `{}` is out of the BIGINT range: {}", field.name, clip(text)),
                        ))),
                    },
                }
            }
            (DataType::Timestamp, b'"') => {
                let s = match self.string().map_err(Syntax::into_bad)? {
                    Text::Plain(s) => parse_timestamp(s),
                    Text::Escaped(s) => parse_timestamp(&s),
                };
                match s {
                    Some(ms) => Ok(Some(Value::Timestamp(ms))),
                    None => Err(wrong("a string that is not an RFC 3339 timestamp").into()),
                }
            }
            (DataType::Boolean, b't') => {
                self.literal(b"true").map_err(Syntax::into_bad)?;
                Ok(Some(Value::Bool(true)))
            }
            (DataType::Boolean, b'f') => {
                self.literal(b"false").map_err(Syntax::into_bad)?;
                Ok(Some(Value::Bool(false)))
            }
            (_, c) => {
                // The seed's parser reports the type from the first character and reads no further, except that
                // a malformed literal or number is malformed JSON.
                let found = match c {
                    b'"' => "a string",
                    b'{' => "an object",
                    b'[' => "an array",
                    b't' | b'f' => {
                        self.literal(if c == b't' { b"true" } else { b"false" })
                            .map_err(Syntax::into_bad)?;
                        "a boolean"
                    }
                    b'-' | b'0'..=b'9' => {
                        self.number().map_err(Syntax::into_bad)?;
                        "a number"
                    }
                    _ => return Err(Syntax::Malformed("an invalid value").into_bad().into()),
                };
                Err(wrong(found).into())
            }
        }
    }

    /// Skips one JSON value, validating its form, without recursion and at any depth.
    fn skip_value(&mut self) -> Result<(), Syntax> {
        let mut levels = Levels::default();
        'value: loop {
            self.ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.at += 1;
                    let object = open == b'{';
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        levels.push(object);
                        if object {
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                // A skipped number's value is not computed, so it cannot be out of range.
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => return Err(Syntax::Malformed("an invalid value")),
            }
            // After a value: close containers or go on to the next member.
            loop {
                let Some(object) = levels.top() else {
                    return Ok(());
                };
                self.ws();
                match (self.next(), object) {
                    (Some(b','), true) => {
                        self.ws();
                        self.member_key()?;
                        continue 'value;
                    }
                    (Some(b','), false) => continue 'value,
                    (Some(b'}'), true) | (Some(b']'), false) => levels.pop(),
                    _ => return Err(Syntax::Malformed("an unclosed array or object")),
                }
            }
        }
    }

    /// `"key" :` inside an object being skipped.
    fn member_key(&mut self) -> Result<(), Syntax> {
        if self.peek() != Some(b'"') {
            return Err(Syntax::Malformed("expected a string key"));
        }
        self.skip_string()?;
        self.ws();
        if self.next() != Some(b':') {
            return Err(Syntax::Malformed("expected `:` after a key"));
        }
        Ok(())
    }
}

/// What reading a declared field gave.
enum Typed {
    /// Its value (`None`: null).
    Value(Option<Value>),
    /// A field that is not stored broke a text rule: reported after parsing, as a stored one would be.
    BadText(Bad),
    /// A BIGINT that is not an integer of 64 bits: reported after the text rules.
    BadNumber(Bad),
}

/// A failure while reading a field: at once, or after parsing (see [`Typed`]).
enum Deferred {
    Now(Bad),
    Text(Bad),
    Number(Bad),
}

impl From<Bad> for Deferred {
    fn from(b: Bad) -> Deferred {
        Deferred::Now(b)
    }
}

/// A decoded string.
enum Text<'a> {
    Plain(&'a str),
    Escaped(CompactString),
}

/// At most 40 characters of `s`, for messages about hostile input.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
