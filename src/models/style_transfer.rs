//! Style transfer with a CycleGAN generator: one gray image in, the other domain's image out, with the junyanz
//! preprocessing (`--preprocess none`) shared by `thorax translate` and the workbench; and how a direction is named
//! with the card's domains (`card.labels` = [domain A, domain B]).

use candle_core::Device;

use crate::models::card::ModelCard;
use crate::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use crate::models::error::ModelError;
use crate::models::preprocess::{cyclegan_input, cyclegan_size, to_gray8};

/// A translated image as 8-bit planes, `clip(rint((x + 1) * 127.5))` of the generator output, at the network size
/// (sides rounded to multiples of 4).
#[derive(Clone, Debug, PartialEq)]
pub struct TranslatedPlanes {
    /// Planar [channels, height, width], row-major.
    pub pixels: Vec<u8>,
    pub channels: usize,
    pub width_px: usize,
    pub height_px: usize,
}

impl TranslatedPlanes {
    /// The first channel (the gray image; a 3-channel generator repeats it).
    pub fn first_plane(&self) -> &[u8] {
        let plane = self.width_px * self.height_px;
        self.pixels.get(..plane).unwrap_or(&self.pixels)
    }
}

/// Translates a gray image in [0, 1] (row-major, `width_px` x `height_px`) with `generator` on `device`, at the
/// image's own size ([`NetworkScale::Native`]).
pub fn translate_gray(
    generator: &CycleGanGenerator,
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    device: &Device,
) -> Result<TranslatedPlanes, ModelError> {
    translate_gray_at(generator, gray, width_px, height_px, NetworkScale::Native, device)
}

/// At which scale a CycleGAN generator sees an image. Its convolutions learned textures at the scale of its
/// training images, so a generator trained at 64 px, run on a 1,024 px film, meets structures 16 times larger than
/// any it saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkScale {
    /// Resized (bicubic, keeping the aspect ratio) so that the shorter side is the training side recorded in the
    /// card, as junyanz's test-time resize does; the image's own size when the card records none.
    #[default]
    Training,
    /// The image's own pixels (junyanz `--preprocess none`).
    Native,
}

/// The size (width, height), multiples of 4, at which `generator` translates a `width_px` x `height_px` image.
pub fn network_size(card: &ModelCard, scale: NetworkScale, width_px: usize, height_px: usize) -> (usize, usize) {
    let training_side = card.training_side_px().and_then(|side| usize::try_from(side).ok());
    match (scale, training_side) {
        (NetworkScale::Training, Some(side)) => {
            let factor = side as f64 / width_px.min(height_px).max(1) as f64;
            let scaled = |length: usize| ((length as f64 * factor).round() as usize).max(1);
            cyclegan_size(scaled(width_px), scaled(height_px))
        }
        _ => cyclegan_size(width_px, height_px),
    }
}

/// [`translate_gray`] at `scale`: the output is at the network size, [`network_size`].
pub fn translate_gray_at(
    generator: &CycleGanGenerator,
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    scale: NetworkScale,
    device: &Device,
) -> Result<TranslatedPlanes, ModelError> {
    let size = network_size(generator.card(), scale, width_px, height_px);
    let x = cyclegan_input(gray, width_px, height_px, size, generator.config().input_nc, device)?;
    let y = generator.forward(&x)?;
    let (_, channels, out_h, out_w) = y.dims4()?;
    let pixels = to_gray8(&y.flatten_all()?.to_vec1::<f32>()?);
    Ok(TranslatedPlanes { pixels, channels, width_px: out_w, height_px: out_h })
}

/// The names of domain A and domain B from a CycleGAN card; "A" and "B" when the card does not name two.
pub fn domain_names(card: &ModelCard) -> [String; 2] {
    match card.labels.as_slice() {
        [a, b] => [a.clone(), b.clone()],
        _ => ["A".to_owned(), "B".to_owned()],
    }
}

/// Which way the generator of `card` maps, or `None` when the card is not a valid CycleGAN card.
pub fn card_direction(card: &ModelCard) -> Option<Direction> {
    CycleGanConfig::from_card(card).ok().map(|config| config.direction)
}

/// The junyanz network that maps `direction`: `G_A` maps A to B, `G_B` maps B to A.
pub fn generator_name(direction: Direction) -> &'static str {
    match direction {
        Direction::AToB => "G_A",
        Direction::BToA => "G_B",
    }
}

