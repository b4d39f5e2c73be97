//! Grayscale Softcopy Presentation State (GSPS, PS3.3 A.33.1, SOP class 1.2.840.10008.5.1.4.1.1.11.1): how one image
//! is to be shown (window, polarity, displayed area) and what is drawn on it (graphic and text annotations), as PACS
//! viewers keep a reader's measurements. This module writes and reads the standard attributes only; what the
//! annotations mean (which measurement tool) is the caller's business.
//!
//! Coordinates: Graphic Data and Anchor Point in PIXEL units are image-relative with sub-pixel precision, 0.0\0.0 at
//! the top left corner of the top left pixel, so its centre is 0.5\0.5 and the bottom right corner of the bottom right
//! pixel is Columns\Rows (PS3.3 C.10.5.1.2, Graphic Annotation Units). Values are (column, row) pairs. The Displayed
//! Area corners, by contrast, are whole pixel numbers counted from 1 (C.10.4): 1\1 is the top left pixel.

use super::Window;
use super::error::{DicomError, error_chain_text, path_text};
use super::identity::ImageIdentity;
use super::read::{DicomFile, open_dicom, open_dicom_bytes};
use super::secondary_capture::format_ds;
use super::uid::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, new_uid};
use super::utc_date_time::dicom_date_time_utc;
use crate::atomic_file::{IfExists, OutputFileError, PartialFile};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR, dicom_value};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use std::path::{Path, PathBuf};

/// The GSPS storage SOP class.
pub const GSPS_SOP_CLASS_UID: &str = uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE;

/// The one graphic layer this program writes its annotations in.
pub const MEASUREMENT_LAYER: &str = "MEASUREMENTS";

/// Most graphic points one object may hold when read: a corrupt count cannot ask for gigabytes.
const MAX_GRAPHIC_POINTS: usize = 1 << 20;

/// Graphic Type (0070,0023).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphicType {
    Point,
    Polyline,
    Interpolated,
    Circle,
    Ellipse,
    /// Any other value, as the file spells it.
    Other(String),
}

impl GraphicType {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Point => "POINT",
            Self::Polyline => "POLYLINE",
            Self::Interpolated => "INTERPOLATED",
            Self::Circle => "CIRCLE",
            Self::Ellipse => "ELLIPSE",
            Self::Other(other) => other,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "POINT" => Self::Point,
            "POLYLINE" => Self::Polyline,
            "INTERPOLATED" => Self::Interpolated,
            "CIRCLE" => Self::Circle,
            "ELLIPSE" => Self::Ellipse,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One item of the Graphic Object Sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphicObject {
    pub graphic_type: GraphicType,
    /// (column, row) in PIXEL units, or fractions of the displayed area when `display_units`.
    pub points: Vec<[f32; 2]>,
    /// Graphic Annotation Units DISPLAY: relative to the displayed area, not to the image (read only).
    pub display_units: bool,
}

/// One item of the Text Object Sequence: a text with the image point it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct TextObject {
    pub text: String,
    /// Anchor Point in PIXEL units; `None` when the file places the text by a bounding box only or in DISPLAY units.
    pub anchor_px: Option<[f32; 2]>,
}

/// One item of the Graphic Annotation Sequence.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotation {
    pub graphics: Vec<GraphicObject>,
    pub texts: Vec<TextObject>,
    /// The SOP Instance UIDs of its Referenced Image Sequence; empty when it applies to every referenced image.
    pub images: Vec<String>,
}

