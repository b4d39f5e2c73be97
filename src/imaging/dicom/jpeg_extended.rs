//! ITU-T T.81 extended sequential DCT decoding with Huffman coding (process 4) of one grey 12-bit frame: the JPEG
//! that transfer syntax 1.2.840.10008.1.2.4.51 carries for 10- and 12-bit radiographs. The pure-Rust JPEG decoder
//! dicom-rs uses reads only 8-bit DCT frames, so older archives' CR films were refused.
//!
//! One component means a non-interleaved scan of 8x8 blocks in raster order. Coefficients are dequantised and
//! transformed with an exact (f64) inverse DCT, so samples can differ by 1 from libjpeg's integer transform, as
//! JPEG decoders do among themselves. Colour, progressive and arithmetic-coded frames are refused by name.

use super::codestream::{CodestreamError, DecodedFrame, MAX_SAMPLES, MarkerCursor, be_u16};

const FORMAT: &str = "12-bit JPEG";

fn malformed(reason: impl Into<String>) -> CodestreamError {
    CodestreamError::Malformed { format: FORMAT, reason: reason.into() }
}

fn unsupported(what: impl Into<String>) -> CodestreamError {
    CodestreamError::Unsupported { format: FORMAT, what: what.into() }
}

/// Position in the 8x8 block of the k-th coefficient in zig-zag order (T.81 figure A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// Decodes the first frame of a sequential Huffman DCT JPEG stream (SOI ... EOI) of one component.
pub(crate) fn decode_jpeg_extended(stream: &[u8]) -> Result<DecodedFrame, CodestreamError> {
    let mut cursor = MarkerCursor::after_start_of_image(stream, FORMAT)?;
    let mut tables = Tables::default();
    let mut frame: Option<FrameHeader> = None;
    let mut restart_interval = 0usize;
    loop {
        let marker = cursor.marker()?;
        if marker == 0xD9 {
            return Err(malformed("the stream ends (EOI) before any scan"));
        }
        let payload = cursor.segment()?;
        match marker {
            0xC0 | 0xC1 => frame = Some(FrameHeader::parse(payload)?),
            0xC2 | 0xC6 | 0xCA | 0xCE => return Err(unsupported("progressive coding")),
            0xC3 | 0xC7 | 0xCB | 0xCF => return Err(unsupported("lossless coding in a DCT transfer syntax")),
            0xC5 => return Err(unsupported("hierarchical coding")),
            0xC9 | 0xCD => return Err(unsupported("arithmetic coding")),
            0xDB => tables.read_quantisation(payload)?,
            0xC4 => tables.read_huffman(payload)?,
            0xDD => {
                restart_interval = be_u16(payload, 0).map_or(0, usize::from);
            }
            0xDA => {
                let Some(frame) = frame.as_ref() else {
                    return Err(malformed("a scan comes before the frame header"));
                };
                let scan = ScanHeader::parse(payload, frame)?;
                let samples = decode_scan(cursor.rest(), frame, &scan, &tables, restart_interval)?;
                return Ok(DecodedFrame {
                    rows: frame.rows,
                    columns: frame.columns,
                    precision: frame.precision,
                    samples,
                });
            }
            0xE0..=0xEF | 0xFE | 0xDC => {}
            other => return Err(malformed(format!("unexpected marker FF{other:02X}"))),
        }
    }
}

struct FrameHeader {
    precision: u8,
    rows: u32,
    columns: u32,
    quantisation_table: usize,
}

impl FrameHeader {
    fn parse(segment: &[u8]) -> Result<Self, CodestreamError> {
        let short = || malformed("the frame header is too short");
        let precision = *segment.first().ok_or_else(short)?;
        let rows = be_u16(segment, 1).ok_or_else(short)?;
        let columns = be_u16(segment, 3).ok_or_else(short)?;
        let components = *segment.get(5).ok_or_else(short)?;
        let quantisation_table = usize::from(*segment.get(8).ok_or_else(short)?);
        if precision != 8 && precision != 12 {
            return Err(malformed(format!("sample precision {precision} is neither 8 nor 12 bits")));
        }
        if components != 1 {
            return Err(unsupported(format!("with {components} components (only grey images are read)")));
        }
        if rows == 0 || columns == 0 {
            return Err(unsupported(format!("frame size {columns}x{rows} (the size given later in the stream)")));
        }
        if u64::from(rows) * u64::from(columns) > MAX_SAMPLES {
            return Err(malformed(format!("frame of {columns}x{rows} samples is too large")));
        }
        if quantisation_table > 3 {
            return Err(malformed(format!("quantisation table {quantisation_table} does not exist")));
        }
        Ok(Self { precision, rows: u32::from(rows), columns: u32::from(columns), quantisation_table })
    }
}

