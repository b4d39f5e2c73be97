//! ITU-T T.87 (JPEG-LS, ISO/IEC 14495-1) decoding of one grey frame, lossless and near-lossless, 2 to 16 bits per
//! sample: the two DICOM transfer syntaxes 1.2.840.10008.1.2.4.80 and .81. dicom-rs reads JPEG-LS only through the
//! CharLS C++ library, which the workbench does not link, so archives that store chest films this way were refused.
//!
//! The decoder follows the standard's Annex A: the median edge predictor, 365 regular contexts with bias
//! correction, the run mode with its two run-interruption contexts, limited-length Golomb codes and the bit
//! stuffing after 0xFF. Colour (more than one component), mapping tables, restart intervals and point transforms
//! are refused by name; none of them occurs in grey radiographs.

use super::codestream::{CodestreamError, DecodedFrame, MAX_SAMPLES, MarkerCursor, be_u16};

const FORMAT: &str = "JPEG-LS";

fn malformed(reason: impl Into<String>) -> CodestreamError {
    CodestreamError::Malformed { format: FORMAT, reason: reason.into() }
}

fn unsupported(what: impl Into<String>) -> CodestreamError {
    CodestreamError::Unsupported { format: FORMAT, what: what.into() }
}

/// Run lengths are coded in segments of 2^J[RUNindex] samples (T.87 A.7.1.2).
const RUN_ORDER: [u32; 32] =
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// Number of regular-mode contexts: the 9x9x9 quantised gradient triples, folded by sign, without (0, 0, 0).
const REGULAR_CONTEXTS: usize = 365;

/// Decodes the first frame of a JPEG-LS stream (SOI ... EOI).
pub(crate) fn decode_jpeg_ls(stream: &[u8]) -> Result<DecodedFrame, CodestreamError> {
    let mut cursor = MarkerCursor::after_start_of_image(stream, FORMAT)?;
    let mut frame: Option<FrameHeader> = None;
    let mut presets = PresetParameters::default();
    loop {
        let marker = cursor.marker()?;
        match marker {
            SOF55 => {
                let segment = cursor.segment()?;
                frame = Some(FrameHeader::parse(segment)?);
            }
            LSE => {
                let segment = cursor.segment()?;
                presets = PresetParameters::parse(segment)?;
            }
            DRI => {
                let segment = cursor.segment()?;
                let interval = be_u16(segment, 0).unwrap_or(0);
                if interval != 0 {
                    return Err(unsupported(format!("restart interval of {interval} lines")));
                }
            }
            SOS => {
                let Some(frame) = frame.as_ref() else {
                    return Err(malformed("a scan comes before the frame header (SOF55)"));
                };
                let segment = cursor.segment()?;
                let scan = ScanHeader::parse(segment)?;
                let parameters = CodingParameters::new(frame, &presets, scan.near)?;
                let samples = decode_scan(cursor.rest(), frame, &parameters)?;
                return Ok(DecodedFrame {
                    rows: frame.rows,
                    columns: frame.columns,
                    precision: frame.precision,
                    samples,
                });
            }
            EOI => return Err(malformed("the stream ends (EOI) before any scan")),
            0xE0..=0xEF | COM => {
                cursor.segment()?;
            }
            0xC0..=0xCF => {
                return Err(malformed(format!("marker FF{marker:02X} starts a T.81 JPEG frame, not a JPEG-LS one")));
            }
            other => return Err(malformed(format!("unexpected marker FF{other:02X}"))),
        }
    }
}

const EOI: u8 = 0xD9;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;
const SOS: u8 = 0xDA;
const DRI: u8 = 0xDD;
const COM: u8 = 0xFE;

/// SOF55: precision, size and components of the frame.
struct FrameHeader {
    precision: u8,
    rows: u32,
    columns: u32,
}