/// What a presentation state says about showing the image.
#[derive(Clone, Debug, PartialEq)]
pub struct PresentationState {
    /// Content Label (0070,0080): a CS value, upper case, at most 16 characters.
    pub label: String,
    /// Content Description (0070,0081).
    pub description: String,
    /// Content Creator's Name (0070,0084), PN; may be empty.
    pub creator: String,
    /// The Softcopy VOI LUT window, in the units after the image's modality LUT.
    pub window: Option<Window>,
    /// Presentation LUT Shape INVERSE (else IDENTITY).
    pub inverse: bool,
    pub annotations: Vec<Annotation>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct WrittenPresentationState {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub referenced_sop_instance_uid: String,
}

/// A presentation state read from a file.
#[derive(Debug, Clone)]
pub struct ReadPresentationState {
    pub sop_instance_uid: String,
    /// SOP Instance UIDs of every image the Referenced Series Sequence names.
    pub referenced_images: Vec<String>,
    pub state: PresentationState,
    /// What the file holds that is not applied (a VOI LUT table, a rotation, shutters), for the caller to report.
    pub notes: Vec<String>,
}

impl ReadPresentationState {
    /// Whether the presentation state applies to the image with `sop_instance_uid`.
    pub fn references(&self, sop_instance_uid: &str) -> bool {
        self.referenced_images.iter().any(|uid| uid == sop_instance_uid)
    }
}

/// Writes `state` as a GSPS of `image` at `path`: in the image's study and patient, a new series and instance,
/// explicit VR little endian, through a temporary file renamed into place.
pub fn write_presentation_state(
    path: &Path,
    image: &ImageIdentity,
    state: &PresentationState,
    if_exists: IfExists,
) -> Result<WrittenPresentationState, DicomError> {
    let failed = |reason: String| DicomError::Write { path: path_text(path), reason };
    let partial = PartialFile::create(path, if_exists).map_err(|e: OutputFileError| failed(e.to_string()))?;
    let sop_instance_uid = new_uid();
    let series_instance_uid = new_uid();
    let dataset = presentation_state_dataset(image, state, &sop_instance_uid, &series_instance_uid)?;
    let object = dataset
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| failed(error_chain_text(&e)))?;
    object.write_to_file(partial.path()).map_err(|e| failed(error_chain_text(&e)))?;
    partial.commit().map_err(|e| failed(e.to_string()))?;
    Ok(WrittenPresentationState {
        path: path.to_path_buf(),
        sop_instance_uid,
        series_instance_uid,
        referenced_sop_instance_uid: image.sop_instance_uid.clone(),
    })
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

/// A Type 2 attribute: the value when known, else present and empty.
fn text_or_empty(tag: Tag, vr: VR, value: Option<&str>) -> DataElement<InMemDicomObject> {
    match value {
        Some(value) => text(tag, vr, value),
        None => DataElement::empty(tag, vr),
    }
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

fn floats(tag: Tag, values: Vec<f32>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::FL, PrimitiveValue::F32(values.into()))
}

/// A Content Label (CS, PS3.5 6.2): upper case letters, digits, space and underscore, at most 16 characters.
fn content_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| c.to_ascii_uppercase())
        .map(|c| if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == ' ' { c } else { '_' })
        .take(16)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() { MEASUREMENT_LAYER.to_owned() } else { trimmed.to_owned() }
}

/// A LO value: at most 64 characters, no backslash (the value separator) nor control characters.
fn long_string(text: &str) -> String {
    text.chars().map(|c| if c == '\\' || c.is_control() { ' ' } else { c }).take(64).collect()
}

