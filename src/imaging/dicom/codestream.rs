//! What the decoders of our own for encapsulated pixel data (JPEG-LS, 12-bit JPEG) share: the decoded frame, the
//! error, and the walk over the marker segments before a scan (T.81 B.1 and T.87 C.1 lay them out alike).

/// A decoded grey frame: `rows x columns` samples, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedFrame {
    pub rows: u32,
    pub columns: u32,
    /// Bits per sample the frame header declares.
    pub precision: u8,
    pub samples: Vec<u16>,
}

/// The most samples a frame may have, so that a corrupt header cannot ask for gigabytes.
pub(crate) const MAX_SAMPLES: u64 = 1 << 28;

/// Why a compressed frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodestreamError {
    /// The stream breaks its standard (bad marker, impossible parameter, coded values out of range).
    #[error("invalid {format} stream: {reason}")]
    Malformed { format: &'static str, reason: String },
    /// The stream ends before every sample is decoded.
    #[error("the {format} stream ends after {decoded_rows} of {rows} rows: it is truncated")]
    Truncated { format: &'static str, decoded_rows: u32, rows: u32 },
    /// A valid stream using a part of its standard this reader does not decode.
    #[error("{format} {what} is not supported")]
    Unsupported { format: &'static str, what: String },
}

/// A big-endian u16 at `at`, if the bytes are there.
pub(crate) fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Walks the marker segments of a stream up to its scan; `format` names the stream in errors.
pub(crate) struct MarkerCursor<'a> {
    data: &'a [u8],
    /// Where the next marker (or, after a scan header, the entropy-coded data) starts.
    pub position: usize,
    format: &'static str,
}

impl<'a> MarkerCursor<'a> {
    /// A cursor after the start-of-image marker, or an error if the stream does not start with one.
    pub fn after_start_of_image(data: &'a [u8], format: &'static str) -> Result<Self, CodestreamError> {
        if !data.starts_with(&[0xFF, 0xD8]) {
            return Err(CodestreamError::Malformed {
                format,
                reason: "it does not start with a start-of-image marker (FFD8)".into(),
            });
        }
        Ok(Self { data, position: 2, format })
    }

    fn malformed(&self, reason: impl Into<String>) -> CodestreamError {
        CodestreamError::Malformed { format: self.format, reason: reason.into() }
    }

    /// The next marker's code, skipping fill bytes (0xFF) before it.
    pub fn marker(&mut self) -> Result<u8, CodestreamError> {
        match self.data.get(self.position) {
            Some(0xFF) => {}
            None => return Err(self.malformed("the stream ends before its scan")),
            Some(byte) => {
                return Err(self.malformed(format!("expected a marker at byte {}, found 0x{byte:02X}", self.position)));
            }
        }
        while self.data.get(self.position) == Some(&0xFF) {
            self.position += 1;
        }
        let code = *self.data.get(self.position).ok_or_else(|| self.malformed("the stream ends inside a marker"))?;
        self.position += 1;
        Ok(code)
    }

    /// The payload of the marker segment that starts here (after its two length bytes); moves past it.
    pub fn segment(&mut self) -> Result<&'a [u8], CodestreamError> {
        let length = be_u16(self.data, self.position)
            .map(usize::from)
            .ok_or_else(|| self.malformed("the stream ends inside a marker segment"))?;
        if length < 2 {
            return Err(self.malformed(format!("marker segment length {length} is below 2")));
        }
        let payload = self
            .data
            .get(self.position + 2..self.position + length)
            .ok_or_else(|| self.malformed("the stream ends inside a marker segment"))?;
        self.position += length;
        Ok(payload)
    }

    /// The bytes from the current position on (the entropy-coded data after a scan header).
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.position.min(self.data.len())..]
    }
}