/// "source -> target" with the card's domain names, e.g. "NIH -> CheXpert".
pub fn direction_label(card: &ModelCard, direction: Direction) -> String {
    let [a, b] = domain_names(card);
    match direction {
        Direction::AToB => format!("{a} -> {b}"),
        Direction::BToA => format!("{b} -> {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::card::Provenance;

    fn card(direction: Direction, domains: [&str; 2]) -> ModelCard {
        let config = CycleGanConfig { ngf: 4, n_blocks: 1, input_nc: 1, output_nc: 1, use_dropout: false, direction };
        config.card("t", domains, Provenance::default())
    }

    #[test]
    fn directions_are_named_with_the_card_domains() {
        let g_a = card(Direction::AToB, ["NIH", "CheXpert"]);
        assert_eq!(card_direction(&g_a), Some(Direction::AToB));
        assert_eq!(direction_label(&g_a, Direction::AToB), "NIH -> CheXpert");
        assert_eq!(direction_label(&g_a, Direction::BToA), "CheXpert -> NIH");
        assert_eq!(generator_name(Direction::AToB), "G_A");
        assert_eq!(generator_name(Direction::BToA), "G_B");
        let g_b = card(Direction::BToA, ["NIH", "CheXpert"]);
        assert_eq!(card_direction(&g_b), Some(Direction::BToA));
    }

    #[test]
    fn a_card_without_two_domains_falls_back_to_a_and_b() {
        let mut unnamed = card(Direction::AToB, ["x", "y"]);
        unnamed.labels.clear();
        assert_eq!(direction_label(&unnamed, Direction::BToA), "B -> A");
        unnamed.hyper.remove("ngf");
        assert_eq!(card_direction(&unnamed), None, "an invalid card has no direction");
    }

    #[test]
    fn translation_keeps_a_multiple_of_four_size_and_rounds_others() {
        let card = card(Direction::AToB, ["NIH", "CheXpert"]);
        let net = CycleGanGenerator::random(&card, &Device::Cpu, 3).unwrap();
        let out = translate_gray(&net, &vec![0.5; 24 * 16], 24, 16, &Device::Cpu).unwrap();
        assert_eq!((out.channels, out.width_px, out.height_px), (1, 24, 16));
        assert_eq!(out.first_plane().len(), 24 * 16);
        // junyanz rounds 30 up to 32 and 18 down to 16 (Python rounds 7.5 and 4.5 half to even).
        let out = translate_gray(&net, &vec![0.5; 30 * 18], 30, 18, &Device::Cpu).unwrap();
        assert_eq!((out.width_px, out.height_px), (32, 16));
    }

    #[test]
    fn the_training_scale_resizes_the_shorter_side_to_the_recorded_side() {
        let mut card = card(Direction::AToB, ["NIH", "Guangzhou"]);
        assert_eq!(network_size(&card, NetworkScale::Training, 256, 256), (256, 256), "no recorded side: native");
        card.metrics.insert("training_resolution_px".to_owned(), serde_json::json!(64));
        assert_eq!(network_size(&card, NetworkScale::Training, 256, 256), (64, 64));
        assert_eq!(network_size(&card, NetworkScale::Native, 256, 256), (256, 256));
        // 1,024 x 768: the shorter side to 64, the longer to 85.3 -> 85 -> 84 (multiple of 4); small images grow.
        assert_eq!(network_size(&card, NetworkScale::Training, 1024, 768), (84, 64));
        assert_eq!(network_size(&card, NetworkScale::Training, 32, 32), (64, 64));

        let net = CycleGanGenerator::random(&card, &Device::Cpu, 3).unwrap();
        let gray: Vec<f32> = (0..128 * 96).map(|i| (i % 128) as f32 / 127.0).collect();
        let at_training = translate_gray_at(&net, &gray, 128, 96, NetworkScale::Training, &Device::Cpu).unwrap();
        assert_eq!((at_training.width_px, at_training.height_px), (84, 64));
        let native = translate_gray_at(&net, &gray, 128, 96, NetworkScale::Native, &Device::Cpu).unwrap();
        assert_eq!(native, translate_gray(&net, &gray, 128, 96, &Device::Cpu).unwrap());
    }
}
