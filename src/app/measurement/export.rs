//! "Export measurements...": every view's measurements as one CSV, a row each, for a spreadsheet or a statistics
//! package. The table is built on the UI thread once the save dialog has given a file (which has asked before replacing
//! an existing one) and every region has its statistics (at most a few dozen rows), and written on a helper thread.
//!
//! Columns: `view`, `image`, `tool`, `value` and its `unit` (a distance in mm or px, an angle in degrees, a region's
//! mean in the image's unit, a cardiothoracic ratio); the geometry in image pixels (column, row): a distance's ends
//! (x0, y0)-(x1, y1), an angle's vertex (x0, y0) and arm ends (x1, y1) and (x2, y2), a region's bounding box
//! (x0, y0)-(x1, y1), a CTR's cardiac line (x0, y0)-(x1, y1) and thoracic line (x2, y2)-(x3, y3); the CTR's widths; a
//! region's statistics and area; and the pixel spacing the mm come from. Cells that do not apply are empty.

use std::path::PathBuf;

use crate::app::background_write::{BackgroundWrite, WriteOutcome};
use crate::app::measurement::{Measurement, RegionStats};
use crate::app::path_dialog::{DialogKind, PathDialogs};
use crate::imaging::dicom::{PixelSpacing, SpacingSource};

/// The CSV's first row.
pub const CSV_HEADER: [&str; 27] = [
    "view",
    "image",
    "tool",
    "value",
    "unit",
    "x0_px",
    "y0_px",
    "x1_px",
    "y1_px",
    "x2_px",
    "y2_px",
    "x3_px",
    "y3_px",
    "cardiac_width_px",
    "cardiac_width_mm",
    "thoracic_width_px",
    "thoracic_width_mm",
    "mean",
    "sd",
    "min",
    "max",
    "count_px",
    "area_px2",
    "area_mm2",
    "column_spacing_mm",
    "row_spacing_mm",
    "spacing_source",
];

/// One view's measurements and what they are measured on.
pub struct ViewMeasurements<'a> {
    /// "Real", "Artificial" or "Style-transferred".
    pub view: &'a str,
    pub image_name: &'a str,
    pub spacing: Option<&'a PixelSpacing>,
    /// The image values' unit ("HU"), if any.
    pub value_unit: Option<&'a str>,
    pub items: &'a [Measurement],
}