impl FrameHeader {
    fn parse(segment: &[u8]) -> Result<Self, CodestreamError> {
        let short = || malformed("the frame header (SOF55) is too short");
        let precision = *segment.first().ok_or_else(short)?;
        let rows = be_u16(segment, 1).ok_or_else(short)?;
        let columns = be_u16(segment, 3).ok_or_else(short)?;
        let components = *segment.get(5).ok_or_else(short)?;
        if !(2..=16).contains(&precision) {
            return Err(malformed(format!("sample precision {precision} is outside 2..=16 bits")));
        }
        if components != 1 {
            return Err(unsupported(format!("with {components} components (only grey images, 1 component, are read)")));
        }
        if rows == 0 || columns == 0 {
            // A zero row count defers the size to a DNL marker or an LSE oversize record; neither is used by DICOM.
            return Err(unsupported(format!("frame size {columns}x{rows} (the size given later in the stream)")));
        }
        if u64::from(rows) * u64::from(columns) > MAX_SAMPLES {
            return Err(malformed(format!("frame of {columns}x{rows} samples is too large")));
        }
        Ok(Self { precision, rows: u32::from(rows), columns: u32::from(columns) })
    }
}

/// SOS: the scan's near-lossless bound; the rest must be one grey component without mapping or point transform.
struct ScanHeader {
    near: u32,
}

impl ScanHeader {
    fn parse(segment: &[u8]) -> Result<Self, CodestreamError> {
        let short = || malformed("the scan header (SOS) is too short");
        let components = usize::from(*segment.first().ok_or_else(short)?);
        if components != 1 {
            return Err(unsupported(format!("scan of {components} components")));
        }
        let mapping_table = *segment.get(2).ok_or_else(short)?;
        let near = *segment.get(3).ok_or_else(short)?;
        let point_transform = *segment.get(5).ok_or_else(short)? & 0x0F;
        if mapping_table != 0 {
            return Err(unsupported(format!("mapping table {mapping_table}")));
        }
        if point_transform != 0 {
            return Err(unsupported(format!("point transform of {point_transform} bits")));
        }
        Ok(Self { near: u32::from(near) })
    }
}

/// LSE type 1: coding parameters that replace the defaults (0 keeps a default).
#[derive(Default)]
struct PresetParameters {
    max_value: u32,
    threshold1: u32,
    threshold2: u32,
    threshold3: u32,
    reset: u32,
}

impl PresetParameters {
    fn parse(segment: &[u8]) -> Result<Self, CodestreamError> {
        let short = || malformed("the preset parameters (LSE) are too short");
        let id = *segment.first().ok_or_else(short)?;
        if id != 1 {
            return Err(unsupported(format!("preset parameter record of type {id} (mapping table)")));
        }
        let field = |index: usize| be_u16(segment, 1 + 2 * index).map(u32::from).ok_or_else(short);
        Ok(Self {
            max_value: field(0)?,
            threshold1: field(1)?,
            threshold2: field(2)?,
            threshold3: field(3)?,
            reset: field(4)?,
        })
    }
}

/// The constants of a scan (T.87 A.2 and C.2.4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodingParameters {
    max_value: i32,
    near: i32,
    threshold1: i32,
    threshold2: i32,
    threshold3: i32,
    reset: i32,
    /// Number of quantised error values.
    range: i32,
    /// Bits of an escaped error value.
    quantised_bits: u32,
    /// Longest Golomb code, in bits.
    limit: u32,
}

fn ceil_log2(value: u32) -> u32 {
    if value <= 1 { 0 } else { 32 - (value - 1).leading_zeros() }
}

