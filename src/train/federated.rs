//! Federated training of the conditional GAN by FedAvg (McMahan et al. 2017), as the study's `Federated_GAN` note
//! describes for hospitals that cannot pool their images: every site trains G and D on its own data for a number
//! of local steps, sends only its weights (G, D and the EMA of G) to the coordinator, which averages them weighted
//! by the sites' image counts and sends the average back for the next round.
//!
//! Each site is a thread that loads its own images and owns its trainer, optimiser moments and random streams; the
//! images never leave it. With one site, the average is that site's weights unchanged, so federated training equals
//! central training step for step (a test checks it bit for bit).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;

use candle_core::{Device, Tensor};

use crate::train::dataset::GanDataset;
use crate::train::dataset_layout::LayoutOptions;
use crate::train::error::TrainError;
use crate::train::gan_trainer::{GanTrainConfig, GanTrainer, StepLosses};

/// The weight groups a site shares each round, by group (`G`, `D`, `G_ema`) then tensor name.
#[derive(Clone, Debug)]
pub struct SharedWeights {
    pub groups: BTreeMap<String, BTreeMap<String, Tensor>>,
}

/// One participating site: where its images and labels are (read only by its own thread).
#[derive(Clone, Debug)]
pub struct Site {
    pub name: String,
    pub images: PathBuf,
    pub labels: PathBuf,
    /// Where this site keeps its checkpoint (its trainer with optimiser state), written after every round.
    pub checkpoint: Option<PathBuf>,
    /// How its labels CSV is read (our layout, NIH, CheXpert).
    pub layout: LayoutOptions,
}

/// How the rounds go.
#[derive(Clone, Debug)]
pub struct FederatedSchedule {
    /// Rounds to reach (a resumed run continues up to this count).
    pub rounds: u64,
    /// Training steps each site runs per round.
    pub local_steps: u64,
    /// Resume every site from its checkpoint instead of starting fresh.
    pub resume: bool,
}

/// What the coordinator learns after a round.
#[derive(Clone, Debug)]
pub struct RoundReport {
    pub round: u64,
    /// Per site: name, image count and the losses of its last local step.
    pub sites: Vec<(String, usize, StepLosses)>,
}

/// The outcome of a federated run.
pub struct FederatedOutcome {
    /// A trainer holding the final averaged weights (site 0's configuration), for saving the generator.
    pub trainer: GanTrainer,
    /// Image count per site, in site order.
    pub site_images: Vec<(String, usize)>,
    pub rounds: u64,
}

/// The seed of site `index`: site 0 uses the run's seed (so one site equals central training), the others their
/// own streams.
pub fn site_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add(index as u64)
}

/// The count-weighted mean of the sites' weights, tensor by tensor.
pub fn federated_average(sites: &[(SharedWeights, usize)]) -> Result<SharedWeights, TrainError> {
    let Some((first, _)) = sites.first() else {
        return Err(TrainError::Federated { reason: "no site sent weights".to_owned() });
    };
    let total: usize = sites.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return Err(TrainError::Federated { reason: "the sites hold no images".to_owned() });
    }
    let mut groups = BTreeMap::new();
    for (group, tensors) in &first.groups {
        let mut averaged = BTreeMap::new();
        for name in tensors.keys() {
            let mut sum: Option<Tensor> = None;
            for (index, (weights, count)) in sites.iter().enumerate() {
                let tensor = weights.groups.get(group).and_then(|g| g.get(name)).ok_or_else(|| {
                    TrainError::Federated { reason: format!("site {index} did not send `{group}/{name}`") }
                })?;
                let share = (*count as f64) / (total as f64);
                // One site: share is exactly 1, and x * 1 is x, so its weights pass through unchanged.
                let weighted = (tensor * share)?;
                sum = Some(match sum {
                    Some(sum) => (sum + weighted)?,
                    None => weighted,
                });
            }
            if let Some(sum) = sum {
                averaged.insert(name.clone(), sum);
            }
        }
        groups.insert(group.clone(), averaged);
    }
    Ok(SharedWeights { groups })
}