/// The GSPS data set (without file meta).
fn presentation_state_dataset(
    image: &ImageIdentity,
    state: &PresentationState,
    sop_instance_uid: &str,
    series_instance_uid: &str,
) -> Result<InMemDicomObject, DicomError> {
    let (made_date, made_time) = dicom_date_time_utc(std::time::SystemTime::now());
    let size = |value: u32, what: &str| {
        i32::try_from(value).map_err(|_| DicomError::InvalidArgument {
            what: "image size",
            reason: format!("{what} {value} does not fit a displayed area"),
        })
    };
    let (columns, rows) = (size(image.columns, "columns")?, size(image.rows, "rows")?);
    let referenced_image = InMemDicomObject::from_element_iter([
        text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &image.sop_class_uid),
        text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &image.sop_instance_uid),
    ]);
    let mut elements = vec![
        // SOP Common. UTF-8, so a degree sign in a label and a patient's name in any script survive.
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        text(tags::SOP_CLASS_UID, VR::UI, GSPS_SOP_CLASS_UID),
        text(tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid),
        // Patient: the image's, so a PACS files the presentation state with it.
        text_or_empty(tags::PATIENT_NAME, VR::PN, image.patient_name.as_deref()),
        text_or_empty(tags::PATIENT_ID, VR::LO, image.patient_id.as_deref()),
        text_or_empty(tags::PATIENT_BIRTH_DATE, VR::DA, image.patient_birth_date.as_deref()),
        text_or_empty(tags::PATIENT_SEX, VR::CS, image.patient_sex.as_deref()),
        // General Study: the image's study.
        text(tags::STUDY_INSTANCE_UID, VR::UI, &image.study_instance_uid),
        text_or_empty(tags::STUDY_DATE, VR::DA, image.study_date.as_deref()),
        text_or_empty(tags::STUDY_TIME, VR::TM, image.study_time.as_deref()),
        text_or_empty(tags::REFERRING_PHYSICIAN_NAME, VR::PN, image.referring_physician_name.as_deref()),
        text_or_empty(tags::STUDY_ID, VR::SH, image.study_id.as_deref()),
        text_or_empty(tags::ACCESSION_NUMBER, VR::SH, image.accession_number.as_deref()),
        // General Series and Presentation Series: a series of its own.
        text(tags::MODALITY, VR::CS, "PR"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, series_instance_uid),
        text(tags::SERIES_NUMBER, VR::IS, "1"),
        text(tags::SERIES_DESCRIPTION, VR::LO, "Measurements (Thorax Workbench)"),
        // General Equipment.
        text(tags::MANUFACTURER, VR::LO, "Thorax Workbench"),
        text(tags::SOFTWARE_VERSIONS, VR::LO, env!("CARGO_PKG_VERSION")),
        // Presentation State Identification.
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        text(tags::CONTENT_LABEL, VR::CS, &content_label(&state.label)),
        text(tags::CONTENT_DESCRIPTION, VR::LO, &long_string(&state.description)),
        text(tags::PRESENTATION_CREATION_DATE, VR::DA, &made_date),
        text(tags::PRESENTATION_CREATION_TIME, VR::TM, &made_time),
        text_or_empty(tags::CONTENT_CREATOR_NAME, VR::PN, Some(state.creator.as_str()).filter(|c| !c.is_empty())),
        // Presentation State Relationship: the one image.
        sequence(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::SERIES_INSTANCE_UID, VR::UI, &image.series_instance_uid),
                sequence(tags::REFERENCED_IMAGE_SEQUENCE, vec![referenced_image]),
            ])],
        ),
        // Displayed Area: the whole image, fitted to the viewport, pixels shown square as the workbench shows them.
        sequence(
            tags::DISPLAYED_AREA_SELECTION_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                DataElement::new(tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER, VR::SL, dicom_value!(I32, [1, 1])),
                DataElement::new(
                    tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER,
                    VR::SL,
                    dicom_value!(I32, [columns, rows]),
                ),
                text(tags::PRESENTATION_SIZE_MODE, VR::CS, "SCALE TO FIT"),
                DataElement::new(tags::PRESENTATION_PIXEL_ASPECT_RATIO, VR::IS, dicom_value!(Strs, ["1", "1"])),
            ])],
        ),
        // Softcopy Presentation LUT.
        text(tags::PRESENTATION_LUT_SHAPE, VR::CS, if state.inverse { "INVERSE" } else { "IDENTITY" }),
    ];
    match &image.body_part_examined {
        Some(body_part) => elements.push(text(tags::BODY_PART_EXAMINED, VR::CS, body_part)),
        // Laterality is Type 2C, required for a paired body part; without one named, it is given empty.
        None => elements.push(DataElement::empty(tags::LATERALITY, VR::CS)),
    }
    if let Some(rescale) = &image.rescale {
        // Modality LUT: required where the image has one (the window below is in its output units).
        elements.push(text(tags::RESCALE_INTERCEPT, VR::DS, &rescale.intercept));
        elements.push(text(tags::RESCALE_SLOPE, VR::DS, &rescale.slope));
        elements.push(text(tags::RESCALE_TYPE, VR::LO, &rescale.rescale_type));
    }
    if let Some(window) = state.window {
        if !(window.center.is_finite() && window.width.is_finite() && window.width > 0.0) {
            return Err(DicomError::InvalidArgument {
                what: "window",
                reason: format!("center {} / width {} is not a usable window", window.center, window.width),
            });
        }
        elements.push(sequence(
            tags::SOFTCOPY_VOILUT_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::WINDOW_CENTER, VR::DS, &format_ds(window.center)),
                text(tags::WINDOW_WIDTH, VR::DS, &format_ds(window.width)),
            ])],
        ));
    }
    if !state.annotations.is_empty() {
        elements.push(sequence(
            tags::GRAPHIC_ANNOTATION_SEQUENCE,
            state.annotations.iter().map(annotation_item).collect::<Result<_, _>>()?,
        ));
        elements.push(sequence(
            tags::GRAPHIC_LAYER_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::GRAPHIC_LAYER, VR::CS, MEASUREMENT_LAYER),
                text(tags::GRAPHIC_LAYER_ORDER, VR::IS, "1"),
                // Near white: the workbench draws its measurements light over the film.
                DataElement::new(
                    tags::GRAPHIC_LAYER_RECOMMENDED_DISPLAY_GRAYSCALE_VALUE,
                    VR::US,
                    dicom_value!(U16, [0xFFFF]),
                ),
                text(tags::GRAPHIC_LAYER_DESCRIPTION, VR::LO, "Measurements made in Thorax Workbench"),
            ])],
        ));
    }
    Ok(InMemDicomObject::from_element_iter(elements))
}