/// The CSV of every measurement of `views`, header first, and the number of measurements in it. Fields holding commas,
/// quotes or line breaks (an image name can) are quoted, quotes doubled (RFC 4180).
pub fn measurements_csv(views: &[ViewMeasurements<'_>]) -> Result<(Vec<u8>, usize), String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| format!("cannot build the measurements table: {e}");
    writer.write_record(CSV_HEADER).map_err(failed)?;
    let mut count = 0;
    for view in views {
        for item in view.items {
            writer.write_record(row(view, item)).map_err(failed)?;
            count += 1;
        }
    }
    let bytes = writer.into_inner().map_err(|e| format!("cannot build the measurements table: {}", e.error()))?;
    Ok((bytes, count))
}

/// One measurement's cells, in [`CSV_HEADER`]'s order.
fn row(view: &ViewMeasurements<'_>, item: &Measurement) -> Vec<String> {
    let mut cells = vec![String::new(); CSV_HEADER.len()];
    let mut set = |column: &str, value: String| {
        if let Some(index) = CSV_HEADER.iter().position(|c| *c == column) {
            cells[index] = value;
        }
    };
    let spacing = view.spacing;
    let points = |set: &mut dyn FnMut(&str, String), points: &[[f32; 2]]| {
        for (index, [x, y]) in points.iter().enumerate() {
            set(&format!("x{index}_px"), x.to_string());
            set(&format!("y{index}_px"), y.to_string());
        }
    };
    set("view", view.view.to_owned());
    set("image", inert_in_spreadsheets(view.image_name));
    match item {
        Measurement::Distance(distance) => {
            set("tool", "Distance".to_owned());
            let (from, to) = (distance.from_px.map(f64::from), distance.to_px.map(f64::from));
            let (length, unit) = match spacing {
                Some(spacing) => (spacing.length_mm(from, to), "mm"),
                None => (distance.length_px(), "px"),
            };
            set("value", format!("{length:.3}"));
            set("unit", unit.to_owned());
            points(&mut set, &[distance.from_px, distance.to_px]);
        }
        Measurement::Angle(angle) => {
            set("tool", "Angle".to_owned());
            set("value", angle.degrees(spacing).map(|d| format!("{d:.3}")).unwrap_or_default());
            set("unit", "degrees".to_owned());
            points(&mut set, &[angle.vertex_px, angle.first_px, angle.second_px]);
        }
        Measurement::Region(region) => {
            set("tool", "Region".to_owned());
            let ellipse = region.ellipse;
            let ([cx, cy], [rx, ry]) = (ellipse.center_px, ellipse.radii_px);
            points(&mut set, &[[cx - rx, cy - ry], [cx + rx, cy + ry]]);
            // Still being measured, or no pixel inside the image: the statistics' cells stay empty.
            if let Some(Some(RegionStats { mean, sd, min, max, count_px })) = region.stats() {
                set("value", format!("{mean:.4}"));
                set("mean", format!("{mean:.4}"));
                set("sd", format!("{sd:.4}"));
                set("min", min.to_string());
                set("max", max.to_string());
                set("count_px", count_px.to_string());
            }
            set("unit", view.value_unit.unwrap_or_default().to_owned());
            set("area_px2", format!("{:.3}", ellipse.area_px2()));
            if let Some(spacing) = spacing {
                set("area_mm2", format!("{:.3}", ellipse.area_mm2(spacing)));
            }
        }
        Measurement::CardiothoracicRatio(ctr) => {
            set("tool", "CTR".to_owned());
            set("value", ctr.ratio().map(|r| format!("{r:.4}")).unwrap_or_default());
            set("unit", "ratio".to_owned());
            let ((a, b), (c, d)) = (ctr.cardiac.ends_px(), ctr.thoracic.ends_px());
            points(&mut set, &[a, b, c, d]);
            set("cardiac_width_px", format!("{:.3}", ctr.cardiac.width_px()));
            set("thoracic_width_px", format!("{:.3}", ctr.thoracic.width_px()));
            if let Some(spacing) = spacing {
                set("cardiac_width_mm", format!("{:.3}", ctr.cardiac.width_mm(spacing)));
                set("thoracic_width_mm", format!("{:.3}", ctr.thoracic.width_mm(spacing)));
            }
        }
        Measurement::Cobb(cobb) => {
            set("tool", "Cobb".to_owned());
            set("value", cobb.degrees(spacing).map(|d| format!("{d:.3}")).unwrap_or_default());
            set("unit", "degrees".to_owned());
            // As the CTR's: the first line (x0, y0)-(x1, y1), the second (x2, y2)-(x3, y3).
            points(&mut set, &[cobb.first[0], cobb.first[1], cobb.second[0], cobb.second[1]]);
        }
    }
    match spacing {
        Some(spacing) => {
            set("column_spacing_mm", spacing.column_mm.to_string());
            set("row_spacing_mm", spacing.row_mm.to_string());
            set("spacing_source", spacing_source_text(spacing.source));
        }
        None => set("spacing_source", "none (lengths in image pixels)".to_owned()),
    }
    cells
}

/// Which attribute the pixel size came from, and where lengths from it apply.
/// A file name as a spreadsheet shows it, never runs it: one that begins like a formula (=, +, -, @, a tab or a
/// carriage return) gets a leading apostrophe, as OWASP's CSV injection advice has it. The name is the only free text
/// in the table, and it comes from whoever named the file.
fn inert_in_spreadsheets(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() }
}

fn spacing_source_text(source: SpacingSource) -> String {
    match source {
        SpacingSource::PixelSpacing => "Pixel Spacing (0028,0030)".to_owned(),
        SpacingSource::ImagerPixelSpacing => "Imager Pixel Spacing (0018,1164), at the detector".to_owned(),
        SpacingSource::MagnificationCorrected { factor } => {
            format!("Imager Pixel Spacing (0018,1164) corrected for magnification x{factor} (0018,1114)")
        }
    }
}

/// Asks for a file, then writes the CSV on a thread; reports once per export. The table is built when the file is
/// known and every region has its statistics, so it holds what the views show then, not what they held when the
/// button was pressed (the desktop's dialog leaves the workbench usable while it is open).
#[derive(Default)]
pub struct MeasurementExporter {
    /// The save dialog's answer, waiting for the table.
    chosen_path: Option<PathBuf>,
    dialogs: PathDialogs<()>,
    write: BackgroundWrite,
}