/// Messages from a site thread to the coordinator.
enum SiteMessage {
    Ready { index: usize, images: usize, weights: SharedWeights, step: u64 },
    RoundDone { index: usize, weights: SharedWeights, losses: StepLosses },
    Failed { index: usize, error: TrainError },
}

/// Runs FedAvg over `sites` with `config` (site i trains with seed `site_seed(config.seed, i)`), calling
/// `on_round` after every round. Starts from fresh weights (site 0's initialisation, sent to every site) or, with
/// `schedule.resume`, from each site's checkpoint.
pub fn train_federated(
    config: &GanTrainConfig,
    sites: &[Site],
    schedule: &FederatedSchedule,
    device: &Device,
    mut on_round: impl FnMut(&RoundReport),
) -> Result<FederatedOutcome, TrainError> {
    if sites.is_empty() {
        return Err(TrainError::Federated { reason: "give at least one site".to_owned() });
    }
    if schedule.local_steps == 0 {
        return Err(TrainError::Federated { reason: "local steps must be at least 1".to_owned() });
    }
    let (to_coordinator, from_sites) = mpsc::channel::<SiteMessage>();
    std::thread::scope(|scope| {
        let mut to_sites = Vec::with_capacity(sites.len());
        for (index, site) in sites.iter().enumerate() {
            let (to_site, inbox) = mpsc::channel::<Option<SharedWeights>>();
            to_sites.push(to_site);
            let outbox = to_coordinator.clone();
            let mut site_config = config.clone();
            site_config.seed = site_seed(config.seed, index);
            let (resume, local_steps) = (schedule.resume, schedule.local_steps);
            let device = device.clone();
            scope.spawn(move || {
                if let Err(error) = run_site(index, site, site_config, resume, local_steps, &device, &inbox, &outbox) {
                    let _ = outbox.send(SiteMessage::Failed { index, error });
                }
            });
        }
        drop(to_coordinator);
        let result = coordinate(sites, schedule, config, device, &to_sites, &from_sites, &mut on_round);
        // Stop every site (also on failure), then let the scope join them.
        for to_site in &to_sites {
            let _ = to_site.send(None);
        }
        result
    })
}