/// One Graphic Annotation Sequence item, in the measurement layer.
fn annotation_item(annotation: &Annotation) -> Result<InMemDicomObject, DicomError> {
    let mut elements = vec![text(tags::GRAPHIC_LAYER, VR::CS, MEASUREMENT_LAYER)];
    if !annotation.texts.is_empty() {
        let items = annotation.texts.iter().map(text_item).collect::<Result<_, _>>()?;
        elements.push(sequence(tags::TEXT_OBJECT_SEQUENCE, items));
    }
    if !annotation.graphics.is_empty() {
        let items = annotation.graphics.iter().map(graphic_item).collect::<Result<_, _>>()?;
        elements.push(sequence(tags::GRAPHIC_OBJECT_SEQUENCE, items));
    }
    Ok(InMemDicomObject::from_element_iter(elements))
}

fn unwritable(reason: String) -> DicomError {
    DicomError::InvalidArgument { what: "annotation", reason }
}

fn text_item(object: &TextObject) -> Result<InMemDicomObject, DicomError> {
    let anchor = object.anchor_px.ok_or_else(|| unwritable(format!("text \"{}\" has no anchor point", object.text)))?;
    if !anchor.iter().all(|v| v.is_finite()) {
        return Err(unwritable(format!("text \"{}\" has an anchor that is not a number", object.text)));
    }
    // ST: at most 1024 characters, no backslash restriction.
    let value: String = object.text.chars().take(1024).collect();
    Ok(InMemDicomObject::from_element_iter([
        text(tags::ANCHOR_POINT_ANNOTATION_UNITS, VR::CS, "PIXEL"),
        text(tags::UNFORMATTED_TEXT_VALUE, VR::ST, &value),
        floats(tags::ANCHOR_POINT, anchor.to_vec()),
        // A line from the text to the point it labels, as the workbench's label sits beside its line.
        text(tags::ANCHOR_POINT_VISIBILITY, VR::CS, "Y"),
    ]))
}

