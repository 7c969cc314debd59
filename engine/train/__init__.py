"""Training the transformer head (seed thesis §4.3, §5): data, augmentation, loss and the loop.

- data.py: the audio manifest (validated row by row), songs' middle 3/5, stratified song splits, and
  text-distillation pairs built from the descriptor tables.
- augment.py: seeded audio augmentations (crop, time stretch, pitch shift, noise, volume).
- loss.py: InfoNCE over one positive and N VAG-chosen negatives, on token-mean and pooled outputs.
- loop.py: Adam with exponential LR decay, cached CLIP prompt embeddings, resumable checkpoints.
"""