impl CodingParameters {
    fn new(frame: &FrameHeader, presets: &PresetParameters, near: u32) -> Result<Self, CodestreamError> {
        let full_scale = (1u32 << frame.precision) - 1;
        let max_value = if presets.max_value == 0 { full_scale } else { presets.max_value };
        if max_value > full_scale || max_value < 1 {
            return Err(malformed(format!("MAXVAL {max_value} does not fit {}-bit samples", frame.precision)));
        }
        if near > (max_value / 2).min(255) {
            return Err(malformed(format!("NEAR {near} is too large for MAXVAL {max_value}")));
        }
        let (default1, default2, default3) = default_thresholds(max_value, near);
        let pick = |given: u32, default: u32| if given == 0 { default } else { given };
        let threshold1 = pick(presets.threshold1, default1);
        let threshold2 = pick(presets.threshold2, default2);
        let threshold3 = pick(presets.threshold3, default3);
        // Thresholds out of the standard's order (e.g. T1 = T2 = T3 = 1 with NEAR 1) are not refused: encoders
        // such as dcmtk's write them, the quantiser is defined for any values, and CharLS decodes them.
        let reset = pick(presets.reset, 64);
        if reset < 3 || reset > max_value.max(255) {
            return Err(malformed(format!("RESET {reset} is out of range")));
        }
        let range = (max_value + 2 * near) / (2 * near + 1) + 1;
        let quantised_bits = ceil_log2(range);
        let bits_per_sample = ceil_log2(max_value + 1).max(2);
        let limit = 2 * (bits_per_sample + bits_per_sample.max(8));
        let as_i32 = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
        Ok(Self {
            max_value: as_i32(max_value),
            near: as_i32(near),
            threshold1: as_i32(threshold1),
            threshold2: as_i32(threshold2),
            threshold3: as_i32(threshold3),
            reset: as_i32(reset),
            range: as_i32(range),
            quantised_bits,
            limit,
        })
    }

    /// Quantises a local gradient to -4..=4 (T.87 A.3.3).
    fn quantise_gradient(&self, gradient: i32) -> i32 {
        if gradient <= -self.threshold3 {
            -4
        } else if gradient <= -self.threshold2 {
            -3
        } else if gradient <= -self.threshold1 {
            -2
        } else if gradient < -self.near {
            -1
        } else if gradient <= self.near {
            0
        } else if gradient < self.threshold1 {
            1
        } else if gradient < self.threshold2 {
            2
        } else if gradient < self.threshold3 {
            3
        } else {
            4
        }
    }

    /// The sample from a prediction and a quantised error: modulo reduction undone, then clamped (T.87 A.4.5).
    fn reconstruct(&self, predicted: i32, error: i32) -> i32 {
        let step = 2 * self.near + 1;
        let mut value = predicted + error * step;
        if value < -self.near {
            value += self.range * step;
        } else if value > self.max_value + self.near {
            value -= self.range * step;
        }
        value.clamp(0, self.max_value)
    }

    fn clamp_prediction(&self, value: i32) -> i32 {
        value.clamp(0, self.max_value)
    }
}

/// Default T1, T2, T3 for a MAXVAL and NEAR (T.87 C.2.4.1.1.1).
fn default_thresholds(max_value: u32, near: u32) -> (u32, u32, u32) {
    const BASIC: (u32, u32, u32) = (3, 7, 21);
    let clamp = |value: u32, low: u32| if value > max_value || value < low { low } else { value };
    if max_value >= 128 {
        let factor = (max_value.min(4095) + 128) / 256;
        let t1 = clamp(factor * (BASIC.0 - 2) + 2 + 3 * near, near + 1);
        let t2 = clamp(factor * (BASIC.1 - 3) + 3 + 5 * near, t1);
        let t3 = clamp(factor * (BASIC.2 - 4) + 4 + 7 * near, t2);
        (t1, t2, t3)
    } else {
        // The floor of 2, 3, 4 applies after NEAR is added (T.87 C.2.4.1.1.1; CharLS 2 and libjpeg agree).
        let factor = 256 / (max_value + 1);
        let t1 = clamp((BASIC.0 / factor + 3 * near).max(2), near + 1);
        let t2 = clamp((BASIC.1 / factor + 5 * near).max(3), t1);
        let t3 = clamp((BASIC.2 / factor + 7 * near).max(4), t2);
        (t1, t2, t3)
    }
}

/// Error statistics of one regular-mode context (T.87 A.2.1).
#[derive(Clone, Copy)]
struct RegularContext {
    sum_abs_errors: i32,
    bias_sum: i32,
    correction: i32,
    count: i32,
}

impl RegularContext {
    fn golomb_parameter(&self) -> Result<u32, CodestreamError> {
        let mut k = 0;
        while (i64::from(self.count) << k) < i64::from(self.sum_abs_errors) {
            k += 1;
            if k > 24 {
                return Err(malformed("a context's error statistics overflowed"));
            }
        }
        Ok(k)
    }

