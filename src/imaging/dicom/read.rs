//! Opening DICOM files (part 10, or raw data sets without preamble and file meta) and decoding the first
//! frame into a [`DicomImage`].

use super::codestream::CodestreamError;
use super::error::{DicomError, error_chain_text, path_text};
use super::jpeg_extended::decode_jpeg_extended;
use super::jpeg_header::{FrameKind, frame_header};
use super::jpeg_ls::decode_jpeg_ls;
use super::length_guard::{DataSetEncoding, check_part10_lengths, check_raw_lengths};
use super::lut::{LookupTable, parse_lut_item};
use super::pixels::{ModalityTransform, PixelLayout, PixelStats, SampleModel, StoredValues, stored_values};
use super::uid::new_uid;
use super::un_undefined_length::define_un_lengths;
use super::window::VoiLutFunction;
use super::{DicomImage, DicomSummary, Photometric, PixelSpacing, SpacingSource, StoredWindow, Window, WindowSource};
use dicom_core::Tag;
use dicom_core::value::Value;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{FileDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::entries::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use std::borrow::Cow;
use std::path::Path;

/// Largest image we decode (pixels per frame), so that a corrupt header cannot ask for gigabytes.
const MAX_PIXELS_PER_FRAME: u64 = 1 << 28;

/// An opened DICOM object with where it came from.
#[derive(Debug, Clone)]
pub struct DicomFile {
    /// The path or label used in error messages and summaries.
    pub label: String,
    /// The data set and its file meta table (synthesised when the file had none).
    pub object: FileDicomObject<InMemDicomObject>,
    /// False for files without preamble and file meta group (read as a raw data set).
    pub has_file_meta: bool,
}

/// Opens a DICOM file, with or without a file meta header.
pub fn open_dicom(path: &Path) -> Result<DicomFile, DicomError> {
    let bytes = std::fs::read(path).map_err(|source| DicomError::Io {
        path: path_text(path),
        action: "reading the file",
        source,
    })?;
    open_dicom_bytes(&path_text(path), &bytes)
}

/// Opens DICOM data held in memory; `label` names it in errors.
pub fn open_dicom_bytes(label: &str, bytes: &[u8]) -> Result<DicomFile, DicomError> {
    let malformed = |error: &dyn std::error::Error| DicomError::Malformed {
        path: label.to_owned(),
        reason: error_chain_text(error),
    };
    let refused = |reason: String| DicomError::Malformed { path: label.to_owned(), reason };
    let has_preamble = bytes.get(128..132) == Some(b"DICM".as_slice());
    let starts_with_magic = bytes.get(0..4) == Some(b"DICM".as_slice());
    if has_preamble || starts_with_magic {
        let (preamble, start) = if has_preamble { (ReadPreamble::Always, 132) } else { (ReadPreamble::Never, 4) };
        let (data_set_start, encoding) = check_part10_lengths(bytes, start).map_err(refused)?;
        let bytes = define_un_lengths(bytes, data_set_start, encoding).map_err(refused)?;
        if let Cow::Owned(rewritten) = &bytes {
            // The first check stopped at the first undefined-length UN; check what follows it too.
            check_part10_lengths(rewritten, start).map_err(refused)?;
        }
        let object = OpenFileOptions::new().read_preamble(preamble).from_reader(&*bytes).map_err(|e| malformed(&e))?;
        return Ok(DicomFile { label: label.to_owned(), object, has_file_meta: true });
    }
    let explicit_vr =
        looks_like_raw_data_set(bytes).map_err(|reason| DicomError::NotDicom { path: label.to_owned(), reason })?;
    let (ts, encoding) = if explicit_vr {
        (EXPLICIT_VR_LITTLE_ENDIAN.erased(), DataSetEncoding::ExplicitLittle)
    } else {
        (IMPLICIT_VR_LITTLE_ENDIAN.erased(), DataSetEncoding::ImplicitLittle)
    };
    let bytes = define_un_lengths(bytes, 0, encoding).map_err(refused)?;
    check_raw_lengths(&bytes, encoding).map_err(refused)?;
    let dataset = InMemDicomObject::read_dataset_with_ts(&*bytes, &ts).map_err(|e| malformed(&e))?;
    let text = |tag| {
        dataset
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
    };
    // The meta table is only bookkeeping here; a file without SOP attributes still gets a readable image.
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts.uid())
        .media_storage_sop_class_uid(
            text(tags::SOP_CLASS_UID).unwrap_or_else(|| uids::SECONDARY_CAPTURE_IMAGE_STORAGE.to_owned()),
        )
        .media_storage_sop_instance_uid(text(tags::SOP_INSTANCE_UID).unwrap_or_else(new_uid))
        .build()
        .map_err(|e| malformed(&e))?;
    Ok(DicomFile { label: label.to_owned(), object: dataset.with_exact_meta(meta), has_file_meta: false })
}

