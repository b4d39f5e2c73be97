//! Label orders of the original study. Labels are matched by name across models, never by position.

/// Output order of the NIH DenseNet-121 classifier (`cxr_dataset.PRED_LABEL` of reproduce-chexnet).
pub const NIH_CLASSIFIER_LABELS: [&str; 14] = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
];

/// Input label order of the NIH ProGAN (`nih_labels.csv` column order).
pub const NIH_GAN_LABELS: [&str; 14] = [
    "Cardiomegaly",
    "Emphysema",
    "Effusion",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Atelectasis",
    "Pneumothorax",
    "Pleural_Thickening",
    "Pneumonia",
    "Fibrosis",
    "Edema",
    "Consolidation",
];

/// Input label order of the CheXpert ProGAN (CheXpert CSV column order).
pub const CHEXPERT_GAN_LABELS: [&str; 14] = [
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
];