struct ScanHeader {
    dc_table: usize,
    ac_table: usize,
}

impl ScanHeader {
    fn parse(segment: &[u8], frame: &FrameHeader) -> Result<Self, CodestreamError> {
        let short = || malformed("the scan header is too short");
        let components = *segment.first().ok_or_else(short)?;
        if components != 1 {
            return Err(malformed(format!("a scan of {components} components in a grey frame")));
        }
        let tables = *segment.get(2).ok_or_else(short)?;
        let (start, end, approximation) = (
            *segment.get(3).ok_or_else(short)?,
            *segment.get(4).ok_or_else(short)?,
            *segment.get(5).ok_or_else(short)?,
        );
        if (start, end, approximation) != (0, 63, 0) {
            return Err(malformed(format!(
                "spectral selection {start}..{end} or successive approximation {approximation:#04x} in a \
                 sequential {}-bit frame",
                frame.precision
            )));
        }
        let (dc_table, ac_table) = (usize::from(tables >> 4), usize::from(tables & 0x0F));
        if dc_table > 3 || ac_table > 3 {
            return Err(malformed("a Huffman table selector above 3"));
        }
        Ok(Self { dc_table, ac_table })
    }
}

/// A Huffman table in the canonical form of T.81 F.2.2.3: per code length the largest code, and where its values
/// start.
#[derive(Clone)]
struct HuffmanTable {
    max_code: [i32; 17],
    value_offset: [i32; 17],
    values: Vec<u8>,
}

impl HuffmanTable {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, CodestreamError> {
        let mut max_code = [-1i32; 17];
        let mut value_offset = [0i32; 17];
        let mut code = 0i32;
        let mut index = 0i32;
        for length in 1..=16 {
            let count = i32::from(counts[length - 1]);
            value_offset[length] = index - code;
            code += count;
            index += count;
            max_code[length] = if count > 0 { code - 1 } else { -1 };
            // Codes of each length must fit in that many bits.
            if code > 1 << length {
                return Err(malformed("a Huffman table has more codes than its code lengths allow"));
            }
            code <<= 1;
        }
        Ok(Self { max_code, value_offset, values })
    }

    fn decode(&self, bits: &mut BitReader) -> Result<u8, ScanFailure> {
        let mut code = 0i32;
        for length in 1..=16 {
            code = (code << 1) | i32::from(bits.bit()?);
            if code <= self.max_code[length] {
                let index = usize::try_from(code + self.value_offset[length]).unwrap_or(usize::MAX);
                return self.values.get(index).copied().ok_or(ScanFailure::Invalid("a Huffman code has no value"));
            }
        }
        Err(ScanFailure::Invalid("a Huffman code is not in its table"))
    }
}

#[derive(Default)]
struct Tables {
    /// Quantisation tables in natural (row-major) order.
    quantisation: [Option<[u16; 64]>; 4],
    dc: [Option<HuffmanTable>; 4],
    ac: [Option<HuffmanTable>; 4],
}

impl Tables {
    fn read_quantisation(&mut self, mut segment: &[u8]) -> Result<(), CodestreamError> {
        while let Some(&header) = segment.first() {
            let (sixteen_bit, id) = (header >> 4 == 1, usize::from(header & 0x0F));
            let size = if sixteen_bit { 128 } else { 64 };
            let entries = segment.get(1..1 + size).ok_or_else(|| malformed("a quantisation table is cut short"))?;
            if id > 3 {
                return Err(malformed(format!("quantisation table id {id}")));
            }
            let mut table = [0u16; 64];
            for (k, &natural) in ZIGZAG.iter().enumerate() {
                table[natural] = if sixteen_bit {
                    u16::from_be_bytes([entries[2 * k], entries[2 * k + 1]])
                } else {
                    u16::from(entries[k])
                };
            }
            self.quantisation[id] = Some(table);
            segment = &segment[1 + size..];
        }
        Ok(())
    }

