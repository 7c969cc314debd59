"""Understanding: an audio window → SDXL conditioning (CLAP encoder → head → conditioning → smoother)."""
