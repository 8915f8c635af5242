"""One help line per `TrainingConfig` field: the text of its flag in `cv_train.py` and `tune.py`."""

FIELD_HELP = {
    "data": "'synthetic' (default), a folder of images + masks (PNG; manifest.csv or matching names), or a NIfTI image file",
    "synthetic_slices": "number of generated slices when --data synthetic",
    "image_size": "training size in pixels (square); images are resized, masks by nearest neighbour",
    "num_classes": "label classes including background",
    "input_kind": "auto | hu | uint8: how to read the raw intensities",
    "hu_window": "HU window LOW HIGH mapped to [0, 1] for HU input",
    "source_window": "for 8-bit slices: the HU window LOW HIGH they were made with, or 'auto' to estimate it from "
    "their air and soft-tissue grey levels; recorded with the model so that it can segment HU scans",
    "n_folds": "number of cross-validation folds",
    "val_fraction": "share of the training folds held out for choosing the best epoch",
    "group_folds": "auto (grouped when the data give groups) | yes | no",
    "seed": "seed of the splits, initialisation and shuffling",
    "epochs": "training epochs per fold",
    "batch_size": "batch size per replica (global = this x replicas)",
    "learning_rate": "Adam learning rate (the peak one under a schedule)",
    "lr_schedule": "constant | cosine: the learning rate per epoch, cosine decay to 0 after the warm-up",
    "warmup_epochs": "epochs of linear warm-up to the learning rate before the schedule",
    "weight_decay": "> 0 switches to AdamW",
    "loss": "ce | dice | ce_dice | ce_batch_dice (nnU-Net's: Dice over the batch, foreground only) | focal_tversky | focal_tversky_batch (the same over the batch)",
    "class_weights": "one weight per class for the loss",
    "oversample": "CLASS TIMES: training slices that contain CLASS appear TIMES times per epoch (rare classes); none: each once",
    "augment": "none | offline (the paper's 6x set) | online (turns, flips, zoom) | upright (flips, rotations within 15 degrees, zoom: the patient's orientation kept); training slices only, after the split",
    "acquisition_augment": "random window/level, gamma, contrast, histogram, noise, blur and resolution changes of the training images",
    "equalized_share": "probability (0-1) that a training slice is shown histogram-equalised, drawn per slice and epoch "
    "(after the acquisition changes): robustness to displays that equalise; 0 (default) never",
    "lung_crop": "MARGIN | none: crop every slice to the square around its lung field, MARGIN (e.g. 0.05) of the field's side "
    "on each side, before resizing; prediction does the same and pastes the result back (none: whole slices)",
    "lung_constraint": "MARGIN | none: predictions outside the lung field grown by MARGIN of its side become background",
    "scanner_share": "probability (0-1) that a training slice is shown as another scanner would (field of view, wide "
    "window, CLAHE, JPEG; tf_resattn.data.scanner_shifts), drawn per slice and epoch; 0 (default) never",
    "scanner_views_from": "model (default: drawn on the model's input after its turns and zooms) | source (drawn on the "
    "stored slice at its own size, then cut to its lung field and resized as prediction does): where the other-scanner "
    "views of --scanner-share are made",
    "scanner_clahe": "narrow (default: clip 1-3.5 on 8 x 8 tiles) | wide (clip 1-6 on 4-, 6-, 12- or 16-tile grids): "
    "the CLAHE of the other-scanner views (tf_resattn.data.scanner_shifts.CLAHE_RANGES)",
    "strategy": "auto (mirrored when >1 GPU) | default | mirrored",
    "mixed_precision": "mixed float16 on GPUs, bfloat16 on CPUs",
    "deterministic": "deterministic ops: a resumed run ends with the same metrics as an uninterrupted one",
    "jit_compile": "XLA-compile the training step (slower on the CPUs measured)",
    "tensorboard": "write TensorBoard logs per fold",
    "figures": "write figures with the report",
}