/// Checks that `bytes` start like a little-endian data set (an even group 0002..0028 tag); returns whether
/// the VR is explicit.
fn looks_like_raw_data_set(bytes: &[u8]) -> Result<bool, String> {
    let Some(head) = bytes.get(0..8) else {
        return Err(format!("only {} bytes, too short for a DICOM data set", bytes.len()));
    };
    let group = u16::from_le_bytes([head[0], head[1]]);
    if group % 2 != 0 || !(0x0002..=0x0028).contains(&group) {
        return Err(format!(
            "no 'DICM' marker at byte 128 and the first tag group {group:04X} does not start a data set"
        ));
    }
    let vr = &head[4..6];
    Ok(vr.iter().all(u8::is_ascii_uppercase) && dicom_core::VR::from_binary([vr[0], vr[1]]).is_some())
}

/// Reads the first frame of a DICOM file as a [`DicomImage`].
pub fn read_dicom_image(path: &Path) -> Result<DicomImage, DicomError> {
    open_dicom(path)?.decode_image()
}

/// Reads the first frame of in-memory DICOM data; `label` names it in errors.
pub fn read_dicom_image_bytes(label: &str, bytes: &[u8]) -> Result<DicomImage, DicomError> {
    open_dicom_bytes(label, bytes)?.decode_image()
}

impl DicomFile {
    /// A string attribute, trimmed, `None` when absent or empty.
    pub fn text(&self, tag: Tag) -> Option<String> {
        self.object
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
    }

    fn invalid(&self, attribute: &'static str, reason: impl Into<String>) -> DicomError {
        DicomError::InvalidAttribute { path: self.label.clone(), attribute, reason: reason.into() }
    }

    /// An unsigned integer attribute: `Ok(None)` when absent, an error when not a number.
    fn uint(&self, tag: Tag, attribute: &'static str) -> Result<Option<u32>, DicomError> {
        match self.object.get(tag) {
            None => Ok(None),
            Some(element) if element.value().multiplicity() == 0 => Ok(None),
            Some(element) => element
                .to_int::<u32>()
                .map(Some)
                .map_err(|e| self.invalid(attribute, format!("not an unsigned integer ({e})"))),
        }
    }

    fn required_uint(&self, tag: Tag, attribute: &'static str) -> Result<u32, DicomError> {
        self.uint(tag, attribute)?.ok_or_else(|| DicomError::MissingAttribute { path: self.label.clone(), attribute })
    }

    /// The first value of a decimal attribute, `Ok(None)` when absent or empty.
    fn first_float(&self, tag: Tag, attribute: &'static str) -> Result<Option<f64>, DicomError> {
        match self.object.get(tag) {
            None => Ok(None),
            Some(element) if element.value().multiplicity() == 0 => Ok(None),
            Some(element) => {
                let values =
                    element.to_multi_float64().map_err(|e| self.invalid(attribute, format!("not a number ({e})")))?;
                match values.first() {
                    Some(v) if v.is_finite() => Ok(Some(*v)),
                    Some(v) => Err(self.invalid(attribute, format!("value {v} is not finite"))),
                    None => Ok(None),
                }
            }
        }
    }

    /// The transfer syntax UID (implicit VR little endian for files without meta).
    pub fn transfer_syntax_uid(&self) -> String {
        self.object.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_owned()
    }