    /// T.87 A.6.1 and A.6.2.
    fn update(&mut self, error: i32, parameters: &CodingParameters) {
        self.bias_sum += error * (2 * parameters.near + 1);
        self.sum_abs_errors += error.abs();
        if self.count == parameters.reset {
            self.sum_abs_errors >>= 1;
            self.bias_sum >>= 1;
            self.count >>= 1;
        }
        self.count += 1;
        if self.bias_sum + self.count <= 0 {
            self.bias_sum += self.count;
            if self.bias_sum <= -self.count {
                self.bias_sum = -self.count + 1;
            }
            if self.correction > -128 {
                self.correction -= 1;
            }
        } else if self.bias_sum > 0 {
            self.bias_sum -= self.count;
            if self.bias_sum > 0 {
                self.bias_sum = 0;
            }
            if self.correction < 127 {
                self.correction += 1;
            }
        }
    }
}

/// Statistics of one of the two run-interruption contexts (T.87 A.7.2).
#[derive(Clone, Copy)]
struct InterruptionContext {
    /// 1 when the interrupting sample's neighbours Ra and Rb are (nearly) equal.
    interruption_type: i32,
    sum_abs_errors: i32,
    negative_count: i32,
    count: i32,
}

impl InterruptionContext {
    fn golomb_parameter(&self) -> Result<u32, CodestreamError> {
        let target = i64::from(self.sum_abs_errors) + i64::from(self.count >> 1) * i64::from(self.interruption_type);
        let mut k = 0;
        while (i64::from(self.count) << k) < target {
            k += 1;
            if k > 24 {
                return Err(malformed("a context's error statistics overflowed"));
            }
        }
        Ok(k)
    }

    /// The signed error from its mapped value (T.87 A.7.2.1, inverted).
    fn error_from_mapped(&self, mapped: i32, k: u32) -> i32 {
        let with_type = mapped + self.interruption_type;
        let map = with_type & 1;
        let magnitude = (with_type + map) / 2;
        let negative_when_mapped = k != 0 || 2 * self.negative_count >= self.count;
        if negative_when_mapped == (map == 1) { -magnitude } else { magnitude }
    }

    fn update(&mut self, error: i32, mapped: i32, reset: i32) {
        if error < 0 {
            self.negative_count += 1;
        }
        self.sum_abs_errors += (mapped + 1 - self.interruption_type) >> 1;
        if self.count == reset {
            self.sum_abs_errors >>= 1;
            self.count >>= 1;
            self.negative_count >>= 1;
        }
        self.count += 1;
    }
}

/// Reads the entropy-coded segment: bits most significant first, with the 0 bit stuffed after every 0xFF byte
/// (T.87 A.1), stopping at the next marker.
struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
    /// Buffered bits, left-aligned.
    buffer: u64,
    buffered: u32,
    previous_was_ff: bool,
    /// The next marker (or the end of the data) is reached: no more bits.
    exhausted: bool,
}

/// The reader ran out of bits.
struct OutOfBits;

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0, buffer: 0, buffered: 0, previous_was_ff: false, exhausted: false }
    }

    fn refill(&mut self) {
        while self.buffered <= 56 && !self.exhausted {
            let Some(&byte) = self.data.get(self.position) else {
                self.exhausted = true;
                break;
            };
            if self.previous_was_ff {
                if byte & 0x80 != 0 {
                    // 0xFF followed by a byte >= 0x80 is a marker; the 0xFF before it was fill.
                    self.exhausted = true;
                    break;
                }
                self.buffer |= u64::from(byte) << (57 - self.buffered);
                self.buffered += 7;
                self.previous_was_ff = false;
            } else if byte == 0xFF && self.data.get(self.position + 1).is_some_and(|next| next & 0x80 != 0) {
                self.exhausted = true;
                break;
            } else {
                self.buffer |= u64::from(byte) << (56 - self.buffered);
                self.buffered += 8;
                self.previous_was_ff = byte == 0xFF;
            }
            self.position += 1;
        }
    }

    fn bit(&mut self) -> Result<bool, OutOfBits> {
        Ok(self.bits(1)? == 1)
    }

    /// The next `count` bits (at most 32) as a number.
    fn bits(&mut self, count: u32) -> Result<u32, OutOfBits> {
        if count == 0 {
            return Ok(0);
        }
        if self.buffered < count {
            self.refill();
            if self.buffered < count {
                return Err(OutOfBits);
            }
        }
        let value = (self.buffer >> (64 - count)) as u32;
        self.buffer <<= count;
        self.buffered -= count;
        Ok(value)
    }

    /// Counts 0 bits up to the next 1 bit, which is consumed; more than `most` zeros is an error of the caller's.
    fn zeros_before_one(&mut self, most: u32) -> Result<Option<u32>, OutOfBits> {
        let mut zeros = 0;
        loop {
            if self.buffered == 0 {
                self.refill();
                if self.buffered == 0 {
                    return Err(OutOfBits);
                }
            }
            let leading = self.buffer.leading_zeros().min(self.buffered);
            zeros += leading;
            if zeros > most {
                return Ok(None);
            }
            self.buffer <<= leading;
            self.buffered -= leading;
            if self.buffered > 0 {
                // The top bit is the 1.
                self.buffer <<= 1;
                self.buffered -= 1;
                return Ok(Some(zeros));
            }
        }
    }
}

