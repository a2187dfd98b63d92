"""The imaging model and algorithms: arrays in, arrays out. No files, no network, no Qt."""
