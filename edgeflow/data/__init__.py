"""EEG data: MNE reading, montage, filtering, windows, and the synthetic corpus."""