fn graphic_item(object: &GraphicObject) -> Result<InMemDicomObject, DicomError> {
    if object.display_units {
        return Err(unwritable("graphics are written in PIXEL units only".to_owned()));
    }
    let count = u16::try_from(object.points.len())
        .map_err(|_| unwritable(format!("{} points are too many for one graphic", object.points.len())))?;
    if object.points.iter().flatten().any(|v| !v.is_finite()) {
        return Err(unwritable(format!("a {} has a point that is not a number", object.graphic_type.as_str())));
    }
    let closed = object.points.len() > 2 && object.points.first() == object.points.last();
    let mut elements = vec![
        text(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, "PIXEL"),
        DataElement::new(tags::GRAPHIC_DIMENSIONS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(tags::NUMBER_OF_GRAPHIC_POINTS, VR::US, PrimitiveValue::from(count)),
        floats(tags::GRAPHIC_DATA, object.points.iter().flatten().copied().collect()),
        text(tags::GRAPHIC_TYPE, VR::CS, object.graphic_type.as_str()),
    ];
    // Graphic Filled is Type 1C for closed shapes: outlines, as the workbench draws them.
    let closed_shape = matches!(object.graphic_type, GraphicType::Circle | GraphicType::Ellipse)
        || (closed && matches!(object.graphic_type, GraphicType::Polyline | GraphicType::Interpolated));
    if closed_shape {
        elements.push(text(tags::GRAPHIC_FILLED, VR::CS, "N"));
    }
    Ok(InMemDicomObject::from_element_iter(elements))
}

/// Reads a GSPS file.
pub fn read_presentation_state(path: &Path) -> Result<ReadPresentationState, DicomError> {
    presentation_state_of(&open_dicom(path)?)
}

/// Reads GSPS data held in memory; `label` names it in errors.
pub fn read_presentation_state_bytes(label: &str, bytes: &[u8]) -> Result<ReadPresentationState, DicomError> {
    presentation_state_of(&open_dicom_bytes(label, bytes)?)
}

/// Where in a file a reading error is.
struct Reader<'a> {
    label: &'a str,
}

impl Reader<'_> {
    fn missing(&self, attribute: &'static str) -> DicomError {
        DicomError::MissingAttribute { path: self.label.to_owned(), attribute }
    }

    fn invalid(&self, attribute: &'static str, reason: impl Into<String>) -> DicomError {
        DicomError::InvalidAttribute { path: self.label.to_owned(), attribute, reason: reason.into() }
    }

    /// The items of sequence `tag`; `None` when absent.
    fn items<'o>(
        &self,
        object: &'o InMemDicomObject,
        tag: Tag,
        attribute: &'static str,
    ) -> Result<Option<&'o [InMemDicomObject]>, DicomError> {
        match object.get(tag) {
            None => Ok(None),
            Some(element) => {
                element.items().map(Some).ok_or_else(|| self.invalid(attribute, "not a sequence of items"))
            }
        }
    }
}

/// A string attribute of an item, trimmed; `None` when absent or empty.
fn item_text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_owned())
        .filter(|s| !s.is_empty())
}

