//! The decoder's fast path: one pass over a record that is what nearly every record is (a flat object of
//! declared fields whose strings have no escapes and whose values are all valid), writing the row directly. It
//! gives up (`None`) at the first thing that is not plain (an escape, a nested unknown value, a repeated field,
//! a missing field, any rule broken) and the careful path ([`super::Decoder::decode`]'s own) then reads the
//! record from the start, so every reason and message comes from one place. Where it does not give up, its row
//! is the careful path's: `decode/tests.rs` holds the two to that on every record of their corpus.

use compact_str::CompactString;

use super::{Cursor as Bytes, Decoder, Field, MAX_COLUMNS, check_text};
use crate::value::{DataType, Value, parse_timestamp};

/// The fast path's steps over the record's bytes.
impl<'a> Bytes<'a> {
    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A string without escapes or control bytes, the opening quote next; its bytes and whether they are all
    /// printable ASCII.
    #[inline]
    fn plain_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut ascii = true;
        // Eight bytes at a time while none is a quote, a backslash or a control byte.
        while let Some(chunk) = self.b.get(self.at..self.at + 8) {
            let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if stops(x) {
                break;
            }
            // DEL is a control character: it takes the full text check, as a byte above ASCII does.
            ascii &= x & HIGH_BITS == 0 && !has_zero(x ^ (ONES * 0x7f));
            self.at += 8;
        }
        loop {
            let c = *self.b.get(self.at)?;
            match c {
                b'"' => {
                    let s = &self.b[start..self.at];
                    self.at += 1;
                    return Some((s, ascii));
                }
                b'\\' | 0..=0x1f => return None,
                0x7f.. => ascii = false,
                _ => {}
            }
            self.at += 1;
        }
    }

    /// Whether the next token is the string `"name"` exactly (no escapes), consuming it if so.
    #[inline]
    fn quoted(&mut self, name: &[u8]) -> bool {
        let n = name.len();
        let hit = self.b.get(self.at) == Some(&b'"')
            && self.b.get(self.at + 1..self.at + 1 + n) == Some(name)
            && self.b.get(self.at + 1 + n) == Some(&b'"');
        if hit {
            self.at += n + 2;
        }
        hit
    }

    /// A number by JSON's grammar, the first byte next (always inlined: its parts stay in registers).
    #[inline(always)]
    fn number(&mut self) -> Option<Number<'a>> {
        let start = self.at;
        let negative = self.eat(b'-').is_some();
        // The decimal digits as an integer (up to 19 digits, which always fit 64 bits), and the power of ten
        // that scales it.
        let mut mantissa = 0u64;
        let mut count = 0u32;
        let mut scale = 0i32;
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                    count += 1;
                    self.at += 1;
                }
            }
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            while let Some(d @ b'0'..=b'9') = self.peek() {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                count += 1;
                scale -= 1;
                self.at += 1;
            }
            integer = false;
        }
        // Exponents, and more digits than 64 bits surely hold, take the general parsers.
        let mut exact = count <= 19;
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
            integer = false;
            exact = false;
        }
        Some(Number {
            text: &self.b[start..self.at],
            negative,
            mantissa: exact.then_some(mantissa),
            scale,
            integer,
        })
    }

    #[inline]
    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    #[inline]
    fn word(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.at..self.at + word.len())? == word {
            self.at += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips a value of an undeclared field when it is a plain scalar, saying whether it is all ASCII.
    fn skip_scalar(&mut self) -> Option<bool> {
        match self.peek()? {
            b'"' => self.plain_string().map(|(_, ascii)| ascii),
            b't' => self.word(b"true").map(|()| true),
            b'f' => self.word(b"false").map(|()| true),
            b'n' => self.word(b"null").map(|()| true),
            b'-' | b'0'..=b'9' => self.number().map(|_| true),
            _ => None,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `x` is a quote, a backslash or below 0x20 (the classic SWAR tests: a byte is
/// zero, or below n, exactly where the lowest flagged bit says, and flags none when there is none).
#[inline]
fn stops(x: u64) -> bool {
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH_BITS != 0;
    has_zero(x ^ (ONES * u64::from(b'"'))) || has_zero(x ^ (ONES * u64::from(b'\\'))) || below_space
}

/// Whether one of the eight bytes of `v` is zero.
#[inline]
fn has_zero(v: u64) -> bool {
    v.wrapping_sub(ONES) & !v & HIGH_BITS != 0
}

/// A number read by [`Bytes::number`].
struct Number<'a> {
    /// Its text.
    text: &'a [u8],
    /// A leading `-`.
    negative: bool,
    /// Its digits as an integer when they fit 64 bits and there is no exponent.
    mantissa: Option<u64>,
    /// The power of ten of the last digit (minus the fraction's length).
    scale: i32,
    /// No fraction and no exponent.
    integer: bool,
}

/// Powers of ten a DOUBLE holds exactly.
const EXACT_POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

impl Number<'_> {
    /// The DOUBLE nearest the number (`None`: not finite). A mantissa below 2^53 and a power of ten a DOUBLE holds
    /// exactly take one correctly rounded division (Clinger's fast path); any other number the standard parser.
    #[inline(always)]
    fn double(&self) -> Option<f64> {
        let f = match self.mantissa {
            Some(m) if m < 1 << 53 && (-22..=0).contains(&self.scale) => {
                let v = m as f64 / EXACT_POWERS[self.scale.unsigned_abs() as usize];
                if self.negative { -v } else { v }
            }
            _ => std::str::from_utf8(self.text).ok()?.parse().ok()?,
        };
        f.is_finite().then_some(f)
    }

    /// The BIGINT the number is (`None`: not an integer, or beyond 64 bits).
    #[inline(always)]
    fn bigint(&self) -> Option<i64> {
        if !self.integer {
            return None;
        }
        let m = self.mantissa?;
        if self.negative {
            0i64.checked_sub_unsigned(m)
        } else {
            i64::try_from(m).ok()
        }
    }
}

impl Decoder {
    /// Reads `bytes` into `row` ([`Decoder::width`] slots, holding the previous record's values) when the record is plain and breaks no rule of reading, saying whether it is all ASCII
    /// (then it is UTF-8; else the caller checks); every stored field's slot then holds the record's value or
    /// NULL. `None` otherwise (the row then holds parts of both records).
    pub(super) fn read_plain(&self, bytes: &[u8], row: &mut [Value]) -> Option<bool> {
        let mut s = Bytes { b: bytes, at: 0 };
        s.ws();
        s.eat(b'{')?;
        let mut seen = 0u128;
        let mut hint = 0;
        let mut ascii = true;
        s.ws();
        if s.eat(b'}').is_none() {
            loop {
                s.ws();
                // Fields mostly come in declared order: the next one is tried as a literal `"name"` first.
                let found = match self.fields.get(hint) {
                    Some(f) if s.quoted(f.name.as_bytes()) => Some(hint),
                    _ => {
                        let (key, plain_ascii) = s.plain_string()?;
                        ascii &= plain_ascii;
                        self.find_bytes(key, hint)
                    }
                };
                s.ws();
                s.eat(b':')?;
                s.ws();
                match found {
                    None => ascii &= s.skip_scalar()?,
                    Some(i) => {
                        hint = i + 1;
                        let bit = 1u128 << (i % MAX_COLUMNS);
                        if seen & bit != 0 {
                            return None;
                        }
                        seen |= bit;
                        ascii &= plain_value(&mut s, &self.fields[i], &mut row[i])?;
                    }
                }
                s.ws();
                match s.peek()? {
                    b',' => s.at += 1,
                    b'}' => {
                        s.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        s.ws();
        if s.at != bytes.len() || seen & self.required != self.required {
            return None;
        }
        // Stored fields the record left out are NULL (not the previous record's).
        if seen & self.kept != self.kept {
            for (i, slot) in row.iter_mut().enumerate().take(self.fields.len()) {
                if self.kept & !seen & (1u128 << (i % MAX_COLUMNS)) != 0 {
                    *slot = Value::Null;
                }
            }
        }
        Some(ascii)
    }

    /// The declared field whose name is `key`, trying `hint` first.
    #[inline]
    fn find_bytes(&self, key: &[u8], hint: usize) -> Option<usize> {
        if let Some(f) = self.fields.get(hint)
            && f.name.as_bytes() == key
        {
            return Some(hint);
        }
        self.fields.iter().position(|f| f.name.as_bytes() == key)
    }
}

/// Reads the value of a declared field, the first byte next, into `slot` when the field is stored (a null the
/// field allows leaves the slot NULL), saying whether it is all ASCII; `None` when it is not plain or breaks a
/// rule.
#[inline]
fn plain_value(s: &mut Bytes<'_>, field: &Field, slot: &mut Value) -> Option<bool> {
    let c = s.peek()?;
    if c == b'n' {
        s.word(b"null")?;
        if field.keep {
            *slot = Value::Null;
        }
        return field.nullable.then_some(true);
    }
    let mut all_ascii = true;
    match (field.ty, c) {
        (DataType::Text, b'"') => {
            let (text, ascii) = s.plain_string()?;
            all_ascii = ascii;
            // A string that is not UTF-8 leaves the record to the careful path (`bad_utf8`).
            let text = std::str::from_utf8(text).ok()?;
            if ascii {
                let len = text.len();
                if (field.text_key && !(1..=super::MAX_KEY_BYTES).contains(&len))
                    || field.max_bytes.is_some_and(|m| len > m)
                {
                    return None;
                }
            } else {
                check_text(&field.name, text, field.max_bytes, field.text_key).ok()?;
            }
            if field.keep {
                *slot = Value::Text(CompactString::from(text));
            }
        }
        (DataType::Double, b'-' | b'0'..=b'9') => {
            let f = s.number()?.double()?;
            if field.keep {
                *slot = Value::Float(f);
            }
        }
        (DataType::BigInt | DataType::Timestamp, b'-' | b'0'..=b'9') => {
            let i = s.number()?.bigint()?;
            if field.keep {
                *slot = if field.ty == DataType::Timestamp {
                    Value::Timestamp(i)
                } else {
                    Value::Int(i)
                };
            }
        }
        (DataType::Timestamp, b'"') => {
            let (text, ascii) = s.plain_string()?;
            all_ascii = ascii;
            let ms = parse_timestamp(std::str::from_utf8(text).ok()?)?;
            if field.keep {
                *slot = Value::Timestamp(ms);
            }
        }
        (DataType::Boolean, b't' | b'f') => {
            let b = c == b't';
            s.word(if b { b"true" } else { b"false" })?;
            if field.keep {
                *slot = Value::Bool(b);
            }
        }
        _ => return None,
    }
    Some(all_ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<Number<'_>> {
        Bytes {
            b: text.as_bytes(),
            at: 0,
        }
        .number()
    }

    #[test]
    fn doubles_read_as_the_standard_parser_reads_them() {
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "-0.0",
            "0.1",
            "21.31",
            "9007199254740993",
            "9007199254740992.5",
            "1e22",
            "1.5e-7",
            "123456789012345678901234567890",
            "0.000000000000000000000000001",
            "4.9e-324",
            "1.7976931348623157e308",
            "18446744073709551615",
            "18446744073709551616",
            "0.30000000000000004",
            "99999999999999999999.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..50_000 {
            let digits = 1 + next(12) as u32;
            let int = next(10u64.pow(digits));
            let frac_len = next(18) as usize;
            let frac: String = (0..frac_len).map(|_| char::from(b'0' + next(10) as u8)).collect();
            let sign = if next(2) == 0 { "-" } else { "" };
            texts.push(if frac.is_empty() {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            });
        }
        for text in &texts {
            let want: f64 = text.parse().unwrap();
            let got = read(text).unwrap().double();
            assert_eq!(got.map(f64::to_bits), Some(want.to_bits()), "{text}");
        }
    }

    #[test]
    fn eight_bytes_stop_exactly_at_a_quote_a_backslash_or_a_control_byte() {
        for byte in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'a', 0xc3, 0x7f, 0xff] {
                    let mut chunk = [fill; 8];
                    chunk[at] = byte;
                    let want = chunk.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
                    assert_eq!(stops(u64::from_le_bytes(chunk)), want, "{chunk:?}");
                }
            }
        }
    }

    #[test]
    fn bigints_are_integers_of_64_bits() {
        assert_eq!(read("9223372036854775807").unwrap().bigint(), Some(i64::MAX));
        assert_eq!(read("-9223372036854775808").unwrap().bigint(), Some(i64::MIN));
        assert_eq!(read("9223372036854775808").unwrap().bigint(), None);
        assert_eq!(read("-9223372036854775809").unwrap().bigint(), None);
        assert_eq!(read("99999999999999999999999").unwrap().bigint(), None);
        assert_eq!(read("-0").unwrap().bigint(), Some(0));
        assert_eq!(read("1.0").unwrap().bigint(), None);
        assert_eq!(read("1e3").unwrap().bigint(), None);
        assert!(read("01").is_none() && read("-").is_none() && read("1.").is_none() && read("1e").is_none());
    }
}