    fn pixel_layout(&self) -> Result<PixelLayout, DicomError> {
        let rows = self.required_uint(tags::ROWS, "Rows (0028,0010)")?;
        let columns = self.required_uint(tags::COLUMNS, "Columns (0028,0011)")?;
        let bits_allocated = self.required_uint(tags::BITS_ALLOCATED, "Bits Allocated (0028,0100)")?;
        let bits_stored = self.uint(tags::BITS_STORED, "Bits Stored (0028,0101)")?.unwrap_or(bits_allocated);
        let high_bit = self.uint(tags::HIGH_BIT, "High Bit (0028,0102)")?.unwrap_or(bits_stored.saturating_sub(1));
        let samples = self.uint(tags::SAMPLES_PER_PIXEL, "Samples per Pixel (0028,0002)")?.unwrap_or(1);
        let signed = self.uint(tags::PIXEL_REPRESENTATION, "Pixel Representation (0028,0103)")?.unwrap_or(0) == 1;
        let planar = self.uint(tags::PLANAR_CONFIGURATION, "Planar Configuration (0028,0006)")?.unwrap_or(0) == 1;
        if rows == 0 || columns == 0 {
            return Err(self.invalid("Rows/Columns", format!("image is {columns}x{rows} pixels")));
        }
        if u64::from(rows) * u64::from(columns) > MAX_PIXELS_PER_FRAME {
            return Err(DicomError::Unsupported {
                path: self.label.clone(),
                what: format!("a {columns}x{rows} frame exceeds {MAX_PIXELS_PER_FRAME} pixels"),
            });
        }
        if ![1, 8, 16, 32].contains(&bits_allocated) {
            return Err(self.invalid("Bits Allocated (0028,0100)", format!("{bits_allocated} is not 1, 8, 16 or 32")));
        }
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(
                self.invalid("Bits Stored (0028,0101)", format!("{bits_stored} with Bits Allocated {bits_allocated}"))
            );
        }
        if high_bit >= bits_allocated || high_bit + 1 < bits_stored {
            return Err(self.invalid(
                "High Bit (0028,0102)",
                format!("{high_bit} with Bits Stored {bits_stored}, Bits Allocated {bits_allocated}"),
            ));
        }
        if samples != 1 && samples != 3 {
            return Err(self.invalid("Samples per Pixel (0028,0002)", format!("{samples} is not 1 or 3")));
        }
        // All narrowing casts below are within range after the checks above.
        Ok(PixelLayout {
            rows,
            columns,
            samples_per_pixel: samples as u16,
            bits_allocated: bits_allocated as u16,
            bits_stored: bits_stored as u16,
            high_bit: high_bit as u16,
            signed,
            planar,
        })
    }

    fn modality_transform(&self, pixel_signed: bool) -> Result<ModalityTransform, DicomError> {
        const ATTRIBUTE: &str = "Modality LUT Sequence (0028,3000)";
        if let Some(element) = self.object.get(tags::MODALITY_LUT_SEQUENCE) {
            let Some(items) = element.items() else {
                return Err(self.invalid(ATTRIBUTE, "not a sequence"));
            };
            if let Some(item) = items.first() {
                return parse_lut_item(item, pixel_signed, &self.label, ATTRIBUTE).map(ModalityTransform::Lut);
            }
        }
        let slope = self.first_float(tags::RESCALE_SLOPE, "Rescale Slope (0028,1053)")?.unwrap_or(1.0);
        let intercept = self.first_float(tags::RESCALE_INTERCEPT, "Rescale Intercept (0028,1052)")?.unwrap_or(0.0);
        if slope == 0.0 {
            return Err(self.invalid("Rescale Slope (0028,1053)", "slope is 0"));
        }
        Ok(ModalityTransform::Rescale { slope, intercept })
    }

    fn voi(&self, pixel_signed: bool) -> Result<VoiSettings, DicomError> {
        const LUT_ATTRIBUTE: &str = "VOI LUT Sequence (0028,3010)";
        // These attributes only say how to show the image first. A bad one is set aside with a note, as dcmtk
        // does, instead of refusing an image whose pixels are fine (the classifier never uses them).
        let mut notes = Vec::new();
        let function = match self.text(tags::VOILUT_FUNCTION) {
            None => VoiLutFunction::Linear,
            Some(name) => VoiLutFunction::from_dicom(&name).unwrap_or_else(|| {
                notes.push(format!(
                    "VOI LUT Function (0028,1056) {name:?} is not a defined term (LINEAR, LINEAR_EXACT, SIGMOID): \
                     LINEAR is used"
                ));
                VoiLutFunction::Linear
            }),
        };
        let lut = match self.object.get(tags::VOILUT_SEQUENCE).map(|e| e.value()) {
            Some(Value::Sequence(sequence)) => match sequence.items().first() {
                Some(item) => match parse_lut_item(item, pixel_signed, &self.label, LUT_ATTRIBUTE) {
                    Ok(lut) => Some(lut),
                    Err(error) => {
                        notes.push(format!("{}: set aside", invalid_reason(&error)));
                        None
                    }
                },
                None => None,
            },
            Some(_) => {
                notes.push(format!("{LUT_ATTRIBUTE} is not a sequence: set aside"));
                None
            }
            None => None,
        };
        let mut lenient_float = |tag, attribute: &'static str| {
            self.first_float(tag, attribute).unwrap_or_else(|error| {
                notes.push(format!("{}: set aside", invalid_reason(&error)));
                None
            })
        };
        let center = lenient_float(tags::WINDOW_CENTER, "Window Center (0028,1050)");
        let width = lenient_float(tags::WINDOW_WIDTH, "Window Width (0028,1051)");
        let stored = match (center, width) {
            // A window of zero or negative width is unusable; fall back as if none were stored.
            (Some(center), Some(width)) if width > 0.0 => Some(Window { center, width }),
            _ => None,
        };
        let stored_windows = self.stored_windows(&mut notes);
        let (window, source) = match (&lut, stored) {
            (Some(lut), _) if !lut.is_empty() => {
                let first = f64::from(lut.first_mapped);
                let last = first + (lut.len() as f64 - 1.0);
                (Some(Window::spanning(first, last)), WindowSource::VoiLutSequenceRange)
            }
            (_, Some(window)) => (Some(window), WindowSource::StoredWindowCenterWidth),
            _ => (None, WindowSource::ComputedFromPixelRange),
        };
        Ok(VoiSettings { function, lut, window, source, stored_windows, notes })
    }

    /// Every window of Window Center / Window Width (0028,1050/1051), with its Window Center & Width Explanation
    /// (0028,1055): PS3.3 C.11.2.1.2 lets a file offer several, the first being the one to show first. Pairs that
    /// are not two finite numbers with a positive width are set aside with a note; a count that differs between the
    /// two attributes keeps the pairs both have.
    fn stored_windows(&self, notes: &mut Vec<String>) -> Vec<StoredWindow> {
        // Absent or empty: no window (a first value that is no number is noted by `voi`, which reads it too).
        let values = |tag| -> Vec<Option<f64>> {
            self.text(tag)
                .map(|text| text.split('\\').map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite())).collect())
                .unwrap_or_default()
        };
        let centers = values(tags::WINDOW_CENTER);
        let widths = values(tags::WINDOW_WIDTH);
        let explanations: Vec<String> = self
            .text(tags::WINDOW_CENTER_WIDTH_EXPLANATION)
            .map(|text| text.split('\\').map(|e| e.trim().to_owned()).collect())
            .unwrap_or_default();
        if centers.len() != widths.len() && !centers.is_empty() && !widths.is_empty() {
            notes.push(format!(
                "Window Center (0028,1050) has {} values and Window Width (0028,1051) {}: the first {} pairs are used",
                centers.len(),
                widths.len(),
                centers.len().min(widths.len())
            ));
        }
        let mut windows = Vec::new();
        for (index, (center, width)) in centers.iter().zip(&widths).enumerate() {
            match (center, width) {
                (Some(center), Some(width)) if *width > 0.0 => windows.push(StoredWindow {
                    window: Window { center: *center, width: *width },
                    explanation: explanations.get(index).filter(|e| !e.is_empty()).cloned(),
                }),
                // The first pair's problems are noted by `voi`, which reads the window shown first.
                _ if index == 0 => {}
                _ => notes.push(format!(
                    "window {} of Window Center/Width (0028,1050/1051) is not a number with a positive width: set \
                     aside",
                    index + 1
                )),
            }
        }
        windows
    }

    /// Pixel Spacing, else Imager Pixel Spacing: two positive sizes in mm (row, column). A value that is not one is
    /// set aside with a note: the image still opens, its distances are then measured in pixels.
    fn pixel_spacing(&self, notes: &mut Vec<String>) -> Option<PixelSpacing> {
        let attributes = [
            (tags::PIXEL_SPACING, "Pixel Spacing (0028,0030)", SpacingSource::PixelSpacing),
            (tags::IMAGER_PIXEL_SPACING, "Imager Pixel Spacing (0018,1164)", SpacingSource::ImagerPixelSpacing),
        ];
        for (tag, attribute, source) in attributes {
            let Some(text) = self.text(tag) else {
                continue;
            };
            let sizes: Vec<Option<f64>> = text
                .split('\\')
                .map(|value| value.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0))
                .collect();
            match sizes.as_slice() {
                [Some(row_mm), Some(column_mm)] => {
                    let detector = PixelSpacing { row_mm: *row_mm, column_mm: *column_mm, source };
                    return Some(match source {
                        SpacingSource::ImagerPixelSpacing => self.at_the_object(detector, notes),
                        _ => detector,
                    });
                }
                _ => notes.push(format!(
                    "{attribute} {text:?} is not two positive sizes in mm: set aside, distances are not measured \
                     from it"
                )),
            }
        }
        None
    }

    /// A detector pixel size brought to the object by the Estimated Radiographic Magnification Factor, when the file
    /// gives a usable one (a projection film magnifies what lies in front of the detector).
    fn at_the_object(&self, detector: PixelSpacing, notes: &mut Vec<String>) -> PixelSpacing {
        const ATTRIBUTE: &str = "Estimated Radiographic Magnification Factor (0018,1114)";
        match self.first_float(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR, ATTRIBUTE) {
            Ok(Some(factor)) if factor.is_finite() && factor > 0.0 => PixelSpacing {
                row_mm: detector.row_mm / factor,
                column_mm: detector.column_mm / factor,
                source: SpacingSource::MagnificationCorrected { factor },
            },
            Ok(None) => detector,
            Ok(Some(factor)) => {
                notes.push(format!(
                    "{ATTRIBUTE} {factor} is not a positive number: set aside, lengths are at the detector"
                ));
                detector
            }
            Err(error) => {
                notes.push(format!("{}: set aside, lengths are at the detector", invalid_reason(&error)));
                detector
            }
        }
    }

    /// The codestream of the first frame of encapsulated Pixel Data.
    fn first_frame_stream_of(&self, fragments: &[Vec<u8>], offset_table: &[u32]) -> Vec<u8> {
        let frames = self.uint(tags::NUMBER_OF_FRAMES, "Number of Frames (0028,0008)").ok().flatten().unwrap_or(1);
        first_frame_stream(fragments, offset_table, frames)
    }

    /// The first frame of encapsulated Pixel Data, decoded by a codec of our own, as little-endian samples of Bits
    /// Allocated.
    /// `stream` is the first frame's codestream, `None` when Pixel Data is not encapsulated.
    fn decode_own_codec_frame(
        codec: OwnCodec,
        stream: Option<&[u8]>,
        layout: &PixelLayout,
    ) -> Result<Vec<u8>, CodestreamError> {
        let format = codec.format();
        let Some(stream) = stream else {
            return Err(CodestreamError::Malformed { format, reason: "Pixel Data is not encapsulated".into() });
        };
        let (precision, samples) = match codec {
            OwnCodec::JpegLs => decode_jpeg_ls(stream).map(|frame| (frame.precision, frame.samples))?,
            OwnCodec::JpegExtended => decode_jpeg_extended(stream).map(|frame| (frame.precision, frame.samples))?,
        };
        if u16::from(precision) > layout.bits_allocated {
            return Err(CodestreamError::Malformed {
                format,
                reason: format!("its {precision}-bit samples do not fit Bits Allocated {}", layout.bits_allocated),
            });
        }
        Ok(match layout.bits_allocated {
            8 => samples.iter().map(|&sample| sample as u8).collect(),
            _ => samples.iter().flat_map(|sample| sample.to_le_bytes()).collect(),
        })
    }

    fn sample_model(&self, photometric: &str) -> Result<(SampleModel, Photometric), DicomError> {
        match photometric {
            "MONOCHROME1" => Ok((SampleModel::Gray, Photometric::Monochrome1)),
            "MONOCHROME2" => Ok((SampleModel::Gray, Photometric::Monochrome2)),
            "RGB" => Ok((SampleModel::Rgb, Photometric::ColorAsLuma)),
            "YBR_FULL" => Ok((SampleModel::YbrFull, Photometric::ColorAsLuma)),
            other => Err(DicomError::Unsupported {
                path: self.label.clone(),
                what: format!("photometric interpretation {other}"),
            }),
        }
    }

    /// No Pixel Data: an object that holds no image, or, when Rows and Columns describe one, most likely a file cut
    /// short just before its pixels (the element boundary leaves no other trace).
    fn missing_pixel_data(&self) -> DicomError {
        let rows = self.uint(tags::ROWS, "Rows (0028,0010)").ok().flatten();
        let columns = self.uint(tags::COLUMNS, "Columns (0028,0011)").ok().flatten();
        let detail = match (rows, columns) {
            (Some(rows), Some(columns)) => format!(
                "Rows and Columns describe a {columns}x{rows} px image, so the file was probably cut short before its \
                 pixels (truncated)"
            ),
            _ => "this DICOM object holds no image".to_owned(),
        };
        DicomError::MissingPixelData { path: self.label.clone(), detail }
    }

    /// Decodes the first frame and applies the modality LUT.
    pub fn decode_image(&self) -> Result<DicomImage, DicomError> {
        let pixel_element = self.object.get(tags::PIXEL_DATA).ok_or_else(|| self.missing_pixel_data())?;
        let photometric_text =
            self.text(tags::PHOTOMETRIC_INTERPRETATION).ok_or_else(|| DicomError::MissingAttribute {
                path: self.label.clone(),
                attribute: "Photometric Interpretation (0028,0004)",
            })?;
        let layout = self.pixel_layout()?;
        let ts_uid = self.transfer_syntax_uid();
        let ts = TransferSyntaxRegistry.get(&ts_uid).ok_or_else(|| DicomError::Unsupported {
            path: self.label.clone(),
            what: format!("unknown transfer syntax {ts_uid}"),
        })?;
        let mut own_codec = is_jpeg_ls(&ts_uid).then_some(OwnCodec::JpegLs);
        // The first frame's codestream, read once for the header check and for our own decoders.
        let mut first_frame_stream_bytes: Option<Vec<u8>> = None;
        if !ts.can_decode_all() && own_codec.is_none() {
            return Err(DicomError::Unsupported {
                path: self.label.clone(),
                what: format!("no pure-Rust decoder for transfer syntax {} ({ts_uid})", ts.name()),
            });
        }
        match pixel_element.value() {
            Value::Primitive(primitive) => {
                let actual = primitive.calculate_byte_len() as u64;
                let expected = layout.native_frame_bytes();
                if actual < expected {
                    return Err(DicomError::PixelDataTooShort {
                        path: self.label.clone(),
                        expected_bytes: expected,
                        actual_bytes: actual,
                    });
                }
            }
            Value::PixelSequence(sequence) if sequence.fragments().is_empty() => {
                return Err(DicomError::MissingPixelData {
                    path: self.label.clone(),
                    detail: "its encapsulated Pixel Data holds no fragment".into(),
                });
            }
            Value::PixelSequence(sequence) => {
                // The frame header may lie in a later fragment when an encoder splits a frame into small ones.
                let first_frame = first_frame_stream_bytes
                    .insert(self.first_frame_stream_of(sequence.fragments(), sequence.offset_table()));
                if let Some(frame) = frame_header(first_frame) {
                    let name = match frame.kind {
                        FrameKind::Jpeg2000 => "JPEG 2000",
                        FrameKind::JpegLs => "JPEG-LS",
                        FrameKind::JpegDct | FrameKind::JpegLossless => "JPEG",
                    };
                    if (frame.rows, frame.columns) != (layout.rows, layout.columns) {
                        return Err(self.invalid(
                            "Pixel Data (7FE0,0010)",
                            format!(
                                "holds a {}x{} px {name} frame, but Rows and Columns say {}x{} px",
                                frame.columns, frame.rows, layout.columns, layout.rows
                            ),
                        ));
                    }
                    if frame.components != layout.samples_per_pixel {
                        return Err(self.invalid(
                            "Pixel Data (7FE0,0010)",
                            format!(
                                "holds a {name} frame of {} components, but Samples per Pixel says {}",
                                frame.components, layout.samples_per_pixel
                            ),
                        ));
                    }
                    // The pure-Rust JPEG decoder reads 8-bit DCT frames and lossless ones; 12-bit DCT is ours.
                    if frame.kind == FrameKind::JpegDct && frame.precision > 8 {
                        own_codec = Some(OwnCodec::JpegExtended);
                    }
                }
            }
            Value::Sequence(_) => {
                return Err(self.invalid("Pixel Data (7FE0,0010)", "is a sequence of items"));
            }
        }
        let decode_error = |reason: String| DicomError::PixelDecode {
            path: self.label.clone(),
            transfer_syntax: ts.name().to_owned(),
            reason,
        };
        let frame_bytes = if let Some(codec) = own_codec {
            Self::decode_own_codec_frame(codec, first_frame_stream_bytes.as_deref(), &layout).map_err(|reason| {
                match reason {
                    CodestreamError::Unsupported { .. } => {
                        DicomError::Unsupported { path: self.label.clone(), what: reason.to_string() }
                    }
                    other => decode_error(other.to_string()),
                }
            })?
        } else {
            // Third-party codecs see untrusted bytes; a panic in one must not take the workbench down.
            crate::contained_panic::contain(|| self.object.decode_pixel_data_frame(0))
                .map_err(|message| decode_error(format!("the decoder gave up on this data ({message})")))?
                .map_err(|e| decode_error(error_chain_text(&e)))?
                .data()
                .to_vec()
        };
        // Codecs return colour as RGB whatever the stored photometric interpretation was.
        let decoded_photometric = if layout.samples_per_pixel == 3 && ts.is_encapsulated_pixel_data() {
            "RGB".to_owned()
        } else {
            photometric_text.clone()
        };
        let (model, photometric) = self.sample_model(&decoded_photometric)?;
        let planar = layout.planar && !ts.is_encapsulated_pixel_data();
        let stored = stored_values(&frame_bytes, &PixelLayout { planar, ..layout }, model).map_err(decode_error)?;
        drop(frame_bytes);

        let modality = self.modality_transform(layout.signed)?;
        let (pixels, stored_value_stats, modality_lut) = match stored {
            StoredValues::Integers(values) => {
                (modality.apply(&values), PixelStats::of_integers(&values), modality.describe())
            }
            StoredValues::Luma(luma) => {
                let stats = PixelStats::of(&luma);
                let identity = ModalityTransform::Rescale { slope: 1.0, intercept: 0.0 };
                (luma, stats, identity.describe())
            }
        };
        let pixel_stats = PixelStats::of(&pixels);
        let voi = self.voi(layout.signed)?;
        let window_used = voi.window.unwrap_or_else(|| Window::spanning(pixel_stats.min, pixel_stats.max));
        let mut display_notes = voi.notes;
        let pixel_spacing = self.pixel_spacing(&mut display_notes);
        let summary = DicomSummary {
            file: self.label.clone(),
            rows: layout.rows,
            columns: layout.columns,
            bits_allocated: layout.bits_allocated,
            bits_stored: layout.bits_stored,
            high_bit: layout.high_bit,
            pixel_representation_signed: layout.signed,
            samples_per_pixel: layout.samples_per_pixel,
            number_of_frames: self.uint(tags::NUMBER_OF_FRAMES, "Number of Frames (0028,0008)")?.unwrap_or(1),
            photometric_interpretation: photometric_text,
            transfer_syntax_uid: ts_uid,
            transfer_syntax_name: ts.name().to_owned(),
            has_file_meta: self.has_file_meta,
            modality: self.text(tags::MODALITY),
            sop_class_uid: self.text(tags::SOP_CLASS_UID),
            modality_lut,
            window: window_used,
            window_source: voi.source,
            stored_windows: voi.stored_windows,
            voi_lut_function: voi.function,
            display_notes,
            pixel_spacing,
            stored_value_stats,
            pixel_stats,
        };
        Ok(DicomImage {
            width: layout.columns,
            height: layout.rows,
            pixels,
            bits_stored: layout.bits_stored,
            photometric,
            window: voi.window,
            voi_lut_function: voi.function,
            voi_lut: voi.lut,
            summary,
        })
    }
}