impl MeasurementExporter {
    /// Asks where to save the CSV (the save dialog asks before replacing a file).
    pub fn start(&mut self, ctx: &egui::Context) {
        let kind = DialogKind::SaveFile {
            file_name: "measurements.csv".to_owned(),
            filter_name: "CSV",
            extensions: &["csv"],
            new_only: false,
        };
        if let Err(e) = self.dialogs.request(ctx, (), "Export measurements as CSV", kind, None) {
            self.write.report(Err(format!("Measurement export: {e}")));
        }
    }

    /// Exports to `path` as if the save dialog had given it (scripting and tests): replacing a file there.
    pub fn export_to(&mut self, path: PathBuf) {
        self.chosen_path = Some(path);
    }

    /// The file chosen, while it waits for the table: hand the table to [`Self::write_table`].
    pub fn waiting_for_table(&self) -> bool {
        self.chosen_path.is_some()
    }

    /// Writes `csv` (its bytes and measurement count) to the chosen file on a thread. Replacing is safe here: the
    /// save dialog asked first. A table without a measurement (the views were cleared meanwhile) writes nothing.
    pub fn write_table(&mut self, ctx: &egui::Context, csv: Result<(Vec<u8>, usize), String>) {
        let Some(path) = self.chosen_path.take() else {
            return;
        };
        let (bytes, count) = match csv {
            Ok((_, 0)) => {
                self.write.report(Err("Measurements not exported: the views hold none now".to_owned()));
                return;
            }
            Ok(table) => table,
            Err(e) => {
                self.write.report(Err(e));
                return;
            }
        };
        self.write.spawn(ctx, "thorax-measurement-export", "the measurement export", move || {
            let replace = crate::atomic_file::IfExists::Replace;
            match crate::atomic_file::write_file(&path, replace, &bytes) {
                Ok(()) => Ok(format!(
                    "Exported {count} measurement{} to {}",
                    if count == 1 { "" } else { "s" },
                    path.display()
                )),
                // The error names the file.
                Err(e) => Err(format!("Measurements not exported: {e}")),
            }
        });
    }

    /// Whether an export is under way: waiting for its table, or being written.
    pub fn is_writing(&self) -> bool {
        self.chosen_path.is_some() || self.write.is_writing()
    }