fn coordinate(
    sites: &[Site],
    schedule: &FederatedSchedule,
    config: &GanTrainConfig,
    device: &Device,
    to_sites: &[mpsc::Sender<Option<SharedWeights>>],
    from_sites: &mpsc::Receiver<SiteMessage>,
    on_round: &mut impl FnMut(&RoundReport),
) -> Result<FederatedOutcome, TrainError> {
    let lost = || TrainError::Federated { reason: "a site stopped without reporting".to_owned() };
    let mut images = vec![0usize; sites.len()];
    let mut ready: Vec<Option<(SharedWeights, u64)>> = vec![None; sites.len()];
    for _ in 0..sites.len() {
        match from_sites.recv().map_err(|_| lost())? {
            SiteMessage::Ready { index, images: count, weights, step } => {
                images[index] = count;
                ready[index] = Some((weights, step));
            }
            SiteMessage::Failed { index, error } => return Err(site_error(sites, index, error)),
            SiteMessage::RoundDone { .. } => return Err(lost()),
        }
    }
    let ready: Vec<(SharedWeights, u64)> = ready.into_iter().map(|r| r.ok_or_else(lost)).collect::<Result<_, _>>()?;
    let steps: Vec<u64> = ready.iter().map(|(_, step)| *step).collect();
    if steps.iter().any(|s| *s != steps[0] || s % schedule.local_steps != 0) {
        return Err(TrainError::Federated {
            reason: format!(
                "the sites' checkpoints are at steps {steps:?}; they must agree and be a multiple of the {} local \
                 steps",
                schedule.local_steps
            ),
        });
    }
    let first_round = steps[0] / schedule.local_steps;
    // A fresh run starts every site from site 0's initial weights. Resumed sites hold the weights they sent at the
    // end of their last round, so their average is the global model of that round.
    let mut global = if first_round > 0 {
        let weighted: Vec<(SharedWeights, usize)> = ready.into_iter().map(|(w, _)| w).zip(images.clone()).collect();
        federated_average(&weighted)?
    } else {
        ready.into_iter().next().map(|(weights, _)| weights).ok_or_else(lost)?
    };
    for round in first_round..schedule.rounds {
        for to_site in to_sites {
            to_site.send(Some(global.clone())).map_err(|_| lost())?;
        }
        let mut returned: Vec<Option<(SharedWeights, StepLosses)>> = vec![None; sites.len()];
        for _ in 0..sites.len() {
            match from_sites.recv().map_err(|_| lost())? {
                SiteMessage::RoundDone { index, weights, losses } => returned[index] = Some((weights, losses)),
                SiteMessage::Failed { index, error } => return Err(site_error(sites, index, error)),
                SiteMessage::Ready { .. } => return Err(lost()),
            }
        }
        let mut weighted = Vec::with_capacity(sites.len());
        let mut report = RoundReport { round: round + 1, sites: Vec::with_capacity(sites.len()) };
        for ((site, count), result) in sites.iter().zip(&images).zip(returned) {
            let (weights, losses) = result.ok_or_else(lost)?;
            report.sites.push((site.name.clone(), *count, losses));
            weighted.push((weights, *count));
        }
        global = federated_average(&weighted)?;
        on_round(&report);
    }
    let mut trainer = GanTrainer::new(config.clone(), device)?;
    trainer.load_shared_weights(&global)?;
    Ok(FederatedOutcome {
        trainer,
        site_images: sites.iter().map(|s| s.name.clone()).zip(images).collect(),
        rounds: schedule.rounds.max(first_round),
    })
}

fn site_error(sites: &[Site], index: usize, error: TrainError) -> TrainError {
    let name = sites.get(index).map(|s| s.name.as_str()).unwrap_or("?");
    TrainError::Federated { reason: format!("site {name}: {error}") }
}

/// One site's thread: load its data and trainer, report ready, then for each round received load the global
/// weights, train the local steps, checkpoint, and send its weights back.
#[allow(clippy::too_many_arguments)] // one thread's whole context, passed once
fn run_site(
    index: usize,
    site: &Site,
    config: GanTrainConfig,
    resume: bool,
    local_steps: u64,
    device: &Device,
    inbox: &mpsc::Receiver<Option<SharedWeights>>,
    outbox: &mpsc::Sender<SiteMessage>,
) -> Result<(), TrainError> {
    let data =
        GanDataset::load_with_layout(&site.images, &site.labels, config.resolution_px, &config.labels, &site.layout)?;
    let mut trainer = match (&site.checkpoint, resume) {
        (Some(path), true) => GanTrainer::resume(path, device)?,
        (None, true) => {
            return Err(TrainError::Federated { reason: "resuming needs the site's checkpoint path".to_owned() });
        }
        _ => GanTrainer::new(config, device)?,
    };
    let weights = trainer.shared_weights()?;
    let ready = SiteMessage::Ready { index, images: data.len(), weights, step: trainer.step() };
    if outbox.send(ready).is_err() {
        return Ok(());
    }
    while let Ok(Some(global)) = inbox.recv() {
        trainer.load_shared_weights(&global)?;
        let mut last = None;
        let target = trainer.step() + local_steps;
        while trainer.step() < target {
            last = Some(trainer.train_step(&data)?);
        }
        if let Some(path) = &site.checkpoint {
            trainer.save_checkpoint(path)?;
        }
        let losses = last.ok_or_else(|| TrainError::Federated { reason: "no local step ran".to_owned() })?;
        let message = SiteMessage::RoundDone { index, weights: trainer.shared_weights()?, losses };
        if outbox.send(message).is_err() {
            break;
        }
    }
    Ok(())
}