/// Codestreams we decode ourselves, where dicom-rs has no pure-Rust codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnCodec {
    /// T.87 JPEG-LS, lossless and near-lossless.
    JpegLs,
    /// T.81 extended sequential DCT at 12 bits.
    JpegExtended,
}

impl OwnCodec {
    fn format(self) -> &'static str {
        match self {
            OwnCodec::JpegLs => "JPEG-LS",
            OwnCodec::JpegExtended => "12-bit JPEG",
        }
    }
}

fn is_jpeg_ls(transfer_syntax_uid: &str) -> bool {
    transfer_syntax_uid == uids::JPEGLS_LOSSLESS || transfer_syntax_uid == uids::JPEGLS_NEAR_LOSSLESS
}

/// The bytes of the first frame's codestream: every fragment of a single-frame image; of a multi-frame one, the
/// fragments before the second offset of the Basic Offset Table, or one fragment per frame, or else the fragments
/// up to the first that ends with an end-of-image marker.
fn first_frame_stream(fragments: &[Vec<u8>], offset_table: &[u32], frames: u32) -> Vec<u8> {
    if frames <= 1 {
        return fragments.concat();
    }
    if let Some(&second) = offset_table.get(1) {
        let mut stream = Vec::new();
        let mut item_offset = 0u64;
        for fragment in fragments {
            if item_offset >= u64::from(second) {
                break;
            }
            stream.extend_from_slice(fragment);
            // Offsets count each fragment's 8-byte item header too (PS3.5 A.4).
            item_offset += 8 + fragment.len() as u64;
        }
        return stream;
    }
    if fragments.len() == frames as usize {
        return fragments.first().cloned().unwrap_or_default();
    }
    let mut stream = Vec::new();
    for fragment in fragments {
        stream.extend_from_slice(fragment);
        let trimmed = fragment.iter().rposition(|&byte| byte != 0).map_or(&[][..], |end| &fragment[..=end]);
        if trimmed.ends_with(&[0xFF, 0xD9]) {
            break;
        }
    }
    stream
}