    /// A picked file waits for the table; a finished export returns its message once. Call once per frame.
    pub fn poll(&mut self, ctx: &egui::Context) -> Option<WriteOutcome> {
        if let Some(((), path)) = self.dialogs.poll(ctx) {
            self.chosen_path = Some(path);
        }
        self.write.take_outcome()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::measurement::{Angle, CardiothoracicRatio, Cobb, Diameter, Distance};

    fn read(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
        reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
    }

    #[test]
    fn names_with_commas_and_quotes_are_quoted_and_read_back_whole() {
        let items = [Measurement::Distance(Distance { from_px: [10.0, 20.0], to_px: [40.0, 60.0] })];
        let name = "cxr, \"left\" 01.png";
        let views =
            [ViewMeasurements { view: "Real", image_name: name, spacing: None, value_unit: None, items: &items }];
        let (bytes, count) = measurements_csv(&views).unwrap();
        assert_eq!(count, 1);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let line = text.lines().nth(1).unwrap();
        assert!(line.starts_with(r#"Real,"cxr, ""left"" 01.png",Distance,50.000,px,10,20,40,60,"#), "{line}");
        let rows = read(&bytes);
        assert_eq!(rows[0], CSV_HEADER);
        assert_eq!(rows[1].len(), CSV_HEADER.len());
        assert_eq!(rows[1][1], name);
        assert_eq!(rows[1].last().unwrap(), "none (lengths in image pixels)");
    }

    #[test]
    fn an_image_name_that_begins_like_a_formula_is_not_run_by_a_spreadsheet() {
        let items = [Measurement::Distance(Distance { from_px: [0.0, 0.0], to_px: [3.0, 4.0] })];
        for (name, written) in [
            ("=HYPERLINK(\"http://x\").png", "'=HYPERLINK(\"http://x\").png"),
            ("+1.png", "'+1.png"),
            ("-x.png", "'-x.png"),
            ("@sum.png", "'@sum.png"),
            ("cxr_01.png", "cxr_01.png"),
        ] {
            let views =
                [ViewMeasurements { view: "Real", image_name: name, spacing: None, value_unit: None, items: &items }];
            let (bytes, _) = measurements_csv(&views).unwrap();
            assert_eq!(read(&bytes)[1][1], written, "{name}");
        }
    }

    #[test]
    fn each_tool_fills_its_columns() {
        let spacing = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::ImagerPixelSpacing };
        let ctr = CardiothoracicRatio {
            cardiac: Diameter::from_drag([100.0, 200.0], [220.0, 260.0]),
            thoracic: Diameter::from_drag([300.0, 300.0], [50.0, 250.0]),
        };
        let items = [
            Measurement::Angle(Angle { vertex_px: [20.0, 30.0], first_px: [30.0, 30.0], second_px: [30.0, 40.0] }),
            Measurement::CardiothoracicRatio(ctr),
        ];
        let views = [ViewMeasurements {
            view: "Artificial",
            image_name: "seed 7",
            spacing: Some(&spacing),
            value_unit: None,
            items: &items,
        }];
        let rows = read(&measurements_csv(&views).unwrap().0);
        let cell = |row: usize, column: &str| rows[row][CSV_HEADER.iter().position(|c| *c == column).unwrap()].clone();
        assert_eq!(
            (cell(1, "tool"), cell(1, "value"), cell(1, "unit")),
            ("Angle".into(), "63.435".into(), "degrees".into())
        );
        assert_eq!((cell(1, "x2_px"), cell(1, "y2_px"), cell(1, "x3_px")), ("30".into(), "40".into(), String::new()));
        assert_eq!(
            (cell(2, "tool"), cell(2, "value"), cell(2, "unit")),
            ("CTR".into(), "0.4800".into(), "ratio".into())
        );
        let lines: Vec<String> = ["x0_px", "y0_px", "x1_px", "y1_px", "x2_px", "y2_px", "x3_px", "y3_px"]
            .iter()
            .map(|c| cell(2, c))
            .collect();
        assert_eq!(lines, ["100", "230", "220", "230", "50", "275", "300", "275"]);
        assert_eq!((cell(2, "cardiac_width_mm"), cell(2, "thoracic_width_mm")), ("12.000".into(), "25.000".into()));
        assert_eq!(cell(2, "spacing_source"), "Imager Pixel Spacing (0018,1164), at the detector");
        assert_eq!((cell(2, "column_spacing_mm"), cell(2, "row_spacing_mm")), ("0.1".into(), "0.2".into()));
        assert_eq!(cell(2, "mean"), "");
    }

    #[test]
    fn a_cobb_angle_gives_degrees_and_both_lines() {
        // Columns 0.1 mm, rows 0.2 mm: (1, -2) mm and (1, 2) mm, 53.130 degrees between the lines (90 in pixels).
        let spacing = PixelSpacing { row_mm: 0.2, column_mm: 0.1, source: SpacingSource::PixelSpacing };
        let items =
            [Measurement::Cobb(Cobb { first: [[0.0, 10.0], [10.0, 0.0]], second: [[0.0, 20.0], [10.5, 30.0]] })];
        let views = [ViewMeasurements {
            view: "Real",
            image_name: "spine",
            spacing: Some(&spacing),
            value_unit: None,
            items: &items,
        }];
        let rows = read(&measurements_csv(&views).unwrap().0);
        let cell = |column: &str| rows[1][CSV_HEADER.iter().position(|c| *c == column).unwrap()].clone();
        assert_eq!((cell("tool"), cell("unit")), ("Cobb".into(), "degrees".into()));
        // (10.5, 10) px is (1.05, 2) mm: cross 1 * 2 + 2 * 1.05 = 4.1, dot 1.05 - 4 = -2.95, atan2(4.1, 2.95).
        let expected = 4.1f64.atan2(2.95).to_degrees();
        assert_eq!(cell("value"), format!("{expected:.3}"));
        let lines: Vec<String> =
            ["x0_px", "y0_px", "x1_px", "y1_px", "x2_px", "y2_px", "x3_px", "y3_px"].iter().map(|c| cell(c)).collect();
        assert_eq!(lines, ["0", "10", "10", "0", "0", "20", "10.5", "30"]);
        assert_eq!((cell("cardiac_width_px"), cell("area_px2")), (String::new(), String::new()));
    }
}