/// Something went wrong while decoding row `row`.
enum ScanFailure {
    OutOfBits,
    Invalid(String),
}

impl From<OutOfBits> for ScanFailure {
    fn from(_: OutOfBits) -> Self {
        ScanFailure::OutOfBits
    }
}

impl From<CodestreamError> for ScanFailure {
    fn from(error: CodestreamError) -> Self {
        match error {
            CodestreamError::Malformed { reason, .. } => ScanFailure::Invalid(reason),
            CodestreamError::Unsupported { what, .. } => ScanFailure::Invalid(what),
            CodestreamError::Truncated { .. } => ScanFailure::OutOfBits,
        }
    }
}

/// The decoding state of one grey scan.
struct ScanDecoder<'p> {
    parameters: &'p CodingParameters,
    regular: Vec<RegularContext>,
    interruption: [InterruptionContext; 2],
    run_index: usize,
}

impl<'p> ScanDecoder<'p> {
    fn new(parameters: &'p CodingParameters) -> Self {
        let initial_sum = ((parameters.range + 32) / 64).max(2);
        let regular = vec![
            RegularContext { sum_abs_errors: initial_sum, bias_sum: 0, correction: 0, count: 1 };
            REGULAR_CONTEXTS
        ];
        let interruption = [0, 1].map(|interruption_type| InterruptionContext {
            interruption_type,
            sum_abs_errors: initial_sum,
            negative_count: 0,
            count: 1,
        });
        Self { parameters, regular, interruption, run_index: 0 }
    }

    /// A limited-length Golomb code (T.87 A.5.3): `limit` bounds the code length.
    fn golomb_value(&self, bits: &mut BitReader, k: u32, limit: u32) -> Result<i32, ScanFailure> {
        let escape_zeros = limit.saturating_sub(self.parameters.quantised_bits + 1);
        let zeros = bits
            .zeros_before_one(escape_zeros)?
            .ok_or_else(|| ScanFailure::Invalid("a Golomb code is longer than LIMIT".into()))?;
        if zeros == escape_zeros {
            return Ok(bits.bits(self.parameters.quantised_bits)? as i32 + 1);
        }
        let value = (i64::from(zeros) << k) + i64::from(bits.bits(k)?);
        // A mapped error never exceeds RANGE; bounding it keeps the context sums far from overflow on bad data.
        if value > 2 * i64::from(self.parameters.range) {
            return Err(ScanFailure::Invalid("a coded error value is out of range".into()));
        }
        Ok(value as i32)
    }

