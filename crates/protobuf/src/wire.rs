//! Protobuf wire primitives: varints, keys, length-delimited fields, skipping unknown
//! fields; and a writer that lays messages out the way Go's generated code does.

/// Wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const START_GROUP: u8 = 3;
pub(crate) const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

/// Why bytes could not be read (the caller adds where).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    Truncated,
    /// A varint longer than 10 bytes.
    Overlong,
    /// A wire type that does not exist (6, 7) or field number 0.
    BadKey(u64),
    /// A length past the end of the message.
    BadLength(u64),
    /// Groups nested too deep or not closed.
    BadGroup,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Truncated => write!(f, "unexpected end of data"),
            WireError::Overlong => write!(f, "varint longer than 10 bytes"),
            WireError::BadKey(k) => write!(f, "invalid field key {k:#x}"),
            WireError::BadLength(n) => write!(f, "length {n} runs past the end of the message"),
            WireError::BadGroup => write!(f, "unbalanced or too deeply nested group"),
        }
    }
}

/// A cursor over one message's bytes.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = *self.data.get(self.pos).ok_or(WireError::Truncated)?;
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::Overlong)
    }

    /// A field key: (field number, wire type).
    pub(crate) fn key(&mut self) -> Result<(u32, u8), WireError> {
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) || wire == 6 || wire == 7 {
            return Err(WireError::BadKey(key));
        }
        Ok((number as u32, wire))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + 8)
            .ok_or(WireError::Truncated)?;
        self.pos += 8;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(buf))
    }

    pub(crate) fn fixed32(&mut self) -> Result<u32, WireError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or(WireError::Truncated)?;
        self.pos += 4;
        let mut buf = [0u8; 4];
        buf.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(buf))
    }

    /// The payload of a length-delimited field.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let remaining = self.data.len() - self.pos;
        if len > remaining as u64 {
            return Err(WireError::BadLength(len));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.data[start..self.pos])
    }

    /// Skips the value of a field of the given wire type (for unknown fields).
    pub(crate) fn skip(&mut self, number: u32, wire: u8) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.fixed64().map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            FIXED32 => self.fixed32().map(|_| ()),
            START_GROUP => self.skip_group(number, 0),
            _ => Err(WireError::BadGroup),
        }
    }

    fn skip_group(&mut self, number: u32, depth: usize) -> Result<(), WireError> {
        if depth > 64 {
            return Err(WireError::BadGroup);
        }
        loop {
            let (n, w) = self.key()?;
            match w {
                END_GROUP if n == number => return Ok(()),
                END_GROUP => return Err(WireError::BadGroup),
                START_GROUP => self.skip_group(n, depth + 1)?,
                _ => self.skip(n, w)?,
            }
        }
    }
}

/// Decodes ZigZag-free protobuf integers as Go does: `int32` takes the low 32 bits.
pub(crate) fn as_i32(v: u64) -> i32 {
    v as i64 as i32
}

/// A growing output buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn key(&mut self, number: u32, wire: u8) {
        self.varint((u64::from(number) << 3) | u64::from(wire));
    }

    pub(crate) fn bytes_field(&mut self, number: u32, data: &[u8]) {
        self.key(number, LEN);
        self.varint(data.len() as u64);
        self.buf.extend_from_slice(data);
    }

    pub(crate) fn varint_field(&mut self, number: u32, v: u64) {
        self.key(number, VARINT);
        self.varint(v);
    }

    pub(crate) fn fixed64_field(&mut self, number: u32, v: u64) {
        self.key(number, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Starts a length-delimited field whose payload is written next; returns the mark
    /// to pass to [`Writer::end`].
    pub(crate) fn begin(&mut self, number: u32) -> usize {
        self.key(number, LEN);
        self.buf.push(0);
        self.buf.len()
    }

    /// Ends a field begun with [`Writer::begin`]: writes the payload's length in front of
    /// it (moving the payload when the length needs more than one byte).
    pub(crate) fn end(&mut self, mark: usize) {
        let len = self.buf.len() - mark;
        if len < 0x80 {
            self.buf[mark - 1] = len as u8;
            return;
        }
        let mut prefix = Vec::with_capacity(10);
        let mut v = len as u64;
        while v >= 0x80 {
            prefix.push((v as u8) | 0x80);
            v >>= 7;
        }
        prefix.push(v as u8);
        self.buf.splice(mark - 1..mark, prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX, (-1i64) as u64] {
            let mut w = Writer::default();
            w.varint(v);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
        // Negative int32 is written as a 10-byte varint, as Go does.
        let mut w = Writer::default();
        w.varint(-1i32 as i64 as u64);
        assert_eq!(w.buf.len(), 10);
        assert_eq!(as_i32(Reader::new(&w.buf).varint().unwrap()), -1);
    }

    #[test]
    fn long_nested_lengths_are_moved_into_place() {
        let mut w = Writer::default();
        let m = w.begin(3);
        w.buf.extend(std::iter::repeat_n(7u8, 300));
        w.end(m);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.key().unwrap(), (3, LEN));
        assert_eq!(r.bytes().unwrap().len(), 300);
        assert!(r.is_empty());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Reader::new(&[0x80]).varint(), Err(WireError::Truncated));
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::Overlong));
        assert!(matches!(
            Reader::new(&[0x00]).key(),
            Err(WireError::BadKey(_))
        ));
        assert!(matches!(
            Reader::new(&[0x0f]).key(),
            Err(WireError::BadKey(_))
        ));
        assert_eq!(Reader::new(&[0x05]).bytes(), Err(WireError::BadLength(5)));
        // A group that never ends.
        let mut r = Reader::new(&[0x08, 0x01]);
        assert!(r.skip(1, START_GROUP).is_err());
        // A balanced group is skipped.
        let mut r = Reader::new(&[0x10, 0x05, 0x0c]);
        r.skip(1, START_GROUP).unwrap();
        assert!(r.is_empty());
    }
}