struct VoiSettings {
    function: VoiLutFunction,
    lut: Option<LookupTable>,
    window: Option<Window>,
    source: WindowSource,
    stored_windows: Vec<StoredWindow>,
    /// Display attributes set aside, and why.
    notes: Vec<String>,
}

/// "Attribute: reason" of an invalid-attribute error, without the file (the note is shown with it), or the whole
/// message of another error.
fn invalid_reason(error: &DicomError) -> String {
    match error {
        DicomError::InvalidAttribute { attribute, reason, .. } => format!("{attribute}: {reason}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::first_frame_stream;

    #[test]
    fn the_first_frame_is_found_by_offset_table_fragment_count_or_end_marker() {
        let fragments = vec![vec![0xFF, 0xD8, 1], vec![2, 0xFF, 0xD9, 0], vec![0xFF, 0xD8, 3, 0xFF, 0xD9]];
        // One frame: every fragment.
        assert_eq!(first_frame_stream(&fragments, &[], 1).len(), 12);
        // Two frames, offsets 0 and 19 (two fragments with their 8-byte item headers): the first two fragments.
        assert_eq!(first_frame_stream(&fragments, &[0, 19], 2), [0xFF, 0xD8, 1, 2, 0xFF, 0xD9, 0]);
        // As many fragments as frames: the first fragment.
        assert_eq!(first_frame_stream(&fragments, &[], 3), [0xFF, 0xD8, 1]);
        // Otherwise up to the first fragment ending in EOI (padding after it allowed).
        assert_eq!(first_frame_stream(&fragments, &[], 2), [0xFF, 0xD8, 1, 2, 0xFF, 0xD9, 0]);
    }
}