    /// One sample in regular mode (T.87 A.3 to A.6).
    /// `gradients` are the quantised (Rd - Rb, Rb - Rc, Rc - Ra), not all 0.
    fn regular_sample(
        &mut self,
        bits: &mut BitReader,
        (ra, rb, rc): (i32, i32, i32),
        gradients: (i32, i32, i32),
    ) -> Result<i32, ScanFailure> {
        let p = self.parameters;
        let (mut q1, mut q2, mut q3) = gradients;
        // Contexts of opposite sign share statistics; the error's sign is flipped instead.
        let negative = q1 < 0 || (q1 == 0 && (q2 < 0 || (q2 == 0 && q3 < 0)));
        if negative {
            (q1, q2, q3) = (-q1, -q2, -q3);
        }
        // q1 in 0..=4 and the triple is not (0, 0, 0) here: index 1..=364.
        let index = usize::try_from(q1 * 81 + q2 * 9 + q3).unwrap_or(0);
        let context = self.regular[index];
        let edge_prediction = if rc >= ra.max(rb) {
            ra.min(rb)
        } else if rc <= ra.min(rb) {
            ra.max(rb)
        } else {
            ra + rb - rc
        };
        let predicted = p.clamp_prediction(if negative {
            edge_prediction - context.correction
        } else {
            edge_prediction + context.correction
        });
        let k = context.golomb_parameter()?;
        let mapped = self.golomb_value(bits, k, p.limit)?;
        let mut error = if mapped % 2 == 0 { mapped / 2 } else { -(mapped + 1) / 2 };
        // With k = 0 and a negative bias the encoder swapped the mapping of positive and negative errors.
        if p.near == 0 && k == 0 && 2 * context.bias_sum + context.count - 1 < 0 {
            error = -error - 1;
        }
        self.regular[index].update(error, p);
        Ok(p.reconstruct(predicted, if negative { -error } else { error }))
    }

    /// The run that starts at `line[start]` (the sample left of it is `line[start - 1]`), then its interruption
    /// sample if the run ends before the line does. Returns how many samples were decoded.
    fn run(
        &mut self,
        bits: &mut BitReader,
        line: &mut [i32],
        above: &[i32],
        start: usize,
    ) -> Result<usize, ScanFailure> {
        let columns = line.len() - 2;
        let run_value = line[start];
        // Samples from the run's first one to the end of the line.
        let remaining = columns - start;
        let mut length = 0usize;
        let mut ended_by_line = false;
        while bits.bit()? {
            let segment = 1usize << RUN_ORDER[self.run_index];
            let count = segment.min(remaining - length);
            length += count;
            if count == segment {
                self.run_index = (self.run_index + 1).min(31);
            }
            if length == remaining {
                ended_by_line = true;
                break;
            }
        }
        if !ended_by_line {
            length += bits.bits(RUN_ORDER[self.run_index])? as usize;
            if length >= remaining {
                return Err(ScanFailure::Invalid("a run is longer than the rest of its line".into()));
            }
        }
        line[start + 1..start + 1 + length].fill(run_value);
        if ended_by_line {
            return Ok(length);
        }
        // The run-interruption sample (T.87 A.7.2).
        let at = start + 1 + length;
        let ra = run_value;
        let rb = above[at];
        let p = self.parameters;
        let same_neighbours = (ra - rb).abs() <= p.near;
        let context_index = usize::from(same_neighbours);
        let context = self.interruption[context_index];
        let k = context.golomb_parameter()?;
        let limit = p.limit.saturating_sub(RUN_ORDER[self.run_index] + 1);
        let mapped = self.golomb_value(bits, k, limit)?;
        let error = context.error_from_mapped(mapped, k);
        self.interruption[context_index].update(error, mapped, p.reset);
        line[at] = if same_neighbours {
            p.reconstruct(ra, error)
        } else {
            p.reconstruct(rb, if rb < ra { -error } else { error })
        };
        self.run_index = self.run_index.saturating_sub(1);
        Ok(length + 1)
    }
}

/// Decodes the scan's samples from the entropy-coded data that starts at `data[0]`.
fn decode_scan(data: &[u8], frame: &FrameHeader, parameters: &CodingParameters) -> Result<Vec<u16>, CodestreamError> {
    let columns = frame.columns as usize;
    let mut samples = Vec::with_capacity(columns * frame.rows as usize);
    // Lines hold one extra sample on each side: index 0 is the column left of the first, columns + 1 the one
    // right of the last (T.87 A.2.1: the previous line of the first line is all zeros).
    let mut above = vec![0i32; columns + 2];
    let mut line = vec![0i32; columns + 2];
    let mut bits = BitReader::new(data);
    let mut decoder = ScanDecoder::new(parameters);
    for row in 0..frame.rows {
        above[columns + 1] = above[columns];
        line[0] = above[1];
        let result = decode_line(&mut decoder, &mut bits, &mut line, &above);
        match result {
            Ok(()) => {}
            Err(ScanFailure::OutOfBits) => {
                return Err(CodestreamError::Truncated { format: FORMAT, decoded_rows: row, rows: frame.rows });
            }
            Err(ScanFailure::Invalid(reason)) => {
                return Err(malformed(format!("{reason} (row {row})")));
            }
        }
        samples.extend(line[1..=columns].iter().map(|&value| value as u16));
        std::mem::swap(&mut line, &mut above);
    }
    Ok(samples)
}

