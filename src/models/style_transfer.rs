//! Style transfer with a CycleGAN generator: one gray image in, the other domain's image out, with the junyanz
//! preprocessing (`--preprocess none`) shared by `thorax translate` and the workbench; and how a direction is named
//! with the card's domains (`card.labels` = [domain A, domain B]).

use candle_core::Device;

use crate::models::card::ModelCard;
use crate::models::cyclegan::{CycleGanConfig, CycleGanGenerator, Direction};
use crate::models::error::ModelError;
use crate::models::preprocess::{cyclegan_input, to_gray8};

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

/// Translates a gray image in [0, 1] (row-major, `width_px` x `height_px`) with `generator` on `device`.
pub fn translate_gray(
    generator: &CycleGanGenerator,
    gray: &[f32],
    width_px: usize,
    height_px: usize,
    device: &Device,
) -> Result<TranslatedPlanes, ModelError> {
    let x = cyclegan_input(gray, width_px, height_px, generator.config().input_nc, device)?;
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
}