fn presentation_state_of(file: &DicomFile) -> Result<ReadPresentationState, DicomError> {
    let reader = Reader { label: &file.label };
    let object: &InMemDicomObject = &file.object;
    let sop_class = file.text(tags::SOP_CLASS_UID).ok_or_else(|| reader.missing("SOP Class UID (0008,0016)"))?;
    if sop_class != GSPS_SOP_CLASS_UID {
        return Err(reader.invalid(
            "SOP Class UID (0008,0016)",
            format!("{sop_class} is not a Grayscale Softcopy Presentation State ({GSPS_SOP_CLASS_UID})"),
        ));
    }
    let sop_instance_uid =
        file.text(tags::SOP_INSTANCE_UID).ok_or_else(|| reader.missing("SOP Instance UID (0008,0018)"))?;
    let series_attribute = "Referenced Series Sequence (0008,1115)";
    let series = reader
        .items(object, tags::REFERENCED_SERIES_SEQUENCE, series_attribute)?
        .filter(|items| !items.is_empty())
        .ok_or_else(|| reader.missing(series_attribute))?;
    let mut referenced_images = Vec::new();
    let images_attribute = "Referenced Image Sequence (0008,1140)";
    for item in series {
        let images = reader
            .items(item, tags::REFERENCED_IMAGE_SEQUENCE, images_attribute)?
            .ok_or_else(|| reader.missing(images_attribute))?;
        referenced_images.extend(images.iter().filter_map(|image| item_text(image, tags::REFERENCED_SOP_INSTANCE_UID)));
    }
    if referenced_images.is_empty() {
        return Err(reader.invalid(images_attribute, "names no image (no Referenced SOP Instance UID)"));
    }
    let mut notes = Vec::new();
    let window = read_window(&reader, object, &mut notes)?;
    let inverse = match file.text(tags::PRESENTATION_LUT_SHAPE).as_deref() {
        Some("INVERSE") => true,
        Some("IDENTITY") | None => false,
        Some(other) => {
            notes.push(format!("Presentation LUT Shape {other} not applied"));
            false
        }
    };
    if object.get(tags::PRESENTATION_LUT_SEQUENCE).is_some() {
        notes.push("a Presentation LUT table not applied".to_owned());
    }
    if file.text(tags::IMAGE_ROTATION).is_some_and(|r| r != "0")
        || file.text(tags::IMAGE_HORIZONTAL_FLIP).as_deref() == Some("Y")
    {
        notes.push("a rotation or flip not applied".to_owned());
    }
    if file.text(tags::SHUTTER_SHAPE).is_some() {
        notes.push("a display shutter not applied".to_owned());
    }
    let annotations_attribute = "Graphic Annotation Sequence (0070,0001)";
    let annotations = match reader.items(object, tags::GRAPHIC_ANNOTATION_SEQUENCE, annotations_attribute)? {
        Some(items) => items.iter().map(|item| read_annotation(&reader, item)).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let state = PresentationState {
        label: file.text(tags::CONTENT_LABEL).unwrap_or_default(),
        description: file.text(tags::CONTENT_DESCRIPTION).unwrap_or_default(),
        creator: file.text(tags::CONTENT_CREATOR_NAME).unwrap_or_default(),
        window,
        inverse,
        annotations,
    };
    Ok(ReadPresentationState { sop_instance_uid, referenced_images, state, notes })
}

/// The first item of the Softcopy VOI LUT Sequence with a window (first values).
fn read_window(
    reader: &Reader<'_>,
    object: &InMemDicomObject,
    notes: &mut Vec<String>,
) -> Result<Option<Window>, DicomError> {
    let Some(items) = reader.items(object, tags::SOFTCOPY_VOILUT_SEQUENCE, "Softcopy VOI LUT Sequence (0028,3110)")?
    else {
        return Ok(None);
    };
    let Some(item) = items.first() else {
        return Ok(None);
    };
    if items.len() > 1 {
        notes.push(format!("{} VOI items, the first applied", items.len()));
    }
    let first = |tag: Tag, attribute: &'static str| -> Result<Option<f64>, DicomError> {
        match item.get(tag) {
            None => Ok(None),
            Some(element) => {
                let values =
                    element.to_multi_float64().map_err(|e| reader.invalid(attribute, format!("not a number ({e})")))?;
                Ok(values.first().copied())
            }
        }
    };
    let center = first(tags::WINDOW_CENTER, "Window Center (0028,1050)")?;
    let width = first(tags::WINDOW_WIDTH, "Window Width (0028,1051)")?;
    match (center, width) {
        (Some(center), Some(width)) if center.is_finite() && width.is_finite() && width > 0.0 => {
            Ok(Some(Window { center, width }))
        }
        (Some(center), Some(width)) => {
            Err(reader.invalid("Window Center/Width (0028,1050/1051)", format!("{center} / {width} is no window")))
        }
        _ => {
            if item.get(tags::VOILUT_SEQUENCE).is_some() {
                notes.push("a VOI LUT table not applied (only windows are)".to_owned());
            }
            Ok(None)
        }
    }
}