fn decode_line(
    decoder: &mut ScanDecoder,
    bits: &mut BitReader,
    line: &mut [i32],
    above: &[i32],
) -> Result<(), ScanFailure> {
    let columns = line.len() - 2;
    let parameters = decoder.parameters;
    let mut x = 1;
    while x <= columns {
        let (ra, rb, rc, rd) = (line[x - 1], above[x], above[x - 1], above[x + 1]);
        let gradients = (
            parameters.quantise_gradient(rd - rb),
            parameters.quantise_gradient(rb - rc),
            parameters.quantise_gradient(rc - ra),
        );
        // Run mode when every gradient quantises to 0 (T.87 A.3.1 says |D| <= NEAR, the same thing for thresholds
        // in the standard's order; CharLS-based encoders test the quantised values, which differs when T1 <= NEAR).
        if gradients == (0, 0, 0) {
            x += decoder.run(bits, line, above, x - 1)?;
        } else {
            line[x] = decoder.regular_sample(bits, (ra, rb, rc), gradients)?;
            x += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_thresholds_match_the_standards_table() {
        // T.87 C.2.4.1.1.1: 8-bit lossless gives 3, 7, 21; 12-bit 18, 67, 276; 16-bit lossless is clamped at 4095.
        assert_eq!(default_thresholds(255, 0), (3, 7, 21));
        assert_eq!(default_thresholds(4095, 0), (18, 67, 276));
        assert_eq!(default_thresholds(65535, 0), (18, 67, 276));
        // Near-lossless widens them: NEAR 2 at 8 bits gives 9, 17, 35.
        assert_eq!(default_thresholds(255, 2), (9, 17, 35));
        // Small MAXVAL: 6-bit samples keep the minimums 2, 3, 5.
        assert_eq!(default_thresholds(63, 0), (2, 3, 5));
        // With NEAR the floor applies to the sum: 6 bits, NEAR 1 gives max(2, 0 + 3) = 3, max(3, 1 + 5) = 6,
        // max(4, 5 + 7) = 12 (adding NEAR after the floor gave 5, 8, 12).
        assert_eq!(default_thresholds(63, 1), (3, 6, 12));
    }

    #[test]
    fn stuffed_bits_after_ff_are_skipped_and_a_marker_ends_the_data() {
        // 0xFF, then 0x7F carries 7 bits (1111111); then FF D9 is a marker.
        let data = [0xFF, 0x7F, 0xFF, 0xD9];
        let mut reader = BitReader::new(&data);
        assert!(matches!(reader.bits(8), Ok(0xFF)));
        assert!(matches!(reader.bits(7), Ok(0x7F)));
        assert!(reader.bits(1).is_err());
        assert_eq!(reader.position, 2);
    }

    #[test]
    fn refuses_what_it_does_not_read_by_name() {
        let colour = [
            0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x11, 0x08, 0x00, 0x02, 0x00, 0x02, 0x03, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0,
        ];
        let error = decode_jpeg_ls(&colour).unwrap_err();
        assert!(
            matches!(error, CodestreamError::Unsupported { ref what, .. } if what.contains("3 components")),
            "{error}"
        );
        let baseline = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x02, 0x00, 0x02, 0x01, 1, 0x11, 0];
        let error = decode_jpeg_ls(&baseline).unwrap_err();
        assert!(error.to_string().contains("T.81 JPEG frame"), "{error}");
        assert!(decode_jpeg_ls(&[]).is_err());
        assert!(decode_jpeg_ls(&[0xFF, 0xD8]).is_err());
    }
}