    fn read_huffman(&mut self, mut segment: &[u8]) -> Result<(), CodestreamError> {
        while let Some(&header) = segment.first() {
            let (class, id) = (header >> 4, usize::from(header & 0x0F));
            let counts: [u8; 16] = segment
                .get(1..17)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| malformed("a Huffman table is cut short"))?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = segment.get(17..17 + total).ok_or_else(|| malformed("a Huffman table is cut short"))?;
            if id > 3 || class > 1 {
                return Err(malformed(format!("Huffman table class {class} id {id}")));
            }
            let table = HuffmanTable::new(&counts, values.to_vec())?;
            if class == 0 {
                self.dc[id] = Some(table);
            } else {
                self.ac[id] = Some(table);
            }
            segment = &segment[17 + total..];
        }
        Ok(())
    }
}

/// Reads entropy-coded bits, most significant first, turning FF 00 into FF and stopping at a marker.
struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
    byte: u8,
    bits_left: u8,
}

enum ScanFailure {
    /// A marker or the end of the data came where more bits were needed.
    OutOfBits,
    Invalid(&'static str),
}

impl<'a> BitReader<'a> {
    fn bit(&mut self) -> Result<u8, ScanFailure> {
        if self.bits_left == 0 {
            let byte = *self.data.get(self.position).ok_or(ScanFailure::OutOfBits)?;
            if byte == 0xFF {
                match self.data.get(self.position + 1) {
                    Some(0x00) => self.position += 2,
                    _ => return Err(ScanFailure::OutOfBits),
                }
            } else {
                self.position += 1;
            }
            self.byte = byte;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        Ok((self.byte >> self.bits_left) & 1)
    }

    fn bits(&mut self, count: u8) -> Result<u32, ScanFailure> {
        let mut value = 0u32;
        for _ in 0..count {
            value = (value << 1) | u32::from(self.bit()?);
        }
        Ok(value)
    }

    /// A restart marker must come next: drop the partial byte, skip fill bytes, read RSTn.
    fn restart(&mut self) -> Result<(), ScanFailure> {
        self.bits_left = 0;
        while self.data.get(self.position) == Some(&0xFF) && self.data.get(self.position + 1) == Some(&0xFF) {
            self.position += 1;
        }
        match self.data.get(self.position..self.position + 2) {
            Some([0xFF, 0xD0..=0xD7]) => {
                self.position += 2;
                Ok(())
            }
            Some(_) => Err(ScanFailure::Invalid("a restart marker is missing")),
            None => Err(ScanFailure::OutOfBits),
        }
    }
}

/// A `size`-bit magnitude category value as a signed number (T.81 F.2.2.1, EXTEND).
fn extend(value: u32, size: u8) -> i32 {
    let value = value as i32;
    if size == 0 {
        0
    } else if value < 1 << (size - 1) {
        value - (1 << size) + 1
    } else {
        value
    }
}

/// cos((2x + 1) u pi / 16) scaled by C(u) / 2, for the separable inverse DCT.
fn idct_basis() -> [[f64; 8]; 8] {
    let mut basis = [[0.0; 8]; 8];
    for (x, row) in basis.iter_mut().enumerate() {
        for (u, value) in row.iter_mut().enumerate() {
            let scale = if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
            *value = 0.5 * scale * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos();
        }
    }
    basis
}

fn decode_scan(
    data: &[u8],
    frame: &FrameHeader,
    scan: &ScanHeader,
    tables: &Tables,
    restart_interval: usize,
) -> Result<Vec<u16>, CodestreamError> {
    let quantisation = tables.quantisation[frame.quantisation_table]
        .ok_or_else(|| malformed(format!("quantisation table {} is not defined", frame.quantisation_table)))?;
    let dc = tables.dc[scan.dc_table]
        .as_ref()
        .ok_or_else(|| malformed(format!("DC Huffman table {} is not defined", scan.dc_table)))?;
    let ac = tables.ac[scan.ac_table]
        .as_ref()
        .ok_or_else(|| malformed(format!("AC Huffman table {} is not defined", scan.ac_table)))?;
    let (columns, rows) = (frame.columns as usize, frame.rows as usize);
    let (blocks_across, blocks_down) = (columns.div_ceil(8), rows.div_ceil(8));
    let max_value = (1i32 << frame.precision) - 1;
    let level_shift = f64::from(1u32 << (frame.precision - 1));
    let basis = idct_basis();
    let mut samples = vec![0u16; columns * rows];
    let mut bits = BitReader { data, position: 0, byte: 0, bits_left: 0 };
    let mut dc_prediction = 0i32;
    let mut coefficients = [0i32; 64];
    let mut block_index = 0usize;
    for block_row in 0..blocks_down {
        for block_column in 0..blocks_across {
            if restart_interval > 0 && block_index > 0 && block_index.is_multiple_of(restart_interval) {
                restart_or_fail(&mut bits, block_row, rows)?;
                dc_prediction = 0;
            }
            block_index += 1;
            let decoded = decode_block(&mut bits, dc, ac, &mut dc_prediction, &mut coefficients);
            match decoded {
                Ok(()) => {}
                Err(ScanFailure::OutOfBits) => {
                    return Err(CodestreamError::Truncated {
                        format: FORMAT,
                        decoded_rows: (block_row * 8) as u32,
                        rows: frame.rows,
                    });
                }
                Err(ScanFailure::Invalid(reason)) => {
                    return Err(malformed(format!("{reason} (block row {block_row}, column {block_column})")));
                }
            }
            let mut dequantised = [0.0f64; 64];
            for (value, (&coefficient, &step)) in dequantised.iter_mut().zip(coefficients.iter().zip(&quantisation)) {
                *value = f64::from(coefficient) * f64::from(step);
            }
            // Rows of the block first (over u), then columns (over v).
            let mut horizontal = [0.0f64; 64];
            for v in 0..8 {
                for x in 0..8 {
                    horizontal[v * 8 + x] = (0..8).map(|u| basis[x][u] * dequantised[v * 8 + u]).sum();
                }
            }
            for (y, row_basis) in basis.iter().enumerate() {
                let sample_row = block_row * 8 + y;
                if sample_row >= rows {
                    break;
                }
                for x in 0..8 {
                    let sample_column = block_column * 8 + x;
                    if sample_column >= columns {
                        break;
                    }
                    let value: f64 = (0..8).map(|v| row_basis[v] * horizontal[v * 8 + x]).sum();
                    let rounded = (value + level_shift).round() as i32;
                    samples[sample_row * columns + sample_column] = rounded.clamp(0, max_value) as u16;
                }
            }
        }
    }
    Ok(samples)
}

fn restart_or_fail(bits: &mut BitReader, block_row: usize, rows: usize) -> Result<(), CodestreamError> {
    match bits.restart() {
        Ok(()) => Ok(()),
        Err(ScanFailure::OutOfBits) => {
            Err(CodestreamError::Truncated { format: FORMAT, decoded_rows: (block_row * 8) as u32, rows: rows as u32 })
        }
        Err(ScanFailure::Invalid(reason)) => Err(malformed(format!("{reason} (block row {block_row})"))),
    }
}

/// One 8x8 block's quantised coefficients, in natural order (T.81 F.2.2).
fn decode_block(
    bits: &mut BitReader,
    dc: &HuffmanTable,
    ac: &HuffmanTable,
    dc_prediction: &mut i32,
    coefficients: &mut [i32; 64],
) -> Result<(), ScanFailure> {
    coefficients.fill(0);
    let size = dc.decode(bits)?;
    if size > 16 {
        return Err(ScanFailure::Invalid("a DC difference category above 16"));
    }
    let difference = extend(bits.bits(size)?, size);
    *dc_prediction = dc_prediction.saturating_add(difference);
    coefficients[0] = *dc_prediction;
    let mut k = 1;
    while k < 64 {
        let symbol = ac.decode(bits)?;
        let (zeros, size) = (usize::from(symbol >> 4), symbol & 0x0F);
        if size == 0 {
            if zeros != 15 {
                break; // End of block.
            }
            k += 16;
            continue;
        }
        k += zeros;
        if k > 63 {
            return Err(ScanFailure::Invalid("AC coefficients run past the end of a block"));
        }
        coefficients[ZIGZAG[k]] = extend(bits.bits(size)?, size);
        k += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16x8 grey 12-bit frame of two blocks with a restart marker between them. Each block codes the DC
    /// difference +10 (category 4: code 10, then 1010) and an end of block (code 0); quantisation step 8 makes
    /// the DC coefficient 80, a flat block of 2048 + 80 / 8 = 2058. Without the restart's reset of the DC
    /// prediction the second block would be 2068.
    fn two_blocks_with_a_restart() -> Vec<u8> {
        let mut stream = vec![0xFF, 0xD8];
        // DQT: 16-bit entries, table 0, all 8.
        stream.extend([0xFF, 0xDB, 0x00, 131, 0x10]);
        stream.extend(std::iter::repeat_n([0x00, 0x08], 64).flatten());
        // DHT DC 0: one code of length 1 (category 0), one of length 2 (category 4).
        stream.extend([0xFF, 0xC4, 0x00, 21, 0x00, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x04]);
        // DHT AC 0: one code of length 1, end of block.
        stream.extend([0xFF, 0xC4, 0x00, 20, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
        // SOF1: 12 bits, 8 rows, 16 columns, one component with table 0.
        stream.extend([0xFF, 0xC1, 0x00, 11, 12, 0x00, 0x08, 0x00, 0x10, 1, 1, 0x11, 0]);
        // DRI: a restart every block.
        stream.extend([0xFF, 0xDD, 0x00, 4, 0x00, 0x01]);
        // SOS: component 1, tables 0/0, full spectrum.
        stream.extend([0xFF, 0xDA, 0x00, 8, 1, 1, 0x00, 0, 63, 0]);
        // Bits 10 1010 0, padded with 1s: 1010 1001 = 0xA9; RST0; the same block; EOI.
        stream.extend([0xA9, 0xFF, 0xD0, 0xA9, 0xFF, 0xD9]);
        stream
    }

    #[test]
    fn restart_markers_reset_the_dc_prediction() {
        let frame = decode_jpeg_extended(&two_blocks_with_a_restart()).unwrap();
        assert_eq!((frame.rows, frame.columns, frame.precision), (8, 16, 12));
        assert!(frame.samples.iter().all(|&sample| sample == 2058), "{:?}", &frame.samples[..16]);
    }

    #[test]
    fn a_missing_restart_marker_or_a_cut_scan_is_an_error() {
        let mut stream = two_blocks_with_a_restart();
        let restart = stream.len() - 5;
        stream[restart + 1] = 0x00; // FF 00: stuffed data where RST0 should be.
        let error = decode_jpeg_extended(&stream).unwrap_err();
        assert!(error.to_string().contains("restart marker is missing"), "{error}");
        let cut = &two_blocks_with_a_restart()[..restart];
        let error = decode_jpeg_extended(cut).unwrap_err();
        assert!(matches!(error, CodestreamError::Truncated { .. }), "{error}");
    }

    #[test]
    fn the_inverse_dct_of_a_lone_dc_coefficient_is_flat() {
        let basis = idct_basis();
        // f(x, y) = C(0)^2 / 4 * F(0, 0) = F / 8.
        let value: f64 = basis[3][0] * basis[5][0] * 80.0;
        assert!((value - 10.0).abs() < 1e-12);
    }

    #[test]
    fn refuses_colour_and_progressive_by_name() {
        let colour = [0xFF, 0xD8, 0xFF, 0xC1, 0x00, 17, 12, 0, 8, 0, 8, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0];
        let error = decode_jpeg_extended(&colour).unwrap_err();
        assert!(error.to_string().contains("3 components"), "{error}");
        let progressive = [0xFF, 0xD8, 0xFF, 0xC2, 0x00, 11, 12, 0, 8, 0, 8, 1, 1, 0x11, 0];
        let error = decode_jpeg_extended(&progressive).unwrap_err();
        assert!(error.to_string().contains("progressive coding is not supported"), "{error}");
    }
}