fn read_annotation(reader: &Reader<'_>, item: &InMemDicomObject) -> Result<Annotation, DicomError> {
    let images = match reader.items(item, tags::REFERENCED_IMAGE_SEQUENCE, "Referenced Image Sequence (0008,1140)")? {
        Some(images) => images.iter().filter_map(|image| item_text(image, tags::REFERENCED_SOP_INSTANCE_UID)).collect(),
        None => Vec::new(),
    };
    let texts = match reader.items(item, tags::TEXT_OBJECT_SEQUENCE, "Text Object Sequence (0070,0008)")? {
        Some(items) => items.iter().map(|text| read_text(reader, text)).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let graphics = match reader.items(item, tags::GRAPHIC_OBJECT_SEQUENCE, "Graphic Object Sequence (0070,0009)")? {
        Some(items) => items.iter().map(|graphic| read_graphic(reader, graphic)).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Annotation { graphics, texts, images })
}

fn read_text(reader: &Reader<'_>, item: &InMemDicomObject) -> Result<TextObject, DicomError> {
    // Not trimmed of inner spaces: the text is shown as written.
    let text = item
        .get(tags::UNFORMATTED_TEXT_VALUE)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
        .ok_or_else(|| reader.missing("Unformatted Text Value (0070,0006)"))?;
    let pixel_anchor = item_text(item, tags::ANCHOR_POINT_ANNOTATION_UNITS).as_deref() == Some("PIXEL");
    let anchor_px = match item.get(tags::ANCHOR_POINT) {
        Some(element) if pixel_anchor => {
            let values = element
                .to_multi_float32()
                .map_err(|e| reader.invalid("Anchor Point (0070,0014)", format!("not numbers ({e})")))?;
            match values[..] {
                [x, y] if x.is_finite() && y.is_finite() => Some([x, y]),
                _ => return Err(reader.invalid("Anchor Point (0070,0014)", format!("{} values, not 2", values.len()))),
            }
        }
        _ => None,
    };
    Ok(TextObject { text, anchor_px })
}

fn read_graphic(reader: &Reader<'_>, item: &InMemDicomObject) -> Result<GraphicObject, DicomError> {
    let graphic_type = item_text(item, tags::GRAPHIC_TYPE).ok_or_else(|| reader.missing("Graphic Type (0070,0023)"))?;
    let units = item_text(item, tags::GRAPHIC_ANNOTATION_UNITS)
        .ok_or_else(|| reader.missing("Graphic Annotation Units (0070,0005)"))?;
    let display_units = match units.as_str() {
        "PIXEL" => false,
        "DISPLAY" => true,
        other => {
            return Err(
                reader.invalid("Graphic Annotation Units (0070,0005)", format!("{other} is not PIXEL or DISPLAY"))
            );
        }
    };
    let uint = |tag: Tag, attribute: &'static str| -> Result<usize, DicomError> {
        let element = item.get(tag).ok_or_else(|| reader.missing(attribute))?;
        element
            .to_int::<u32>()
            .map(|v| v as usize)
            .map_err(|e| reader.invalid(attribute, format!("not a number ({e})")))
    };
    let dimensions = uint(tags::GRAPHIC_DIMENSIONS, "Graphic Dimensions (0070,0020)")?;
    if dimensions != 2 {
        return Err(reader.invalid("Graphic Dimensions (0070,0020)", format!("{dimensions}, not 2")));
    }
    let count = uint(tags::NUMBER_OF_GRAPHIC_POINTS, "Number of Graphic Points (0070,0021)")?;
    if count == 0 || count > MAX_GRAPHIC_POINTS {
        return Err(reader.invalid("Number of Graphic Points (0070,0021)", format!("{count} points")));
    }
    let data_attribute = "Graphic Data (0070,0022)";
    let data = item
        .get(tags::GRAPHIC_DATA)
        .ok_or_else(|| reader.missing(data_attribute))?
        .to_multi_float32()
        .map_err(|e| reader.invalid(data_attribute, format!("not numbers ({e})")))?;
    if data.len() != 2 * count {
        return Err(reader.invalid(
            data_attribute,
            format!("{} values for {count} points (Number of Graphic Points) of 2 coordinates", data.len()),
        ));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(reader.invalid(data_attribute, "a coordinate is not a number"));
    }
    let points = data.chunks_exact(2).map(|pair| [pair[0], pair[1]]).collect();
    Ok(GraphicObject { graphic_type: GraphicType::parse(&graphic_type), points, display_units })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ImageIdentity {
        ImageIdentity {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.1".to_owned(),
            sop_instance_uid: "1.2.3.4.5".to_owned(),
            study_instance_uid: "1.2.3.4".to_owned(),
            series_instance_uid: "1.2.3.4.1".to_owned(),
            patient_name: Some("Müller^Anna".to_owned()),
            patient_id: Some("P1".to_owned()),
            patient_birth_date: None,
            patient_sex: Some("F".to_owned()),
            study_date: Some("20240102".to_owned()),
            study_time: None,
            study_id: None,
            accession_number: Some("A7".to_owned()),
            referring_physician_name: None,
            body_part_examined: None,
            rows: 20,
            columns: 30,
            rescale: None,
        }
    }

    fn state() -> PresentationState {
        PresentationState {
            label: "Measurements".to_owned(),
            description: "two lines".to_owned(),
            creator: String::new(),
            window: Some(Window { center: 127.5, width: 200.0 }),
            inverse: true,
            annotations: vec![Annotation {
                graphics: vec![GraphicObject {
                    graphic_type: GraphicType::Polyline,
                    points: vec![[0.5, 0.5], [29.75, 19.25]],
                    display_units: false,
                }],
                texts: vec![TextObject { text: "Angle 45.0°".to_owned(), anchor_px: Some([29.75, 19.25]) }],
                images: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_written_presentation_state_reads_back_with_its_image_patient_and_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ps.dcm");
        let written = write_presentation_state(&path, &identity(), &state(), IfExists::Refuse).unwrap();
        assert_eq!(written.referenced_sop_instance_uid, "1.2.3.4.5");
        let read = read_presentation_state(&path).unwrap();
        assert_eq!(read.sop_instance_uid, written.sop_instance_uid);
        assert!(read.references("1.2.3.4.5") && !read.references("1.2.3.4"));
        assert_eq!(read.state, PresentationState { label: "MEASUREMENTS".to_owned(), ..state() });
        assert!(read.notes.is_empty(), "{:?}", read.notes);
        let file = open_dicom(&path).unwrap();
        assert_eq!(file.text(tags::PATIENT_NAME).as_deref(), Some("Müller^Anna"), "UTF-8 survives");
        assert_eq!(file.text(tags::STUDY_INSTANCE_UID).as_deref(), Some("1.2.3.4"), "the image's study");
        assert_ne!(file.text(tags::SERIES_INSTANCE_UID).as_deref(), Some("1.2.3.4.1"), "a series of its own");
        assert!(matches!(
            write_presentation_state(&path, &identity(), &state(), IfExists::Refuse),
            Err(DicomError::Write { .. })
        ));
    }

    #[test]
    fn content_labels_are_cs_values() {
        assert_eq!(content_label("Measurements of today!"), "MEASUREMENTS OF");
        assert_eq!(content_label("a-b"), "A_B");
        assert_eq!(content_label("  "), MEASUREMENT_LAYER);
        assert_eq!(long_string("a\\b\nc"), "a b c");
    }
}
